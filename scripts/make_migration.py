"""Write a new Alembic migration from the difference between the tables in
``sfumato/store/tables.py`` and the schema the existing migrations build.

    python scripts/make_migration.py "add a column" 0002
"""

import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config

from sfumato.store.db import MIGRATIONS, Database

message, revision = sys.argv[1], sys.argv[2]
with tempfile.TemporaryDirectory() as folder:
    db = Database(f"sqlite:///{Path(folder) / 'scratch.db'}")
    db.migrate()
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True, rev_id=revision)
