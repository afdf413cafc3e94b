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

from sfumato.errors import Conflict, Forbidden, InvalidRequest, NotAuthenticated, NotFound
from sfumato.store.tables import ApiKey, LoginSession, User, utcnow

# matched whole (fullmatch: "$" would let "alice\n" through as a second "alice"), after NFKC,
# so "ａｌｉｃｅ" typed in full width is "alice"; any other non-ASCII letter is refused, so no
# look-alike ("аlice" with a Cyrillic a) can be made. Names are told apart without case.
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{1,31}")
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
SESSION_DAYS = 30
KEY_PREFIX = "sfm_"
# what an API key may do (a cookie session may do all its user may): make and change pictures,
# read them, run the server. A key is made for generate and read unless asked otherwise, so a
# leaked everyday key cannot administer the server.
SCOPES = ("generate", "read", "admin")
DEFAULT_SCOPES = ("generate", "read")
MAX_KEY_DAYS = 3650
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


def set_password(
    session: Session, user: User, password: str, revoke_keys: bool = True, keep: str | None = None
) -> int:
    """A new password ends every session of the old one (but ``keep``, the token of the
    session that changed it) and, unless told otherwise, revokes every API key: whoever learnt
    the old password may have made one. The number of keys revoked."""
    check_password(password)
    user.password_hash = _hasher.hash(password)
    kept = _digest(keep) if keep else None
    for login in session.scalars(select(LoginSession).where(LoginSession.user_id == user.id)):
        if login.token_hash != kept:
            session.delete(login)
    if not revoke_keys:
        return 0
    now, revoked = utcnow(), 0
    for row in session.scalars(
        select(ApiKey).where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
    ):
        row.revoked_at, revoked = now, revoked + 1
    return revoked


def verify_password(user: User, password: str) -> None:
    """Refuses (403) a password that is not the user's own: a change needs the old one."""
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise Forbidden("The current password is wrong.") from None


def start_session(
    session: Session, user: User, keep_at_most: int | None = None
) -> tuple[str, LoginSession]:
    """A new login: the cookie's token (kept only by the browser) and its row. With
    ``keep_at_most`` (the user's sessions quota), the user's oldest sessions end so that no
    more remain, the new one among them: logging in always works, on the newest device."""
    token = secrets.token_urlsafe(32)
    login = LoginSession(
        token_hash=_digest(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=utcnow(),
        expires_at=utcnow() + timedelta(days=SESSION_DAYS),
    )
    if keep_at_most is not None:
        older = session.scalars(
            select(LoginSession)
            .where(LoginSession.user_id == user.id)
            .order_by(LoginSession.created_at.desc(), LoginSession.token_hash)
        )
        for old in list(older)[max(keep_at_most, 1) - 1 :]:
            session.delete(old)
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


def check_scopes(user: User, scopes: list[str] | None) -> list[str]:
    """The scopes a new key gets: a non-empty set of known ones, admin only for an admin."""
    if scopes is None:
        return list(DEFAULT_SCOPES)
    unknown = sorted(set(scopes) - set(SCOPES))
    if not scopes or unknown:
        raise InvalidRequest(
            f"scopes is a non-empty list of {', '.join(SCOPES)}"
            + (f"; {', '.join(map(repr, unknown))} is not one." if unknown else ".")
        )
    if "admin" in scopes and not user.is_admin:
        raise Forbidden("Only an admin may make a key with the 'admin' scope.")
    return [scope for scope in SCOPES if scope in scopes]  # in a fixed order, once each


def create_key(
    session: Session,
    user: User,
    name: str,
    scopes: list[str] | None = None,
    expires_in_days: int | None = None,
) -> tuple[str, ApiKey]:
    """A new API key: the key itself (shown once, never stored) and its row."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidRequest("Give the key a name of 1 to 100 characters, to tell it apart.")
    scopes = check_scopes(user, scopes)
    if expires_in_days is not None and (
        isinstance(expires_in_days, bool)
        or not isinstance(expires_in_days, int)
        or not 1 <= expires_in_days <= MAX_KEY_DAYS
    ):
        raise InvalidRequest(
            f"expires_in_days is a whole number of days from 1 to {MAX_KEY_DAYS}, or null for "
            "a key that never expires."
        )
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        user_id=user.id,
        name=name,
        key_hash=_digest(key),
        prefix=key[:10],
        scopes=scopes,
        expires_at=utcnow() + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    session.add(row)
    session.flush()
    return key, row


def is_expired(row: ApiKey, now: datetime | None = None) -> bool:
    return row.expires_at is not None and row.expires_at <= (now or utcnow())


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


def key_holder(session: Session, key: str, now: datetime | None = None) -> tuple[User, ApiKey]:
    """Whose key this is, and its row; refused (401) with a sentence that says why."""
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == _digest(key)))
    user = session.get(User, row.user_id) if row is not None else None
    if row is None or row.revoked_at is not None or user is None or user.disabled:
        raise NotAuthenticated("The API key is not valid: it was revoked or mistyped.")
    now = now or utcnow()
    if is_expired(row, now):
        raise NotAuthenticated(
            f"This API key expired on {row.expires_at:%Y-%m-%d %H:%M} UTC; make a new one."
        )
    # written at most once a minute: a busy client does not turn every read into a write
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
        row.last_used_at = now
    return user, row


def user_for_key(session: Session, key: str, now: datetime | None = None) -> User | None:
    """The key's user, or None for a key that does not let anyone in."""
    try:
        return key_holder(session, key, now)[0]
    except NotAuthenticated:
        return None
