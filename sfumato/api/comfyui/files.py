"""The files ComfyUI clients name: pictures they upload (``input``), the graphs' saved
pictures (``output``, the user's history) and previews (``temp``).

ComfyUI keeps them in folders; sfumato keeps them where it keeps every picture, each user's
apart, and only the names are ComfyUI's: an upload's ``Upload.name`` is the
``"subfolder/filename"`` a graph's LoadImage names it by, per user (another user's names are
never seen, nor collide). A name is a file name, never a path: ``..``, a leading ``/`` or a
backslash are refused with a sentence, so no name reaches outside what it names.

Uploads are kept as PNG (``sfumato.uploads``); a picture with transparency keeps its alpha
channel, which LoadImage reads as its mask.
"""

from __future__ import annotations

import io
import json
import posixpath
import re
from dataclasses import dataclass

from PIL import Image, ImageOps
from sqlalchemy import select
from sqlalchemy.orm import Session

from sfumato.errors import InvalidRequest, NotFound
from sfumato.store.tables import Image as ImageRow
from sfumato.store.tables import Upload
from sfumato.studio import Studio
from sfumato.uploads import save_upload
from sfumato.workflows.outputs import TEMP_KEY, image_id_of

TYPES = ("input", "temp", "output")
MAX_FILENAME = 150
MAX_SUBFOLDER = 80
MAX_SEGMENTS = 4
MAX_COPIES = 1000  # "name (1).png" ... "name (1000).png"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ANNOTATION = re.compile(r"^(.*) \[(input|output|temp)\]$")  # "name.png [output]"
MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}


def _segment(value: str, what: str) -> str:
    if not value:
        raise InvalidRequest(f"{what} has an empty part; name a file, not a path.")
    if value in (".", "..") or "\\" in value or _CONTROL.search(value):
        raise InvalidRequest(
            f"{what} {value!r} is not a file name: no '..', backslashes or control characters."
        )
    return value


