"""Sign up, log in, log out, and who am I."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from sfumato import accounts, audit, quotas
from sfumato.api.bodies import json_body
from sfumato.api.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    ReadUser,
    SessionDep,
    StudioDep,
    client_address,
    failed_login,
)
from sfumato.api.openapi import hand_parsed_body
from sfumato.api.schemas import LoggedIn, Me
from sfumato.errors import Forbidden, InvalidRequest, NotAuthenticated
from sfumato.store.site import read_site
from sfumato.store.tables import User

router = APIRouter(prefix="/v1", tags=["account"])


class Credentials(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=accounts.MAX_PASSWORD)


def user_view(user: User) -> dict:
    return {
        "id": user.id,
        "username": user.username,
        "is_admin": user.is_admin,
        "created_at": user.created_at.isoformat(),
    }


async def _credentials(request: Request) -> Credentials:
    """From JSON, or from a plain HTML form."""
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            data = {k: v for k, v in form.items() if isinstance(v, str)}
        else:
            data = await json_body(request)  # a sentence of its own for a body that is not JSON
        return Credentials.model_validate(data)
    except ValueError:  # pydantic's ValidationError, a form's
        raise InvalidRequest("Send a username and a password (JSON or a form).") from None


def _same_origin(request: Request) -> None:
    """A login from another site's page (login CSRF) is refused, and so is ``Origin: null``
    (a sandboxed frame, a no-referrer page, a redirect from another site: a browser that
    hides where the page came from). A script sends no Origin at all, and is let in."""
    origin = request.headers.get("origin")
    if origin is not None and (
        origin.strip().lower() == "null" or urlsplit(origin).netloc != request.url.netloc
    ):
        raise Forbidden("Log in from this server's own page.")


def _log_in(session, user: User, request: Request, response: Response) -> dict:
    keep = quotas.sessions_limit(session, user)  # the oldest sessions end beyond it
    token, login = accounts.start_session(session, user, keep)
    secure = request.url.scheme == "https"
    max_age = accounts.SESSION_DAYS * 86400
    response.set_cookie(
        SESSION_COOKIE, token, max_age=max_age, httponly=True, samesite="lax", secure=secure
    )
    # readable by the page's script, which echoes it in X-CSRF-Token
    response.set_cookie(
        CSRF_COOKIE, login.csrf_token, max_age=max_age, samesite="strict", secure=secure
    )
    return {"user": user_view(user), "csrf_token": login.csrf_token}


_BODY = hand_parsed_body(Credentials)  # JSON, or a plain HTML form


@router.post(
    "/auth/signup",
    status_code=201,
    response_model=LoggedIn,
    summary="Make an account and log in",
    openapi_extra=_BODY,
)
async def signup(request: Request, response: Response, studio: StudioDep):
    _same_origin(request)
    credentials = await _credentials(request)
    studio.throttle.signup(client_address(request))

    def make() -> dict:  # argon2 takes a moment: off the event loop
        with studio.db.session() as session:
            first = not session.query(User.id).first()
            if not first and not read_site(session).signup_open:
                raise Forbidden("Sign-up is closed on this server; ask its admin for an account.")
            user = accounts.create_user(session, credentials.username, credentials.password)
            audit.record(session, "signup", user, user, client_address(request))
            return _log_in(session, user, request, response)

    return await run_in_threadpool(make)


@router.post(
    "/auth/login",
    response_model=LoggedIn,
    summary="Log in (sets the session cookie)",
    openapi_extra=_BODY,
)
async def login(request: Request, response: Response, studio: StudioDep):
    _same_origin(request)
    credentials = await _credentials(request)
    address, name = client_address(request), credentials.username
    studio.throttle.before_login(address, name)  # before the (slow) password hash

    def check() -> dict:
        try:
            with studio.db.session() as session:
                user = accounts.authenticate(session, name, credentials.password)
                audit.record(session, "login.succeeded", user, user, address)
                return _log_in(session, user, request, response)
        except NotAuthenticated as refused:
            failed_login(studio, address, name, refused)
            raise

    return await run_in_threadpool(check)


@router.post("/auth/logout", status_code=204, summary="Log out (ends this session)")
def logout(request: Request, response: Response, user: ReadUser, session: SessionDep):
    if token := request.cookies.get(SESSION_COOKIE):
        accounts.end_session(session, token)
        audit.record(session, "logout", user, user, client_address(request))
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(CSRF_COOKIE)


@router.get("/me", response_model=Me, summary="The logged-in user")
def me(request: Request, user: ReadUser, studio: StudioDep, session: SessionDep):
    return user_view(user) | {
        "csrf_token": getattr(request.state, "csrf_token", None),
        "personal_mode": studio.personal_user_id is not None,
        "quotas": quotas.report(session, user),
    }
