"""The database: SQLite in the data folder by default (WAL, so the web server reads while the
worker writes), PostgreSQL by URL. The schema is brought up to date by Alembic at every
start, so upgrading sfumato never needs a manual step."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from sfumato.errors import SfumatoError

URL_ENV_VAR = "SFUMATO_DATABASE_URL"
# How hard SQLite makes each commit durable; read by every process that opens the database
# (serve, users, keys, settings), so it is an environment variable rather than one command's
# option. See _engine for what each level promises.
SYNCHRONOUS_ENV_VAR = "SFUMATO_SQLITE_SYNCHRONOUS"
SYNCHRONOUS_LEVELS = ("NORMAL", "FULL")  # OFF risks corruption; EXTRA adds nothing to WAL
MIGRATIONS = Path(__file__).parent / "migrations"


def database_url(data_root: Path, explicit: str | None = None) -> str:
    """``explicit`` (--database-url), else $SFUMATO_DATABASE_URL, else SQLite in the data folder."""
    url = explicit or os.environ.get(URL_ENV_VAR)
    if not url:
        return f"sqlite:///{data_root / 'sfumato.db'}"
    # "postgresql://" is what people copy from their host; psycopg 3 is the driver we ship
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def sqlite_synchronous(explicit: str | None = None) -> str:
    """``explicit``, else $SFUMATO_SQLITE_SYNCHRONOUS, else NORMAL; as SQLite spells it."""
    level = (explicit or os.environ.get(SYNCHRONOUS_ENV_VAR) or "NORMAL").strip().upper()
    if level not in SYNCHRONOUS_LEVELS:
        raise SfumatoError(
            f"{SYNCHRONOUS_ENV_VAR}={level.lower()!r} is not a level sfumato uses: normal "
            "(the default: a process crash loses no commit, a power loss may lose the last "
            "ones) or full (a power loss loses none either; each commit waits for the disk)."
        )
    return level


class Database:
    def __init__(self, url: str, synchronous: str | None = None):
        """``synchronous``: SQLite's durability level (see ``sqlite_synchronous``)."""
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise SfumatoError(
                f"{url!r} is not a database URL. Use sqlite:///PATH or "
                "postgresql://USER@HOST:PORT/NAME."
            ) from None
        self.url = url
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.synchronous = sqlite_synchronous(synchronous) if self.is_sqlite else None
        if self.is_sqlite and parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine = _engine(url, self.synchronous)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Create or upgrade the schema to this version of sfumato."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed at the end of the block, rolled back on an error."""
        with self.sessions() as session, session.begin():
            yield session

    def close(self) -> None:
        self.engine.dispose()


def _engine(url: str, synchronous: str | None) -> Engine:
    """``synchronous``: SQLite's level, None for a server database."""
    if synchronous is None:
        return create_engine(url, pool_pre_ping=True)
    # the web server's threads and the worker share the file; each waits up to 30 s for
    # another's write rather than failing at once
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(connection, _record):
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # With WAL, NORMAL writes a commit to the WAL file without waiting for the disk: it
        # survives the process crashing (the write is in the OS's cache) and the database is
        # never corrupted, but a power loss or an OS crash can lose the commits made since the
        # last checkpoint synced the WAL. FULL waits for the disk at every commit, so those
        # survive too, at one fsync a commit: $SFUMATO_SQLITE_SYNCHRONOUS=full.
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.close()

    return engine
