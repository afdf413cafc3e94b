"""The audit log on each database: what an event keeps, the filters, the cursor, the purge."""

from datetime import UTC, datetime, timedelta

import pytest

from sfumato import accounts, audit
from sfumato.errors import InvalidRequest
from sfumato.store.tables import AuditEvent, utcnow


def test_an_event_keeps_who_did_what_to_whom(db):
    with db.session() as session:
        ann = accounts.create_user(session, "ann", "long enough")
        bob = accounts.create_user(session, "bob", "long enough")
        audit.record(session, "user.disabled", ann, bob, "10.0.0.1", why="spam")
        audit.record(session, "password.reset", audit.CLI, bob, keys_revoked=2)
    with db.session() as session:
        newest, first = (audit.view(e) for e in audit.page(session, audit.Filters())[0])
    assert first | {"id": 0, "at": ""} == {
        "id": 0,
        "at": "",
        "action": "user.disabled",
        "actor": "ann",
        "actor_id": ann.id,
        "target": "bob",
        "address": "10.0.0.1",
        "detail": {"why": "spam"},
        "summary": "why: spam",
    }
    assert newest["actor"] == "(command line)" and newest["actor_id"] is None
    assert newest["detail"] == {"keys_revoked": 2}


def test_a_change_reads_as_old_to_new_naming_only_the_limits_that_changed():
    assert audit.describe(
        "settings.changed", {"setting": "signup_open", "old": True, "new": False}
    ) == ("signup_open: yes → no")
    quotas = {
        "setting": "quotas",
        "old": {"images": None, "keys": 5},
        "new": {"images": 500, "keys": 5},
    }
    assert audit.describe("settings.changed", quotas) == "quotas.images: unlimited → 500"
    # a user's limit left out is the site's default; named as null, unlimited
    change = {"old": {"keys": 3}, "new": {"images": 5, "keys": None}}
    assert (
        audit.describe("user.quotas_changed", change) == "keys: 3 → unlimited, images: default → 5"
    )
    assert audit.describe("key.created", {"scopes": ["read"], "expires_at": None}) == (
        'scopes: ["read"], expires_at: none'
    )


def test_an_event_recorded_apart_survives_the_failed_transaction(db):
    with pytest.raises(RuntimeError), db.session() as session:
        audit.record(session, "settings.changed", audit.CLI, setting="x", old=1, new=2)
        audit.record_apart(db, "login.failed", target="ann", address="10.0.0.2")
        raise RuntimeError  # the request failed: its own records roll back with it
    with db.session() as session:
        (event,) = audit.page(session, audit.Filters())[0]
    assert event.action == "login.failed" and event.target == "ann"


def test_filters_by_action_prefix_user_and_time(db):
    with db.session() as session:
        ann = accounts.create_user(session, "Ann", "long enough")
        audit.record(session, "login.failed", target="ann")
        audit.record(session, "login.succeeded", ann, ann)
        audit.record(session, "key.created", ann, ann)
        audit.record(session, "settings.changed", audit.CLI, setting="x")
        audit.record(session, "login_x", target="100%_ann")  # not a "login." action

    def actions(**filters) -> list[str]:
        with db.session() as session:
            return [e.action for e in audit.page(session, audit.Filters(**filters))[0]]

    assert actions(action="login.") == ["login.succeeded", "login.failed"]
    assert actions(action="login") == ["login_x", "login.succeeded", "login.failed"]
    assert actions(user="ANN") == ["key.created", "login.succeeded", "login.failed"]
    assert actions(user="100%_ann") == ["login_x"]  # LIKE's wildcards are plain letters
    assert actions(action="%") == []
    assert actions(since=utcnow() + timedelta(minutes=1)) == []
    assert len(actions(before=utcnow() + timedelta(minutes=1))) == 5


def test_pages_follow_each_other_without_gaps_or_repeats(db):
    same_moment = datetime(2026, 12, 1, tzinfo=UTC)
    with db.session() as session:
        for n in range(7):
            audit.record(session, "key.created", target=f"user{n}").at = same_moment
    seen, cursor = [], None
    with db.session() as session:
        while True:
            events, cursor = audit.page(session, audit.Filters(), limit=3, cursor=cursor)
            seen += [e.target for e in events]
            if cursor is None:
                break
    assert seen == [f"user{n}" for n in reversed(range(7))]


@pytest.mark.parametrize("cursor", ["0", "-3", "1e3", "12 ", "9" * 40, "MTIz"])
def test_a_cursor_the_server_did_not_write_is_refused(db, cursor):
    with db.session() as session, pytest.raises(InvalidRequest, match="cursor is not one"):
        audit.page(session, audit.Filters(), cursor=cursor)


def test_purge_deletes_only_what_is_older(db):
    now = utcnow()
    with db.session() as session:
        for days in (400, 100, 1):
            audit.record(session, "logout", target=f"{days}").at = now - timedelta(days=days)
    with db.session() as session:
        assert audit.purge_expired(session, 0) == 0  # 0: kept forever
        assert audit.purge_expired(session, 365) == 1
        assert audit.purge(session, now - timedelta(days=50)) == 1
    with db.session() as session:
        assert [e.target for e in session.query(AuditEvent)] == ["1"]


def test_moments_as_people_write_them():
    now = utcnow()
    assert abs(audit.parse_moment("7d") - (now - timedelta(days=7))) < timedelta(seconds=5)
    assert abs(audit.parse_moment("12h") - (now - timedelta(hours=12))) < timedelta(seconds=5)
    assert audit.parse_moment("2026-12-01") == datetime(2026, 12, 1, tzinfo=UTC)
    assert audit.parse_moment("2026-12-01T08:30+01:00") == datetime(2026, 12, 1, 7, 30, tzinfo=UTC)
    with pytest.raises(InvalidRequest, match="since is a date"):
        audit.parse_moment("last week")


def test_long_names_and_addresses_are_cut_to_their_columns(db):
    with db.session() as session:
        audit.record(session, "login.failed", target="x" * 1000, address="y" * 1000)
    with db.session() as session:
        (event,) = session.query(AuditEvent)
        assert len(event.target) == 255 and len(event.address) == 64