def filename(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidRequest("filename is required: the picture's file name.")
    if "/" in value:
        raise InvalidRequest(
            f"filename {value!r} is a path; send the file name alone and the folder as subfolder."
        )
    if len(value) > MAX_FILENAME:
        raise InvalidRequest(f"filename is longer than {MAX_FILENAME} characters.")
    return _segment(value, "filename")


def subfolder(value: object) -> str:
    """ "" or "a/b" (a trailing slash is dropped); never absolute, never upwards."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise InvalidRequest("subfolder is text: a folder name such as 'portraits'.")
    if value.startswith("/"):
        raise InvalidRequest(f"subfolder {value!r} is absolute; name a folder such as 'portraits'.")
    value = value.rstrip("/")
    if len(value) > MAX_SUBFOLDER:
        raise InvalidRequest(f"subfolder is longer than {MAX_SUBFOLDER} characters.")
    parts = value.split("/")
    if len(parts) > MAX_SEGMENTS:
        raise InvalidRequest(f"subfolder nests more than {MAX_SEGMENTS} folders.")
    return "/".join(_segment(part, "subfolder") for part in parts)


def file_type(value: object, default: str) -> str:
    if value is None or value == "":
        return default
    if value not in TYPES:
        raise InvalidRequest(f"type is one of {', '.join(TYPES)}; got {str(value)[:40]!r}.")
    return str(value)


def joined(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def annotated(name: str) -> tuple[str, str | None]:
    """ComfyUI's "name.png [output]": the name and the type it names."""
    found = _ANNOTATION.match(name)
    return (found.group(1), found.group(2)) if found else (name, None)


# --- uploads --------------------------------------------------------------------------------


def named_upload(session: Session, user_id: int, name: str) -> Upload | None:
    """The user's newest upload of that name."""
    query = select(Upload).where(Upload.user_id == user_id, Upload.name == name)
    return session.scalars(query.order_by(Upload.created_at.desc(), Upload.id.desc())).first()


def _with_alpha(content: bytes) -> bytes | None:
    """The picture as an RGBA PNG when it has transparency (LoadImage's mask); else None.
    Called after ``save_upload`` has checked the picture (its size, that it decodes)."""
    with Image.open(io.BytesIO(content)) as picture:
        if not (
            "A" in picture.getbands() or (picture.mode == "P" and "transparency" in picture.info)
        ):
            return None
        rgba = ImageOps.exif_transpose(picture.convert("RGBA"))
    buffer = io.BytesIO()
    rgba.save(buffer, format="PNG")
    return buffer.getvalue()


def _free_name(session: Session, user_id: int, folder: str, name: str) -> str:
    stem, ext = posixpath.splitext(name)
    for i in range(1, MAX_COPIES + 1):
        candidate = joined(folder, f"{stem} ({i}){ext}")
        if named_upload(session, user_id, candidate) is None:
            return candidate
    raise InvalidRequest(
        f"You have {MAX_COPIES} uploads named like {name!r}; choose another name or overwrite."
    )


def _drop(session: Session, studio: Studio, upload: Upload) -> None:
    studio.files.delete(upload.file_key)
    session.delete(upload)


@dataclass
class Kept:
    name: str  # the file name alone
    subfolder: str


def keep_upload(
    session: Session,
    studio: Studio,
    user_id: int,
    content: bytes,
    name: str,
    folder: str,
    overwrite: bool,
) -> Kept:
    """Keep an upload under ComfyUI's name. As ComfyUI: ``overwrite`` replaces the picture of
    that name; otherwise the same picture again keeps its name, and a different one becomes
    "name (1).png"."""
    upload = save_upload(session, studio.files, user_id, content, studio.config.max_upload_bytes)
    if (rgba := _with_alpha(content)) is not None:
        studio.files.put(upload.file_key, rgba)
        upload.bytes = len(rgba)
    wanted = joined(folder, name)
    existing = named_upload(session, user_id, wanted)
    if existing is not None and overwrite:
        for old in session.scalars(
            select(Upload).where(Upload.user_id == user_id, Upload.name == wanted)
        ):
            _drop(session, studio, old)
    elif existing is not None:
        try:
            same = studio.files.get(existing.file_key) == studio.files.get(upload.file_key)
        except FileNotFoundError:
            same = False
        if same:
            _drop(session, studio, upload)
            session.flush()
            return Kept(name, folder)
        wanted = _free_name(session, user_id, folder, name)
    upload.name = wanted
    session.flush()
    return Kept(posixpath.basename(wanted), folder)


def mask_composite(original: bytes, mask: bytes) -> bytes:
    """ComfyUI's /upload/mask: the original picture with the mask as its alpha channel.

    The mask's own alpha channel is used when it has one (ComfyUI's mask editor paints the
    area to redraw transparent); a mask without one is read as sfumato's masks are, white =
    redraw, so its white becomes transparent. Either way LoadImage's MASK is then 1 where the
    picture is to be redrawn. A mask of another size is stretched to the original's."""
    with Image.open(io.BytesIO(mask)) as sent:
        if "A" in sent.getbands() or (sent.mode == "P" and "transparency" in sent.info):
            alpha = sent.convert("RGBA").getchannel("A")
        else:
            alpha = ImageOps.invert(sent.convert("L"))
    with Image.open(io.BytesIO(original)) as base:
        picture = base.convert("RGBA")
    if alpha.size != picture.size:
        alpha = alpha.resize(picture.size, Image.Resampling.BILINEAR)
    picture.putalpha(alpha)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def original_ref(value: object) -> tuple[str, str, str]:
    """/upload/mask's ``original_ref``: the picture the mask belongs to (JSON text)."""
    if value is None:
        raise InvalidRequest(
            "original_ref is required: the picture the mask belongs to, as JSON "
            '{"filename": ..., "subfolder": ..., "type": ...}.'
        )
    try:
        ref = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        ref = None
    if not isinstance(ref, dict):
        raise InvalidRequest(
            'original_ref is JSON text: {"filename": "picture.png", "subfolder": "", '
            '"type": "input"}.'
        )
    name, kind = annotated(filename(ref.get("filename")))
    return name, subfolder(ref.get("subfolder")), kind or file_type(ref.get("type"), "output")


# --- reading a file by its ComfyUI name -----------------------------------------------------


def _missing(name: str, kind: str) -> NotFound:
    return NotFound(f"You have no {kind} picture {name!r}.")


def read_file(
    session: Session, studio: Studio, user_id: int, name: str, folder: str, kind: str
) -> tuple[bytes, str]:
    """The bytes and media type of the caller's picture of that name; "not found" for a name
    that is another user's, as for one that does not exist."""
    try:
        if kind == "input":
            upload = named_upload(session, user_id, joined(folder, name))
            if upload is None:
                raise _missing(joined(folder, name), kind)
            return studio.files.get(upload.file_key), "image/png"
        if kind == "temp":
            key = TEMP_KEY.format(user_id=user_id, filename=name)
            return studio.files.get(key), MEDIA_TYPES.get(name.rpartition(".")[2], "image/png")
        image_id = image_id_of(name)
        image = session.get(ImageRow, image_id) if image_id else None
        if image is None or image.user_id != user_id:
            raise _missing(name, kind)
        return studio.files.get(image.file_key), MEDIA_TYPES.get(image.format, "image/png")
    except (FileNotFoundError, ValueError):  # gone, or a name no storage key can be made of
        raise _missing(joined(folder, name), kind) from None
