"""History: each user's pictures, their files, favourites and deletion; uploads; reading the
settings out of a picture."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, File, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from sfumato import audit
from sfumato.api.bodies import read_file
from sfumato.api.deps import MakeUser, ReadUser, SessionDep, StudioDep, client_address
from sfumato.api.schemas import Deleted, ImagePage, ImagePublic, UploadPublic
from sfumato.errors import NotFound
from sfumato.jobs.views import image_view
from sfumato.metadata.read import GenerationInfo, read_info_bytes
from sfumato.store import history
from sfumato.store.site import read_site
from sfumato.store.tables import Image, Upload, owned
from sfumato.studio import Studio
from sfumato.uploads import save_upload, upload_view

router = APIRouter(prefix="/v1", tags=["history"])
MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}
PRIVATE = {"Cache-Control": "private, max-age=86400"}


def retention(session) -> dict:
    days = read_site(session).retention_days
    return {
        "days": days or None,
        "favourites_kept": True,
        "description": (
            f"Pictures are deleted {days} days after they are made; favourites are kept."
            if days
            else "Pictures are kept until you delete them."
        ),
    }


@router.get("/images", response_model=ImagePage, summary="Your pictures, newest first")
def list_images(
    user: ReadUser,
    session: SessionDep,
    model: Annotated[str | None, Query(description="Only this model's pictures.")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in the prompt.")] = None,
    since: Annotated[datetime | None, Query(description="Made at or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Made before (ISO 8601).")] = None,
    favourite: Annotated[bool | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=history.MAX_PAGE)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of a page.")
    ] = None,
):
    filters = history.Filters(model, q, _aware(since), _aware(until), favourite)
    rows, next_cursor, total = history.page(session, user.id, filters, limit, cursor)
    return {
        "images": [image_view(row) for row in rows],
        "next_cursor": next_cursor,
        "total": total,
        "retention": retention(session),
    }


def _aware(moment: datetime | None) -> datetime | None:
    """A date without a zone is taken as UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


@router.get(
    "/images/{image_id}", response_model=ImagePublic, summary="One picture and its full settings"
)
def read_image(image_id: str, user: ReadUser, session: SessionDep):
    return image_view(owned(session, Image, user.id, image_id, "image"))


def _file(studio: Studio, key: str, media_type: str) -> Response:
    try:
        return Response(studio.files.get(key), media_type=media_type, headers=PRIVATE)
    except FileNotFoundError:
        raise NotFound("The picture's file is gone.") from None


@router.get(
    "/images/{image_id}/file",
    response_class=Response,
    responses={200: {"content": {t: {} for t in MEDIA_TYPES.values()}}},
    summary="The picture file (its owner only)",
)
def image_file(image_id: str, user: ReadUser, studio: StudioDep, session: SessionDep):
    image = owned(session, Image, user.id, image_id, "image")
    return _file(studio, image.file_key, MEDIA_TYPES[image.format])


@router.get(
    "/images/{image_id}/thumbnail",
    response_class=Response,
    responses={200: {"content": {"image/webp": {}}}},
    summary="A small WebP of the picture",
)
def image_thumbnail(image_id: str, user: ReadUser, studio: StudioDep, session: SessionDep):
    image = owned(session, Image, user.id, image_id, "image")
    return _file(studio, image.thumb_key, "image/webp")


class Favourite(BaseModel):
    favourite: bool


@router.patch(
    "/images/{image_id}", response_model=ImagePublic, summary="Favourite or unfavourite a picture"
)
def update_image(image_id: str, body: Favourite, user: MakeUser, session: SessionDep):
    image = owned(session, Image, user.id, image_id, "image")
    image.favourite = body.favourite
    return image_view(image)


@router.delete("/images/{image_id}", response_model=Deleted, summary="Delete a picture now")
def delete_image(image_id: str, user: MakeUser, studio: StudioDep, session: SessionDep):
    deleted = history.delete_own(session, studio.files, user.id, [image_id])
    return {"deleted": deleted}


class ImageIds(BaseModel):
    ids: list[str] = Field(min_length=1, max_length=1000)


@router.post("/images/delete", response_model=Deleted, summary="Delete several pictures now")
def delete_many(body: ImageIds, user: MakeUser, studio: StudioDep, session: SessionDep):
    """All or none: if one id is not yours, nothing is deleted."""
    return {"deleted": history.delete_own(session, studio.files, user.id, body.ids)}


@router.delete("/images", response_model=Deleted, summary="Delete your whole history now")
def delete_all(
    request: Request,
    user: MakeUser,
    studio: StudioDep,
    session: SessionDep,
    keep_favourites: Annotated[
        bool, Query(description="Keep the pictures marked favourite.")
    ] = False,
):
    deleted = history.delete_all(session, studio.files, user.id, keep_favourites)
    address = client_address(request)  # in the audit log, in the same transaction
    audit.record(session, "history.deleted", user, user, address, deleted=deleted)
    return {"deleted": deleted}


@router.post(
    "/uploads",
    status_code=201,
    response_model=UploadPublic,
    summary="Upload a picture for image-to-image",
)
async def upload(
    file: Annotated[UploadFile, File(description="PNG, JPEG, WebP, ...")],
    request: Request,
    user: MakeUser,
    studio: StudioDep,
):
    studio.throttle.action("upload", user.id, client_address(request))
    content = await read_file(file, studio.config.max_upload_bytes)

    def keep() -> dict:
        with studio.db.session() as session:
            limit = studio.config.max_upload_bytes
            return upload_view(save_upload(session, studio.files, user.id, content, limit))

    return await run_in_threadpool(keep)


@router.get(
    "/uploads/{upload_id}/file",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
    summary="An uploaded picture (as kept: PNG)",
)
def upload_file(upload_id: str, user: ReadUser, studio: StudioDep, session: SessionDep):
    return _file(studio, owned(session, Upload, user.id, upload_id, "upload").file_key, "image/png")


@router.delete("/uploads/{upload_id}", response_model=Deleted, summary="Delete an upload now")
def delete_upload(upload_id: str, user: MakeUser, studio: StudioDep, session: SessionDep):
    found = owned(session, Upload, user.id, upload_id, "upload")
    studio.files.delete(found.file_key)
    session.delete(found)
    return {"deleted": 1}


@router.post(
    "/image-info",
    response_model=GenerationInfo,
    summary="The generation settings and seed inside a picture",
)
async def image_info(
    file: Annotated[UploadFile, File(description="A picture made by sfumato, A1111, ...")],
    request: Request,
    user: MakeUser,
    studio: StudioDep,
):
    """Reads sfumato's and A1111's metadata, and ComfyUI's, InvokeAI's and Fooocus's."""
    studio.throttle.action("image_info", user.id, client_address(request))
    content = await read_file(file, studio.config.max_upload_bytes)
    info = await run_in_threadpool(read_info_bytes, content)
    return info.to_dict()
