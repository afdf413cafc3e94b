"""Pictures users upload for image-to-image and inpainting.

Checked before anything is kept: the size in bytes, then that it is a picture at all, its
pixel count before decoding (a small file can claim a huge picture: a decompression bomb),
that it decodes whole (a truncated file is refused). Kept as PNG, upright (EXIF orientation
applied) and flattened to RGB, so the engine never sees the odd formats.
"""

from __future__ import annotations

import base64
import binascii
import io
import re

from PIL import Image
from sqlalchemy.orm import Session

from sfumato.engine.images import read_picture
from sfumato.errors import InvalidRequest, NotFound, TooLarge
from sfumato.quotas import check_upload
from sfumato.store.files import FileStore
from sfumato.store.tables import Upload, User, new_id, owned

DATA_URL = re.compile(r"^data:image/[a-z0-9.+-]+;base64,", re.IGNORECASE)


def save_upload(
    session: Session, files: FileStore, user_id: int, content: bytes, max_bytes: int
) -> Upload:
    if len(content) > max_bytes:
        raise TooLarge(
            f"The picture is {len(content) / 1e6:.1f} MB; at most {max_bytes / 1e6:.0f} MB "
            "are accepted."
        )
    if not content:
        raise InvalidRequest("The upload is empty: send a picture file.")
    user = session.get_one(User, user_id)
    check_upload(session, user, len(content))  # before decoding: a refusal costs nothing
    picture = read_picture(content, "The upload")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    kept = buffer.getvalue()
    upload = Upload(
        id=new_id(), user_id=user_id, width=picture.width, height=picture.height, bytes=len(kept)
    )
    upload.file_key = f"uploads/{user_id}/{upload.id}.png"
    files.put(upload.file_key, kept)
    session.add(upload)
    session.flush()
    return upload


def decode_base64(text: str, what: str) -> bytes:
    """A picture sent as base64 (with or without a data: URL prefix)."""
    text = DATA_URL.sub("", text.strip(), count=1)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(
            f"{what} is neither an upload id nor a base64-encoded picture."
        ) from None


def upload_picture(
    session: Session, files: FileStore, user_id: int, upload_id: str, what: str
) -> Image.Image:
    """The picture the user uploaded as ``upload_id``; "not found" when it is gone."""
    upload = owned(session, Upload, user_id, upload_id, "upload")
    if not files.exists(upload.file_key):
        raise NotFound(f"You have no upload {upload_id!r}; upload the picture again.")
    return read_picture(files.get(upload.file_key), f"The uploaded {what}")


def upload_view(upload: Upload) -> dict:
    return {
        "id": upload.id,
        "width": upload.width,
        "height": upload.height,
        "created_at": upload.created_at.isoformat(),
    }
