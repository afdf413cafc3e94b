"""The schema: built by the migrations, exactly what the code's tables say, on both databases."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from sfumato.errors import SfumatoError
from sfumato.store.db import Database, database_url
from sfumato.store.tables import Base


def test_migrations_build_exactly_the_tables_the_code_uses(db):
    with db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    tables = set(inspect(db.engine).get_table_names())
    assert {"users", "api_keys", "login_sessions", "jobs", "images", "uploads"} <= tables


def test_migrating_again_changes_nothing(db):
    db.migrate()
    with db.engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'x.db'}")
    with database.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_the_database_url_defaults_to_the_data_folder_and_takes_postgres_urls(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("SFUMATO_DATABASE_URL", raising=False)
    assert database_url(tmp_path) == f"sqlite:///{tmp_path / 'sfumato.db'}"
    assert database_url(tmp_path, "postgresql://me@db:5432/art") == (
        "postgresql+psycopg://me@db:5432/art"
    )
    monkeypatch.setenv("SFUMATO_DATABASE_URL", "sqlite:////elsewhere.db")
    assert database_url(tmp_path) == "sqlite:////elsewhere.db"


def test_a_malformed_database_url_is_a_sentence():
    with pytest.raises(SfumatoError, match="is not a database URL"):
        Database("no such thing")
