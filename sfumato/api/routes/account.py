"""API keys, the password and saved preferences: what a user manages of their own account.

Making a key and changing the password need a login session (or personal mode) or a key with
the 'admin' scope (``KeyManager``): a leaked everyday key must not make keys that outlive its
own revocation. Listing keys is reading; any key may revoke keys (that only takes power
away)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from sfumato import accounts, audit, quotas
from sfumato.api.deps import (
    SESSION_COOKIE,
    KeyManager,
    KeyRevoker,
    MakeUser,
    ReadUser,
    SessionDep,
    StudioDep,
    client_address,
)
from sfumato.api.schemas import CreatedKey, KeyList, KeyPublic
from sfumato.errors import Forbidden
from sfumato.preferences import Preferences
from sfumato.store.site import check_installed
from sfumato.store.tables import ApiKey, User

router = APIRouter(prefix="/v1", tags=["account"])


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # true is not 1 day

    name: str = Field(max_length=100, description="To tell your keys apart, e.g. 'my bot'.")
    expires_in_days: int | None = Field(
        None, description=f"1 to {accounts.MAX_KEY_DAYS}; null: it never expires."
    )
    scopes: list[str] | None = Field(
        None,
        max_length=len(accounts.SCOPES),
        description="Any of generate, read, admin (admins only); default generate and read.",
    )


def key_view(row: ApiKey) -> dict:
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "created_at": row.created_at.isoformat(),
        "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
        "revoked": row.revoked_at is not None,
        "scopes": list(row.scopes or ()),
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "expired": accounts.is_expired(row),
    }


@router.post(
    "/keys", status_code=201, response_model=CreatedKey, summary="Make an API key (shown once)"
)
def create_key(
    body: NewKey, request: Request, user: KeyManager, studio: StudioDep, session: SessionDep
):
    address = client_address(request)
    studio.throttle.action("key", user.id, address)
    quotas.check_keys(session, user)
    key, row = accounts.create_key(session, user, body.name, body.scopes, body.expires_in_days)
    view = key_view(row)
    audit.record(
        session,
        "key.created",
        user,
        user,
        address,
        key_id=row.id,
        name=row.name,
        scopes=view["scopes"],
        expires_at=view["expires_at"],
    )
    return view | {"key": key}


@router.get("/keys", response_model=KeyList, summary="Your API keys (never the keys themselves)")
def list_keys(user: ReadUser, session: SessionDep):
    return {"keys": [key_view(row) for row in accounts.list_keys(session, user)]}


@router.delete("/keys/{key_id}", response_model=KeyPublic, summary="Revoke an API key")
def revoke_key(key_id: str, request: Request, user: KeyRevoker, session: SessionDep):
    row = accounts.revoke_key(session, user, key_id)
    if session.is_modified(row):  # revoked now, not before
        address = client_address(request)
        audit.record(session, "key.revoked", user, user, address, key_id=row.id, name=row.name)
    return key_view(row)


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    current_password: str = Field(max_length=accounts.MAX_PASSWORD)
    new_password: str = Field(max_length=accounts.MAX_PASSWORD)
    revoke_keys: bool = Field(True, description="Revoke every API key of yours as well.")


@router.post(
    "/me/password",
    status_code=204,
    response_class=Response,
    summary="Change your password: your other sessions end, your keys are revoked",
)
def change_password(
    body: PasswordChange,
    request: Request,
    user: KeyManager,
    studio: StudioDep,
    session: SessionDep,
):
    address = client_address(request)
    # the current password is guessed no faster here than at the login
    studio.throttle.before_login(address, user.username)
    row = session.get_one(User, user.id)
    try:
        accounts.verify_password(row, body.current_password)
    except Forbidden:
        studio.throttle.failed_login(address, user.username)
        raise
    revoked = accounts.set_password(
        session, row, body.new_password, body.revoke_keys, keep=request.cookies.get(SESSION_COOKIE)
    )
    audit.record(session, "password.changed", row, row, address, keys_revoked=revoked)
    return Response(status_code=204)


@router.get("/me/preferences", response_model=Preferences, summary="Your saved preferences")
def get_preferences(user: ReadUser):
    return Preferences.model_validate(user.preferences or {})


@router.put("/me/preferences", response_model=Preferences, summary="Save your preferences")
def put_preferences(body: Preferences, user: MakeUser, studio: StudioDep, session: SessionDep):
    check_installed(studio.models(), body.default_model)
    row = session.get_one(User, user.id)
    row.preferences = body.model_dump(exclude_none=True)
    return body
