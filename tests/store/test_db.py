"""The schema: built by the migrations, exactly what the code's tables say, on both databases."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect, select, text

from sfumato.errors import SfumatoError
from sfumato.store.db import Database, database_url
from sfumato.store.tables import Base, Job, User


def test_migrations_build_exactly_the_tables_the_code_uses(db):
    with db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    tables = set(inspect(db.engine).get_table_names())
    assert {"users", "api_keys", "login_sessions", "jobs", "images", "uploads"} <= tables


def _schema(database: Database) -> dict:
    """Every table's columns, keys, indexes and constraints, as the database reports them."""
    inspector = inspect(database.engine)  # a new one: an inspector caches what it read
    return {
        table: {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                for c in inspector.get_columns(table)
            ],
            "primary key": inspector.get_pk_constraint(table),
            "foreign keys": sorted(map(repr, inspector.get_foreign_keys(table))),
            "indexes": sorted(map(repr, inspector.get_indexes(table))),
            "unique": sorted(map(repr, inspector.get_unique_constraints(table))),
            "checks": sorted(map(repr, inspector.get_check_constraints(table))),
        }
        for table in sorted(inspector.get_table_names())
    }


def _rows(database: Database) -> dict[str, list[str]]:
    """Every row of every table, the migrations' own version table included."""
    tables = MetaData()
    tables.reflect(database.engine)
    with database.engine.connect() as connection:
        return {
            name: sorted(repr(tuple(row)) for row in connection.execute(select(table)))
            for name, table in tables.tables.items()
        }


def test_migrating_again_changes_nothing(db):
    with db.session() as session:
        user = User(username="Ann", username_key="ann", password_hash="x", preferences={"a": 1})
        session.add(user)
        session.flush()
        session.add(Job(user_id=user.id, model_name="m", model_path="/m", settings={"seed": 7}))
    schema, rows = _schema(db), _rows(db)
    assert rows["users"] and rows["jobs"] and rows["alembic_version"]

    db.migrate()  # as every start does
    another_process = Database(db.url)  # and another process starting on the same database
    another_process.migrate()
    another_process.close()

    assert _schema(db) == schema
    assert _rows(db) == rows
    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path, monkeypatch):
    monkeypatch.delenv("SFUMATO_SQLITE_SYNCHRONOUS", raising=False)
    database = Database(f"sqlite:///{tmp_path / 'x.db'}")
    with database.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL


def test_an_operator_can_make_sqlite_wait_for_the_disk_at_every_commit(tmp_path, monkeypatch):
    monkeypatch.setenv("SFUMATO_SQLITE_SYNCHRONOUS", "full")
    database = Database(f"sqlite:///{tmp_path / 'x.db'}")
    database.migrate()
    # every connection of the pool, not only the first: two open at once are two connections
    with database.engine.connect() as first, database.engine.connect() as second:
        assert first.connection.dbapi_connection is not second.connection.dbapi_connection
        for connection in (first, second):
            assert connection.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    database.close()
    monkeypatch.delenv("SFUMATO_SQLITE_SYNCHRONOUS")
    explicit = Database(f"sqlite:///{tmp_path / 'x.db'}", synchronous="FULL")
    with explicit.session() as session:
        assert session.execute(text("PRAGMA synchronous")).scalar() == 2
    explicit.close()


def test_an_unknown_synchronous_level_is_a_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("SFUMATO_SQLITE_SYNCHRONOUS", "off")
    with pytest.raises(SfumatoError, match="'off' is not a level sfumato uses: normal .* full"):
        Database(f"sqlite:///{tmp_path / 'x.db'}")


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


def _migrate_to(database: Database, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from sfumato.store.db import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_upgrading_renames_names_the_old_rule_let_in_and_keeps_old_keys_working(database_url):
    """Before the name rule was matched whole, "alice\\n" could sign up beside "alice"; the
    upgrade renames it to a name that can be typed, and says so in the audit log. Keys made
    before scopes existed keep every power they had."""
    from sfumato.store.tables import ApiKey, AuditEvent

    database = Database(database_url)
    _migrate_to(database, "0001")
    with database.engine.begin() as connection:
        for name in ("alice", "alice\n", "bob"):
            connection.execute(
                text(
                    "INSERT INTO users (username, username_key, password_hash, is_admin, "
                    "disabled, created_at, preferences) VALUES (:n, :k, 'x', false, false, "
                    "'2026-11-30 10:00:00+00:00', '{}')"
                ),
                {"n": name, "k": name.lower()},
            )
        bob = connection.execute(text("SELECT id FROM users WHERE username = 'bob'")).scalar()
        connection.execute(
            text(
                "INSERT INTO api_keys (id, user_id, name, key_hash, prefix, created_at) VALUES "
                "('k1', :u, 'bot', 'h', 'sfm_x', '2026-11-30 10:00:00+00:00')"
            ),
            {"u": bob},
        )

    database.migrate()
    with database.session() as session:
        names = sorted(session.scalars(select(User.username)))
        assert names == ["alice", "alice-2", "bob"]
        event = session.scalars(select(AuditEvent)).one()
        assert (event.action, event.detail["from"], event.target) == (
            "user.renamed",
            "alice\n",
            "alice-2",
        )
        assert session.get(ApiKey, "k1").scopes == ["generate", "read", "admin"]
        assert session.get(User, bob).quotas == {}
    database.close()
