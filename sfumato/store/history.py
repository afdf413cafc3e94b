"""Each user's pictures: listing with filters, favourites, deletion that is immediate (the
file, its thumbnail and its row are gone when the call returns), and the retention purge."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from sfumato.errors import InvalidRequest, NotFound
from sfumato.store.files import FileStore
from sfumato.store.tables import Image, Upload, utcnow

MAX_PAGE = 200


@dataclass
class Filters:
    model: str | None = None
    text: str | None = None  # in the prompt, any case
    since: datetime | None = None
    until: datetime | None = None
    favourite: bool | None = None


def page(
    session: Session, user_id: int, filters: Filters, limit: int = 50, cursor: str | None = None
) -> tuple[list[Image], str | None, int]:
    """Newest first: one page, the cursor of the next (None at the end), and the total."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"limit is between 1 and {MAX_PAGE}.")
    where = [Image.user_id == user_id]
    if filters.model:
        where.append(func.lower(Image.model_name) == filters.model.lower())
    if filters.text:
        escaped = filters.text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(func.lower(Image.prompt).like(f"%{escaped}%", escape="\\"))
    if filters.since:
        where.append(Image.created_at >= filters.since)
    if filters.until:
        where.append(Image.created_at < filters.until)
    if filters.favourite is not None:
        where.append(Image.favourite.is_(filters.favourite))
    total = session.scalar(select(func.count()).select_from(Image).where(*where))
    query = select(Image).where(*where)
    if cursor:
        created, image_id = _decode(cursor)
        query = query.where(
            or_(
                Image.created_at < created,
                and_(Image.created_at == created, Image.id < image_id),
            )
        )
    query = query.order_by(Image.created_at.desc(), Image.id.desc()).limit(limit + 1)
    rows = list(session.scalars(query))
    next_cursor = _encode(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor, total


# exactly what _encode writes: a UTC time to the second or microsecond, "|", an image id
_CURSOR = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{6})?\+00:00)\|([0-9a-f]{32})")
_CURSOR_CHARS = 128  # a real one is at most 80


def _encode(image: Image) -> str:
    raw = f"{image.created_at.astimezone(UTC).isoformat()}|{image.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, str]:
    """The cursor's time (timezone-aware) and image id, or a 400: a cursor is only ever one
    this server wrote, so anything else (forged, truncated, another shape) is refused."""
    try:
        if len(cursor) > _CURSOR_CHARS:
            raise ValueError
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.b64decode(padded, altchars=b"-_", validate=True).decode("ascii")
        found = _CURSOR.fullmatch(raw)
        if found is None:
            raise ValueError
        created = datetime.fromisoformat(found[1])  # ValueError on a day or hour that is not
        if created.tzinfo is None:  # cannot happen with the pattern; the database needs it
            raise ValueError
        return created, found[2]
    except (ValueError, binascii.Error):  # UnicodeDecodeError is a ValueError
        raise InvalidRequest(
            "The cursor is not one this server gave; start again without it."
        ) from None


def delete_images(session: Session, files: FileStore, images: list[Image]) -> int:
    """Remove the pictures' files, thumbnails and rows. The rows go in the caller's
    transaction: if a file cannot be removed, the error rolls the rows back with it."""
    for image in images:
        files.delete(image.file_key)
        files.delete(image.thumb_key)
        session.delete(image)
    session.flush()
    return len(images)


def delete_own(session: Session, files: FileStore, user_id: int, ids: list[str]) -> int:
    """Delete the user's pictures among ``ids``; any id that is not theirs: nothing deleted."""
    wanted = set(ids)
    images = list(session.scalars(select(Image).where(Image.id.in_(wanted))))
    found = {image.id for image in images if image.user_id == user_id}
    if missing := sorted(wanted - found):
        raise NotFound(
            f"You have no image {', '.join(missing[:5])}{'...' if len(missing) > 5 else ''}; "
            "nothing was deleted."
        )
    return delete_images(session, files, images)


def delete_all(session: Session, files: FileStore, user_id: int, keep_favourites: bool) -> int:
    query = select(Image).where(Image.user_id == user_id)
    if keep_favourites:
        query = query.where(Image.favourite.is_(False))
    return delete_images(session, files, list(session.scalars(query)))


def purge_expired(
    session: Session, files: FileStore, days: int, now: datetime | None = None
) -> tuple[int, int]:
    """Delete pictures (not favourites) and uploads older than ``days``; 0 keeps all.
    Returns (pictures, uploads) deleted."""
    if days <= 0:
        return 0, 0
    cutoff = (now or utcnow()) - timedelta(days=days)
    old = select(Image).where(Image.created_at < cutoff, Image.favourite.is_(False))
    pictures = delete_images(session, files, list(session.scalars(old)))
    uploads = list(session.scalars(select(Upload).where(Upload.created_at < cutoff)))
    for upload in uploads:
        files.delete(upload.file_key)
        session.delete(upload)
    return pictures, len(uploads)


def fill_missing_sizes(session: Session, files: FileStore, batch: int = 500) -> int:
    """Pictures and uploads stored before sizes were kept get theirs from the files, once:
    only rows whose size is unknown are read, so a later start costs one empty query."""
    filled = 0
    for table, keys in ((Image, ("file_key", "thumb_key")), (Upload, ("file_key",))):
        while rows := list(
            session.scalars(select(table).where(table.bytes.is_(None)).limit(batch))
        ):
            for row in rows:
                row.bytes = sum(files.size(getattr(row, key)) for key in keys)
            session.flush()
            filled += len(rows)
    return filled
