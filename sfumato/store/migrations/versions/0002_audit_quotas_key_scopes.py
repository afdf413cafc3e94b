"""audit log, quotas, key expiry and scopes, stored sizes; names that the name rule refuses

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 08:40:00
"""

import logging
import re
import unicodedata
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import sfumato.store.tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

log = logging.getLogger("sfumato.migrations")

# the rule of sfumato.accounts.USERNAME, copied: a migration must keep doing what it did when
# it was written, whatever the rule becomes later
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{1,31}")


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sfumato.store.tables.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=64), nullable=True),
        sa.Column("target", sa.String(length=255), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_at"), ["at"], unique=False)
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("expires_at", sfumato.store.tables.DateTime(timezone=True), nullable=True)
        )
        # keys made before scopes existed keep doing all they did
        batch_op.add_column(
            sa.Column(
                "scopes",
                sa.JSON(),
                nullable=False,
                server_default='["generate", "read", "admin"]',
            )
        )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("quotas", sa.JSON(), nullable=False, server_default="{}"))
    for table in ("images", "uploads"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("bytes", sa.Integer(), nullable=True))
    _rename_names_the_rule_refuses()


def _rename_names_the_rule_refuses() -> None:
    """Before 2026-12-02 the name rule ended in ``$``, which let "alice\\n" sign up beside
    "alice". Such a name is renamed to one the rule takes ("alice-2" when "alice" is taken),
    and the audit log says so, for the admin to tell the owner."""
    connection = op.get_bind()
    users = sa.table(
        "users",
        sa.column("id", sa.Integer),
        sa.column("username", sa.String),
        sa.column("username_key", sa.String),
    )
    audit = sa.table(
        "audit_events",
        sa.column("at", sfumato.store.tables.DateTime(timezone=True)),
        sa.column("action", sa.String),
        sa.column("target", sa.String),
        sa.column("detail", sa.JSON),
    )
    rows = connection.execute(sa.select(users.c.id, users.c.username)).all()
    taken = {name.lower() for _, name in rows}
    for user_id, name in rows:
        normal = unicodedata.normalize("NFKC", name)
        if _NAME.fullmatch(normal):
            continue
        base = re.sub(r"[^A-Za-z0-9_.-]", "", normal.strip())[:28].lstrip("_.-") or "user"
        base = base if len(base) >= 2 else base + "-user"
        new, n = base, 1
        while new.lower() in taken:
            n += 1
            new = f"{base}-{n}"
        taken.add(new.lower())
        connection.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(username=new, username_key=new.lower())
        )
        connection.execute(
            audit.insert().values(
                at=datetime.now(UTC),
                action="user.renamed",
                target=new,
                detail={"from": name, "to": new, "why": "the old name broke the name rule"},
            )
        )
        log.warning("renamed the account %r to %r: the old name broke the name rule", name, new)


def downgrade() -> None:
    for table in ("images", "uploads"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("bytes")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("quotas")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("scopes")
        batch_op.drop_column("expires_at")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_at"))
        batch_op.drop_index(batch_op.f("ix_audit_events_action"))
    op.drop_table("audit_events")
