"""API keys, saved preferences, and (for admins) the server's settings."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, ValidationError

from sfumato import accounts
from sfumato.api.deps import AdminUser, CurrentUser, SessionDep, StudioDep, client_address
from sfumato.api.schemas import CreatedKey, KeyList, KeyPublic
from sfumato.errors import InvalidRequest
from sfumato.preferences import Preferences
from sfumato.store.site import SiteSettings, read_site, update_site
from sfumato.store.tables import ApiKey, User

router = APIRouter(prefix="/v1", tags=["account"])


class NewKey(BaseModel):
    name: str = Field(max_length=100, description="To tell your keys apart, e.g. 'my bot'.")


def key_view(row: ApiKey) -> dict:
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "created_at": row.created_at.isoformat(),
        "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
        "revoked": row.revoked_at is not None,
    }


@router.post(
    "/keys", status_code=201, response_model=CreatedKey, summary="Make an API key (shown once)"
)
def create_key(
    body: NewKey, request: Request, user: CurrentUser, studio: StudioDep, session: SessionDep
):
    studio.throttle.action("key", user.id, client_address(request))
    key, row = accounts.create_key(session, user, body.name)
    return key_view(row) | {"key": key}


@router.get("/keys", response_model=KeyList, summary="Your API keys (never the keys themselves)")
def list_keys(user: CurrentUser, session: SessionDep):
    return {"keys": [key_view(row) for row in accounts.list_keys(session, user)]}


@router.delete("/keys/{key_id}", response_model=KeyPublic, summary="Revoke an API key")
def revoke_key(key_id: str, user: CurrentUser, session: SessionDep):
    return key_view(accounts.revoke_key(session, user, key_id))


@router.get("/me/preferences", response_model=Preferences, summary="Your saved preferences")
def get_preferences(user: CurrentUser):
    return Preferences.model_validate(user.preferences or {})


@router.put("/me/preferences", response_model=Preferences, summary="Save your preferences")
def put_preferences(body: Preferences, user: CurrentUser, session: SessionDep):
    row = session.get_one(User, user.id)
    row.preferences = body.model_dump(exclude_none=True)
    return body


@router.get(
    "/admin/settings", response_model=SiteSettings, summary="The server's settings (admins)"
)
def get_settings(user: AdminUser, session: SessionDep):
    return read_site(session).__dict__


@router.patch(
    "/admin/settings", response_model=SiteSettings, summary="Change the server's settings (admins)"
)
def patch_settings(changes: dict, user: AdminUser, session: SessionDep):
    try:
        return update_site(session, changes).__dict__
    except (TypeError, ValidationError) as e:
        raise InvalidRequest(str(e)) from None
