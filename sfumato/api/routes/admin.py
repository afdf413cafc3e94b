"""What an admin runs: the server's settings, the users (disable, admin, quotas, a new
password) and the audit log. Every route needs an admin, and an API key the 'admin' scope;
every change is written to the audit log in the same transaction."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, or_, select

from sfumato import accounts, audit, quotas
from sfumato.api.deps import AdminUser, SessionDep, StudioDep, client_address
from sfumato.api.schemas import AdminUserList, AdminUserPublic, AuditPage
from sfumato.errors import Conflict, InvalidRequest, NotFound
from sfumato.store.site import SiteSettings, check_installed, read_site, update_site
from sfumato.store.tables import ApiKey, AuditEvent, Image, LoginSession, User, utcnow

router = APIRouter(prefix="/v1/admin", tags=["admin"])


# --- settings -------------------------------------------------------------------------------


@router.get("/settings", response_model=SiteSettings, summary="The server's settings (admins)")
def get_settings(user: AdminUser, session: SessionDep):
    return read_site(session).__dict__


@router.patch(
    "/settings", response_model=SiteSettings, summary="Change the server's settings (admins)"
)
def patch_settings(
    changes: dict, request: Request, user: AdminUser, studio: StudioDep, session: SessionDep
):
    if "default_model" in changes:  # a name no request could run is refused now, not later
        check_installed(studio.models(), changes["default_model"])
    before = asdict(read_site(session))
    try:
        after = asdict(update_site(session, changes))
    except (TypeError, ValidationError) as e:
        raise InvalidRequest(str(e)) from None
    audit.record_settings(session, before, after, user, client_address(request))
    return after


# --- users ----------------------------------------------------------------------------------


def _per_user(session, user_id, value, *where, users: list[User] | None) -> dict:
    """``value`` grouped by ``user_id``: for ``users``, or for everyone (None) without a
    list of ids in the query, however many accounts there are."""
    if users is not None:
        where += (user_id.in_([u.id for u in users]),)
    return dict(session.execute(select(user_id, value).where(*where).group_by(user_id)).all())


def users_view(session, users: list[User], every: bool = False) -> list[dict]:
    """Each user with what the admin looks at: pictures, working keys, the last login (from
    the audit log, or from a session for logins made before it existed). ``every``: the
    list is every account."""
    among = None if every else users
    images = _per_user(session, Image.user_id, func.count(), users=among)
    now = utcnow()
    working = (
        ApiKey.revoked_at.is_(None),
        or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
    )
    keys = _per_user(session, ApiKey.user_id, func.count(), *working, users=among)
    logged_in = AuditEvent.action == "login.succeeded"
    logins = _per_user(
        session, AuditEvent.actor_id, func.max(AuditEvent.at), logged_in, users=among
    )
    sessions = _per_user(
        session, LoginSession.user_id, func.max(LoginSession.created_at), users=among
    )
    views = []
    for u in users:
        moments = [m for m in (logins.get(u.id), sessions.get(u.id)) if m is not None]
        views.append(
            {
                "id": u.id,
                "username": u.username,
                "is_admin": u.is_admin,
                "disabled": u.disabled,
                "created_at": u.created_at.isoformat(),
                "quotas": u.quotas or {},
                "images": images.get(u.id, 0),
                "keys": keys.get(u.id, 0),
                "last_login_at": max(moments).isoformat() if moments else None,
            }
        )
    return views


@router.get("/users", response_model=AdminUserList, summary="Every account (admins)")
def list_users(user: AdminUser, session: SessionDep):
    every = list(session.scalars(select(User).order_by(User.id)))
    return {"users": users_view(session, every, every=True)}


class UserChanges(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # "yes" is not true

    disabled: bool | None = Field(None, description="Locked out: sessions end, keys stop.")
    is_admin: bool | None = None
    quotas: dict | None = Field(
        None,
        description="The user's own limits, replacing the ones set before: a limit left out "
        "is the site's, null is unlimited; {} for the site's limits throughout.",
    )


# ids are 32-bit on every database: a larger number names nobody (and would overflow a query)
MAX_ID = 2**31 - 1


def _target(session, user_id: int) -> User:
    found = session.get(User, user_id) if 1 <= user_id <= MAX_ID else None
    if found is None:
        raise NotFound(f"There is no user with id {user_id}.")
    return found


@router.patch(
    "/users/{user_id}",
    response_model=AdminUserPublic,
    summary="Disable or enable a user, make or unmake an admin, set their quotas (admins)",
)
def patch_user(
    user_id: int,
    changes: UserChanges,
    request: Request,
    admin: AdminUser,
    session: SessionDep,
):
    target = _target(session, user_id)
    address = client_address(request)
    given = changes.model_fields_set
    # the caller is an admin who can log in, and cannot stop being one here: so this route
    # can never remove the last admin (the command line's disable is the operator's own)
    if target.id == admin.id and (changes.disabled is True or changes.is_admin is False):
        raise Conflict(
            "You cannot disable yourself or take away your own admin rights: you would lock "
            "yourself out. Ask another admin."
        )
    if "quotas" in given:
        # validated whole; kept as given, so a limit left out stays the site's
        overrides = changes.quotas or {}
        quotas.parse(overrides, "quotas")
        if overrides != (target.quotas or {}):
            audit.record(
                session,
                "user.quotas_changed",
                admin,
                target,
                address,
                old=target.quotas or {},
                new=overrides,
            )
            target.quotas = overrides
    if changes.is_admin is not None and changes.is_admin != target.is_admin:
        target.is_admin = changes.is_admin
        action = "user.admin_granted" if changes.is_admin else "user.admin_revoked"
        audit.record(session, action, admin, target, address)
    if changes.disabled is not None and changes.disabled != target.disabled:
        target.disabled = changes.disabled
        if changes.disabled:  # logged out everywhere at once; its keys stop working too
            session.query(LoginSession).filter(LoginSession.user_id == target.id).delete()
        action = "user.disabled" if changes.disabled else "user.enabled"
        audit.record(session, action, admin, target, address)
    session.flush()
    return users_view(session, [target])[0]


class NewPassword(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    password: str = Field(max_length=accounts.MAX_PASSWORD)
    revoke_keys: bool = Field(True, description="Revoke every API key of the user as well.")


@router.post(
    "/users/{user_id}/password",
    status_code=204,
    response_class=Response,
    summary="Give a user a new password: their sessions end, their keys are revoked (admins)",
)
def reset_password(
    user_id: int, body: NewPassword, request: Request, admin: AdminUser, session: SessionDep
):
    target = _target(session, user_id)
    revoked = accounts.set_password(session, target, body.password, body.revoke_keys)
    audit.record(
        session,
        "password.reset",
        admin,
        target,
        client_address(request),
        keys_revoked=revoked,
    )
    return Response(status_code=204)


# --- the audit log --------------------------------------------------------------------------


@router.get("/audit", response_model=AuditPage, summary="The audit log, newest first (admins)")
def read_audit(
    user: AdminUser,
    session: SessionDep,
    action: Annotated[
        str | None,
        Query(max_length=64, description="An action or its beginning: login, key.created."),
    ] = None,
    username: Annotated[
        str | None,
        Query(alias="user", max_length=64, description="Who acted, or whose account it was."),
    ] = None,
    since: Annotated[
        str | None, Query(max_length=40, description='A date, a time, or "7d", "12h".')
    ] = None,
    before: Annotated[str | None, Query(max_length=40, description="A date or a time.")] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=40, description="next of a page.")] = None,
):
    filters = audit.Filters(
        action=action,
        user=username,
        since=audit.parse_moment(since, "since") if since else None,
        before=audit.parse_moment(before, "before") if before else None,
    )
    events, next_cursor = audit.page(session, filters, limit, cursor)
    return {"events": [audit.view(e) for e in events], "next": next_cursor}
