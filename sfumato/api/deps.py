"""What routes depend on: the studio, a database session, and who is asking.

Who is asking, in order: the one local user in personal mode; else an API key
(``Authorization: Bearer KEY``, ``X-API-Key: KEY`` or Dezgo's ``X-Dezgo-Key: KEY``); else HTTP
Basic (``Authorization: Basic``, how A1111's clients sign in: a user name with an API key or
the password); else the login cookie. A request that changes something with only the cookie
must carry the session's CSRF token in ``X-CSRF-Token``: another site can make a browser send
the cookie, but cannot read the token.

What a route needs is declared in its signature: ``ReadUser`` (it only reads), ``MakeUser``
(it makes or changes pictures), ``AdminUser`` (it runs the server), ``KeyManager`` (it makes
keys or changes the password), ``KeyRevoker`` (it revokes a key: any key may). An API key is
held to its scopes (``accounts.SCOPES``); a login cookie and personal mode may do all their
user may.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Iterator
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from sfumato import accounts, audit
from sfumato.errors import Forbidden, NotAuthenticated, TooManyRequests
from sfumato.store.tables import User
from sfumato.studio import Studio

SESSION_COOKIE = "sfumato_session"
CSRF_COOKIE = "sfumato_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def get_studio(request: Request) -> Studio:
    return request.app.state.studio


StudioDep = Annotated[Studio, Depends(get_studio)]


def get_session(studio: StudioDep) -> Iterator[Session]:
    with studio.db.session() as session:
        yield session


# "function": committed before the answer is sent, so what a call changed is saved when it
# returns (and a failed commit is an error the caller sees)
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def api_key(request: Request) -> str | None:
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-api-key") or request.headers.get("x-dezgo-key") or None


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """The user name and secret of ``Authorization: Basic``; None without one (an empty
    ``Basic`` header, as SillyTavern sends when no login is set, is none)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise NotAuthenticated(
            "The Basic credentials are not base64 of 'name:password' in UTF-8."
        ) from None
    name, colon, secret = decoded.partition(":")
    if not colon or not name or not secret:
        raise NotAuthenticated("Basic credentials need a user name and a password or an API key.")
    return name, secret


def failed_login(studio: Studio, address: str, name: str, refused: NotAuthenticated) -> None:
    """A wrong password, at a login or in Basic credentials: counted by the throttle and
    recorded apart (the request fails; its record must not roll back with it). Both are
    bounded by the throttle, so failures cannot flood the log."""
    studio.throttle.failed_login(address, name)
    tried = accounts.normalise(name)
    audit.record_apart(
        studio.db, "login.failed", target=tried, address=address, reason=refused.message
    )
    try:  # this failure was the one that locked the name or the address
        studio.throttle.before_login(address, name)
    except TooManyRequests as locked:
        audit.record_apart(
            studio.db, "login.locked", target=tried, address=address, reason=locked.message
        )


def _basic_user(request: Request, studio: Studio, name: str, secret: str) -> User:
    """The user of Basic credentials: the secret is one of their API keys (held to its scopes)
    or their password (as a login: throttled, failures in the audit log). The password is
    verified with argon2 on every request, deliberately slow: nothing faster is kept to
    compare it with, so a script should send a key."""
    address = client_address(request)
    if secret.startswith(accounts.KEY_PREFIX):
        with studio.db.session() as session:
            user, row = accounts.key_holder(session, secret)
            if accounts.username_key(name) != user.username_key:
                raise NotAuthenticated("This API key belongs to another user name.")
            request.state.key_scopes = tuple(row.scopes or ())
            request.state.key_id = row.id
            return user
    studio.throttle.before_login(address, name)  # before the (slow) password hash
    try:
        with studio.db.session() as session:
            return accounts.authenticate(session, name, secret)
    except NotAuthenticated as refused:
        failed_login(studio, address, name, refused)
        raise


def client_address(request: Request) -> str:
    """The connection's address (X-Forwarded-For is not trusted: anyone can send it)."""
    return request.client.host if request.client else "unknown"


LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def _only_local(request: Request) -> None:
    """Personal mode has no login, so it answers only what this machine's own pages ask: a
    request addressed to another name (a DNS-rebinding site) or a change sent from another
    site's page is refused."""
    host = request.headers.get("host", "")
    if urlsplit("//" + host).hostname not in LOCAL_HOSTS:
        raise Forbidden("In personal mode the server answers only requests to localhost.")
    origin = request.headers.get("origin")
    if request.method not in SAFE_METHODS and origin and urlsplit(origin).netloc != host:
        raise Forbidden("In personal mode, changes are accepted only from the server's own page.")


def current_user(request: Request, studio: StudioDep) -> User:
    if studio.personal_user_id is not None:
        _only_local(request)
        with studio.db.session() as session:
            return session.get_one(User, studio.personal_user_id)
    key = api_key(request)
    if key is None and (basic := basic_credentials(request)) is not None:
        # a browser sends cached Basic credentials to any site's request, as it sends a
        # cookie: a change from another site's page is refused, as the CSRF token refuses it
        origin = request.headers.get("origin")
        host = request.headers.get("host", "")
        if request.method not in SAFE_METHODS and origin and urlsplit(origin).netloc != host:
            raise Forbidden("Basic credentials are not accepted from another site's page.")
        return _basic_user(request, studio, *basic)
    with studio.db.session() as session:
        if key is not None:
            user, row = accounts.key_holder(session, key)
            request.state.key_scopes = tuple(row.scopes or ())
            request.state.key_id = row.id
            return user
        token = request.cookies.get(SESSION_COOKIE)
        found = accounts.session_for(session, token) if token else None
        if found is None:
            raise NotAuthenticated("Log in first, or send an API key (Authorization: Bearer KEY).")
        user, login = found
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not secrets.compare_digest(sent.encode(), login.csrf_token.encode()):
                raise Forbidden(
                    f"This request needs the {CSRF_HEADER} header that logging in gave; "
                    "reload the page."
                )
        request.state.csrf_token = login.csrf_token
        return user


CurrentUser = Annotated[User, Depends(current_user)]


# what each scope lets a key do, as its refusal says: "This API key may not ..."
SCOPE_WORDS = {
    "generate": "make or change pictures",
    "read": "read your pictures, jobs or account",
    "admin": "administer the server",
}


class Needs:
    """A route's dependency: the user, when the request may use ``scope`` (an API key
    without it is refused, 403)."""

    def __init__(self, scope: str):
        assert scope in accounts.SCOPES, scope
        self.scope = scope

    def __call__(self, request: Request, user: CurrentUser) -> User:
        scopes = getattr(request.state, "key_scopes", None)  # None: not an API key
        if scopes is not None and self.scope not in scopes:
            raise Forbidden(
                f"This API key may not {SCOPE_WORDS[self.scope]}; make a key with the "
                f"'{self.scope}' scope."
            )
        return user


ReadUser = Annotated[User, Depends(Needs("read"))]
MakeUser = Annotated[User, Depends(Needs("generate"))]


def admin_user(user: Annotated[User, Depends(Needs("admin"))]) -> User:
    if not user.is_admin:
        raise Forbidden("Only an admin may do this.")
    return user


AdminUser = Annotated[User, Depends(admin_user)]


def key_manager(request: Request, user: CurrentUser) -> User:
    """Keys and the password are managed from a login session (or personal mode) or with an
    admin-scoped key: a leaked everyday key must not mint new keys that outlive its own
    revocation, nor change the password that would revoke it."""
    scopes = getattr(request.state, "key_scopes", None)
    if scopes is not None and "admin" not in scopes:
        raise Forbidden(
            "API keys and the password are managed from a logged-in session (the page), or "
            "with a key that has the 'admin' scope."
        )
    return user


KeyManager = Annotated[User, Depends(key_manager)]


def key_revoker(user: CurrentUser) -> User:
    """Any key may revoke its user's keys, whatever its scopes: revoking only takes power away,
    and whoever finds a key leaked can end it with the key alone."""
    return user


KeyRevoker = Annotated[User, Depends(key_revoker)]
