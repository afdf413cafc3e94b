"""The audit log: who did what to an account or to the server, for the admin.

An event is written in the same transaction as what it records, so an action and its record
commit (or roll back) together. A failed login is the exception: its request fails, so it is
written in a transaction of its own (``record_apart``), or no failure would ever be kept.

Events are read newest first (``page``), by the admin API and ``sfumato audit``, and deleted
after the site's ``audit_retention_days`` (``purge``). No password, key or token is ever part
of an event: only names, ids, addresses and the values an admin changed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from sfumato.accounts import username_key
from sfumato.errors import InvalidRequest
from sfumato.store.db import Database
from sfumato.store.tables import AuditEvent, User, utcnow

# the actions written (dotted: a filter on "user." finds every change to accounts)
ACTIONS = (
    "login.succeeded",
    "login.failed",
    "login.locked",
    "signup",
    "logout",
    "key.created",
    "key.revoked",
    "password.changed",
    "password.reset",
    "settings.changed",
    "user.added",  # by the command line (sfumato users add); the page's is a signup
    "user.disabled",
    "user.enabled",
    "user.admin_granted",
    "user.admin_revoked",
    "user.quotas_changed",
    "user.renamed",
    "history.deleted",
)
CLI = "cli"  # the actor of what the command line does: the operator at the server's shell
CLI_NAME = "(command line)"
MAX_PAGE = 500


def record(
    session: Session,
    action: str,
    actor: User | str | None = None,
    target: User | str | None = None,
    address: str | None = None,
    **detail,
) -> AuditEvent:
    """Add one event to ``session``'s transaction. ``actor``: the user who acted, ``CLI``, or
    None (nobody signed in, as for a failed login); ``target``: the account concerned (a user
    or a name tried); ``detail``: JSON-able facts."""
    if isinstance(actor, User):
        actor_id, actor_name = actor.id, actor.username
    elif actor == CLI:
        actor_id, actor_name = None, CLI_NAME
    else:
        actor_id, actor_name = None, None
    if isinstance(target, User):
        target = target.username
    event = AuditEvent(
        at=utcnow(),
        action=action,
        actor_id=actor_id,
        actor_name=actor_name,
        target=target[:255] if target else None,
        address=address[:64] if address else None,
        detail=detail,
    )
    session.add(event)
    return event


def record_settings(
    session: Session, before: dict, after: dict, actor: User | str, address: str | None = None
) -> None:
    """One settings.changed event for each setting whose value changed, old and new."""
    for name, value in after.items():
        if before.get(name) != value:
            old = before.get(name)
            record(
                session,
                "settings.changed",
                actor,
                address=address,
                setting=name,
                old=old,
                new=value,
            )


def record_apart(db: Database, action: str, **fields) -> None:
    """Record in a transaction of its own: for what happens in a request that then fails."""
    with db.session() as session:
        record(session, action, **fields)


@dataclass(frozen=True)
class Filters:
    action: str | None = None  # a prefix: "login" finds login.failed and login.succeeded
    user: str | None = None  # as the actor or the account acted on
    since: datetime | None = None
    before: datetime | None = None


def page(
    session: Session, filters: Filters, limit: int = 50, cursor: str | None = None
) -> tuple[list[AuditEvent], str | None]:
    """Newest first: one page, and the cursor of the next (None at the end)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"limit is between 1 and {MAX_PAGE}.")
    query = select(AuditEvent)
    if filters.action:
        escaped = filters.action.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(AuditEvent.action.like(f"{escaped}%", escape="\\"))
    if filters.user:
        name = username_key(filters.user)
        query = query.where(
            or_(func.lower(AuditEvent.actor_name) == name, func.lower(AuditEvent.target) == name)
        )
    if filters.since:
        query = query.where(AuditEvent.at >= filters.since)
    if filters.before:
        query = query.where(AuditEvent.at < filters.before)
    if cursor:
        query = query.where(AuditEvent.id < _decode(cursor))
    # ids grow with each event written: the order of writing, and a cursor that cannot skip
    # or repeat an event however many share one timestamp
    rows = list(session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit + 1)))
    next_cursor = str(rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


_CURSOR = re.compile(r"[1-9][0-9]{0,17}")  # an event's id, as page() writes it


def _decode(cursor: str) -> int:
    if not _CURSOR.fullmatch(cursor):
        raise InvalidRequest("The cursor is not one this server gave; start again without it.")
    return int(cursor)


def purge(session: Session, older_than: datetime) -> int:
    """Delete the events from before ``older_than``; how many."""
    result = session.execute(delete(AuditEvent).where(AuditEvent.at < older_than))
    return result.rowcount or 0


def purge_expired(session: Session, retention_days: int) -> int:
    """The site's retention applied now (0 days: keep every event)."""
    if not retention_days:
        return 0
    return purge(session, utcnow() - timedelta(days=retention_days))


_AGO = re.compile(r"(\d{1,6})\s*([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_moment(text: str, what: str = "since") -> datetime:
    """A moment as a person writes one: "7d" (7 days ago; also "12h", "30m"), a date
    ("2026-12-01", midnight UTC) or a date and time (UTC unless it says otherwise)."""
    text = text.strip()
    try:
        if found := _AGO.fullmatch(text.lower()):
            return utcnow() - timedelta(**{_UNITS[found[2]]: int(found[1])})
        moment = datetime.fromisoformat(text)
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
        return moment.astimezone(UTC)  # as the database compares it
    except (ValueError, OverflowError):  # OverflowError: "999999d", or before the year 1
        raise InvalidRequest(
            f"{what} is a date (2026-12-01), a date and time (2026-12-01T08:30), or a time ago "
            f'("7d", "12h", "30m"); got {text[:40]!r}.'
        ) from None


def _word(value: object, limits: bool) -> str:
    if value is None:
        return "unlimited" if limits else "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def describe(action: str, detail: dict) -> str:
    """What an event carries, in one line for a person: a change as "name: old → new" (of a
    set of limits, only those that changed; a user's limit left out is "default", the site's
    null "unlimited"), any other fact as "key: value". The page and ``sfumato audit`` show it."""
    detail = dict(detail or {})
    setting = detail.pop("setting", None)
    limits = setting == "quotas" or action == "user.quotas_changed"
    parts = []
    if "old" in detail or "new" in detail:
        old, new = detail.pop("old", None), detail.pop("new", None)
        prefix = f"{setting}." if setting else ""
        if isinstance(old or {}, dict) and isinstance(new or {}, dict):
            old, new = old or {}, new or {}
            for key in sorted(old.keys() | new.keys(), key=list({**old, **new}).index):
                if key in old and key in new and old[key] == new[key]:
                    continue
                default = "default" if action == "user.quotas_changed" else _word(None, limits)
                before = _word(old[key], limits) if key in old else default
                after = _word(new[key], limits) if key in new else default
                parts.append(f"{prefix}{key}: {before} → {after}")
            parts = parts or [f"{setting or 'nothing'} unchanged"]
        else:
            name = f"{setting}: " if setting else ""
            parts.append(f"{name}{_word(old, limits)} → {_word(new, limits)}")
    elif setting is not None:
        detail = {"setting": setting, **detail}
    parts += [f"{key}: {_word(value, limits)}" for key, value in detail.items()]
    return ", ".join(parts)


def view(event: AuditEvent) -> dict:
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "action": event.action,
        "actor": event.actor_name,
        "actor_id": event.actor_id,
        "target": event.target,
        "address": event.address,
        "detail": event.detail or {},
        "summary": describe(event.action, event.detail or {}),
    }
