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
