"""Accounts, login sessions and API keys.

Passwords are hashed with argon2 (argon2-cffi's defaults, RFC 9106's second recommended
setting). Session tokens and API keys are 256-bit random strings, so a plain SHA-256 of them
is enough to store: nobody can guess one from its hash, and a lookup stays one indexed read.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sfumato.errors import Conflict, InvalidRequest, NotAuthenticated, NotFound
from sfumato.store.tables import ApiKey, LoginSession, User, utcnow

# matched whole (fullmatch: "$" would let "alice\n" through as a second "alice"), after NFKC,
# so "ａｌｉｃｅ" typed in full width is "alice"; any other non-ASCII letter is refused, so no
# look-alike ("аlice" with a Cyrillic a) can be made. Names are told apart without case.
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{1,31}")
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
SESSION_DAYS = 30
KEY_PREFIX = "sfm_"
_hasher = PasswordHasher()
# verified against when the user does not exist, so that a wrong name takes as long as a
# wrong password and nobody can learn which accounts exist by timing the answer
_DUMMY_HASH = _hasher.hash("not a password of anyone")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidRequest(
            f"The password must have between {MIN_PASSWORD} and {MAX_PASSWORD} characters."
        )


def normalise(username: str) -> str:
    """The name as stored (NFKC: full-width letters and digits become ASCII)."""
    return unicodedata.normalize("NFKC", username)


def username_key(username: str) -> str:
    """What tells names apart: the normalised name without case."""
    return normalise(username).lower()


def find_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username_key == username_key(username)))
    if user is None:
        raise NotFound(f"There is no user named {username!r}.")
    return user


def create_user(
    session: Session, username: str, password: str, is_admin: bool | None = None
) -> User:
    """A new account; the first account of a server is its admin."""
    username = normalise(username)
    if not USERNAME.fullmatch(username):
        raise InvalidRequest(
            "A user name has 2 to 32 letters, digits, '.', '_' or '-', and starts with a "
            "letter or digit."
        )
    check_password(password)
    if session.scalar(select(User.id).where(User.username_key == username_key(username))):
        raise Conflict(f"The name {username!r} is taken; choose another.")
    if is_admin is None:
        is_admin = not session.scalar(select(func.count()).select_from(User))
    user = User(
        username=username,
        username_key=username_key(username),
        password_hash=_hasher.hash(password),
        is_admin=is_admin,
        disabled=False,
        preferences={},
    )
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User:
    user = session.scalar(select(User).where(User.username_key == username_key(username)))
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        user = None
    if user is None:
        raise NotAuthenticated("The user name or the password is wrong.")
    if user.disabled:
        raise NotAuthenticated("This account is disabled; ask the server's admin.")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def set_password(session: Session, user: User, password: str) -> None:
    check_password(password)
    user.password_hash = _hasher.hash(password)
    # a new password ends every session of the old one
    for login in session.scalars(select(LoginSession).where(LoginSession.user_id == user.id)):
        session.delete(login)


def start_session(session: Session, user: User) -> tuple[str, LoginSession]:
    """A new login: the cookie's token (kept only by the browser) and its row."""
    token = secrets.token_urlsafe(32)
    login = LoginSession(
        token_hash=_digest(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        expires_at=utcnow() + timedelta(days=SESSION_DAYS),
    )
    session.add(login)
    return token, login


def end_session(session: Session, token: str) -> None:
    if login := session.get(LoginSession, _digest(token)):
        session.delete(login)


def session_for(session: Session, token: str) -> tuple[User, LoginSession] | None:
    login = session.get(LoginSession, _digest(token))
    if login is None or login.expires_at < utcnow():
        return None
    user = session.get(User, login.user_id)
    if user is None or user.disabled:
        return None
    return user, login


def create_key(session: Session, user: User, name: str) -> tuple[str, ApiKey]:
    """A new API key: the key itself (shown once, never stored) and its row."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidRequest("Give the key a name of 1 to 100 characters, to tell it apart.")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(user_id=user.id, name=name, key_hash=_digest(key), prefix=key[:10])
    session.add(row)
    session.flush()
    return key, row


def list_keys(session: Session, user: User) -> list[ApiKey]:
    query = select(ApiKey).where(ApiKey.user_id == user.id).order_by(ApiKey.created_at.desc())
    return list(session.scalars(query))


def revoke_key(session: Session, user: User, key_id: str) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None or row.user_id != user.id:
        raise NotFound(f"You have no API key {key_id!r}.")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def user_for_key(session: Session, key: str, now: datetime | None = None) -> User | None:
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == _digest(key)))
    if row is None or row.revoked_at is not None:
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        return None
    now = now or utcnow()
    # written at most once a minute: a busy client does not turn every read into a write
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
        row.last_used_at = now
    return user
