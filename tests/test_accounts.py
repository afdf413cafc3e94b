"""Accounts, sessions and API keys: what is stored is never what unlocks."""

import pytest
from sqlalchemy import func, select

from sfumato import accounts
from sfumato.errors import Conflict, InvalidRequest, NotAuthenticated
from sfumato.store.tables import ApiKey, LoginSession, User


def test_passwords_are_stored_as_argon2_and_checked(db):
    with db.session() as session:
        first = accounts.create_user(session, "Ann", "long enough")
        second = accounts.create_user(session, "bob", "long enough")
        assert first.is_admin and not second.is_admin  # the first account is the admin
        assert first.password_hash.startswith("$argon2id$")
        assert "long enough" not in first.password_hash
    with db.session() as session:
        assert accounts.authenticate(session, "ANN", "long enough").id == first.id
        with pytest.raises(NotAuthenticated, match="user name or the password is wrong"):
            accounts.authenticate(session, "ann", "wrong password")
        with pytest.raises(NotAuthenticated, match="user name or the password is wrong"):
            accounts.authenticate(session, "nobody", "long enough")


def test_names_are_unique_whatever_their_case_and_passwords_long_enough(db):
    with db.session() as session:
        accounts.create_user(session, "ann", "long enough")
        with pytest.raises(Conflict, match="taken"):
            accounts.create_user(session, "ANN", "long enough")
        with pytest.raises(InvalidRequest, match="between 8"):
            accounts.create_user(session, "cy", "short")
        with pytest.raises(InvalidRequest, match="letters, digits"):
            accounts.create_user(session, "no spaces please", "long enough")


def test_a_disabled_account_cannot_log_in_nor_use_its_keys(db):
    with db.session() as session:
        user = accounts.create_user(session, "ann", "long enough")
        key, _ = accounts.create_key(session, user, "bot")
        user.disabled = True
    with db.session() as session:
        with pytest.raises(NotAuthenticated, match="disabled"):
            accounts.authenticate(session, "ann", "long enough")
        assert accounts.user_for_key(session, key) is None


def test_keys_and_sessions_are_stored_hashed_and_revocation_is_immediate(db):
    with db.session() as session:
        user = accounts.create_user(session, "ann", "long enough")
        key, row = accounts.create_key(session, user, "bot")
        token, _ = accounts.start_session(session, user)
    with db.session() as session:
        stored = [k.key_hash for k in session.scalars(select(ApiKey))]
        stored += [s.token_hash for s in session.scalars(select(LoginSession))]
        assert key not in str(stored) and token not in str(stored)
        assert accounts.user_for_key(session, key).id == user.id
        assert accounts.session_for(session, token)[0].id == user.id
        accounts.revoke_key(session, user, row.id)
        accounts.end_session(session, token)
    with db.session() as session:
        assert accounts.user_for_key(session, key) is None
        assert accounts.session_for(session, token) is None


def test_a_new_password_ends_the_old_sessions(db):
    with db.session() as session:
        user = accounts.create_user(session, "ann", "long enough")
        token, _ = accounts.start_session(session, user)
        accounts.set_password(session, user, "another long one")
    with db.session() as session:
        assert accounts.session_for(session, token) is None
        accounts.authenticate(session, "ann", "another long one")


@pytest.mark.parametrize(
    "name",
    [
        "alice\n",  # issue 23: "$" matched before the newline, a second "alice"
        "alice\r\n",
        "\nalice",
        "alice ",
        "al ice",
        "аlice",  # a Cyrillic a: a look-alike of alice
        "alicе",  # a Cyrillic e
        "alice\u200b",  # a zero-width space
        "ALİCE",  # a dotted capital I
        "a",
        "a" * 33,
        "-alice",
        "",
    ],
)
def test_a_name_with_a_newline_or_a_look_alike_is_refused(db, name):
    with db.session() as session:
        accounts.create_user(session, "alice", "a long password")
        with pytest.raises(InvalidRequest, match="user name"):
            accounts.create_user(session, name, "a long password")
        assert session.scalar(select(func.count()).select_from(User)) == 1


def test_names_are_nfkc_normalised_and_compared_without_case(db):
    with db.session() as session:
        user = accounts.create_user(session, "ｂｏｂ２", "a long password")  # full width
        assert (user.username, user.username_key) == ("bob2", "bob2")
        with pytest.raises(Conflict):
            accounts.create_user(session, "BOB2", "a long password")
        assert accounts.authenticate(session, "Ｂｏｂ２", "a long password") is user
        assert accounts.find_user(session, "BoB2") is user
        with pytest.raises(NotAuthenticated):
            accounts.authenticate(session, "bob2\n", "a long password")


def test_a_new_password_revokes_keys_unless_told_and_may_keep_one_session(db):
    with db.session() as session:
        user = accounts.create_user(session, "ann", "long enough")
        kept_key, _ = accounts.create_key(session, user, "kept")
        here, _ = accounts.start_session(session, user)
        elsewhere, _ = accounts.start_session(session, user)
        assert accounts.set_password(session, user, "second one", revoke_keys=False) == 0
    with db.session() as session:
        assert accounts.user_for_key(session, kept_key) is not None
        here, _ = accounts.start_session(session, session.get(User, user.id))
        elsewhere, _ = accounts.start_session(session, session.get(User, user.id))
    with db.session() as session:
        user = session.get(User, user.id)
        assert accounts.set_password(session, user, "third one!", keep=here) == 1
    with db.session() as session:
        assert accounts.user_for_key(session, kept_key) is None
        assert accounts.session_for(session, here) is not None
        assert accounts.session_for(session, elsewhere) is None


def test_keys_expire_and_carry_their_scopes(db):
    from datetime import timedelta

    from sfumato.errors import Forbidden
    from sfumato.store.tables import utcnow

    with db.session() as session:
        admin = accounts.create_user(session, "ann", "long enough")
        user = accounts.create_user(session, "bob", "long enough")
        key, row = accounts.create_key(session, user, "bot", ["read", "read"], 1)
        assert row.scopes == ["read"]
        with pytest.raises(Forbidden, match="Only an admin"):
            accounts.create_key(session, user, "x", ["admin"])
        _, admin_row = accounts.create_key(session, admin, "x", ["admin", "generate"])
        assert admin_row.scopes == ["generate", "admin"]
        with pytest.raises(InvalidRequest, match="from 1 to 3650"):
            accounts.create_key(session, user, "x", expires_in_days=True)
    with db.session() as session:
        assert accounts.key_holder(session, key)[1].scopes == ["read"]
        later = utcnow() + timedelta(days=1, seconds=1)
        with pytest.raises(NotAuthenticated, match="expired on"):
            accounts.key_holder(session, key, later)


def test_a_sessions_limit_ends_the_oldest_but_always_lets_the_newest_in(db):
    with db.session() as session:
        user = accounts.create_user(session, "ann", "long enough")
        tokens = [accounts.start_session(session, user, keep_at_most=2)[0] for _ in range(3)]
        session.flush()
        assert [accounts.session_for(session, t) is not None for t in tokens] == [
            False,
            True,
            True,
        ]
        newest, _ = accounts.start_session(session, user, keep_at_most=0)
        session.flush()
        assert accounts.session_for(session, newest) is not None
        assert all(accounts.session_for(session, t) is None for t in tokens)
