"""What each user may keep and spend: the admin's limits (the site's defaults, with overrides
per user), what the user holds and has spent now, and the checks that refuse a request over
its allowance with a sentence that says which limit, where the user stands and what to do.

Compute is counted in megapixel-steps: width x height x denoising steps x batch / 1e6, the
quantity the engine's time grows with. A 512 px SD 1.5 picture at 25 steps is 6.6; an SDXL
1024 px one at 30 steps is 31.5.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from sfumato.engine.request import GenerationSettings
from sfumato.errors import InvalidRequest, QuotaExceeded
from sfumato.store.tables import ApiKey, Image, Job, LoginSession, Upload, User, utcnow

MB = 1_000_000  # storage is counted in MB as disks are sold: a million bytes
DAY = timedelta(hours=24)  # the daily compute is a rolling 24 hours, not a calendar day
# far beyond any real allowance, small enough for every database's integer and for JSON
_MAX = 10**12
Limit = Annotated[int | None, Field(default=None, ge=0, le=_MAX, strict=True)]
if TYPE_CHECKING:
    from sfumato.store.site import SiteSettings

WHAT_TO_DO = "delete pictures, or ask the server's admin"


class Quotas(BaseModel):
    """Limits, each a whole number or None for unlimited."""

    model_config = ConfigDict(extra="forbid")

    images: Limit = None  # stored pictures
    uploads: Limit = None  # stored uploads
    storage_mb: Limit = None  # pictures, thumbnails and uploads on disk
    keys: Limit = None  # active API keys
    sessions: Limit = None  # login sessions at once
    job_megapixel_steps: Limit = None  # compute of one job
    daily_megapixel_steps: Limit = None  # compute over the last 24 hours
    job_seconds: Limit = None  # a running job past this fails


NAMES = list(Quotas.model_fields)


class QuotaUsage(BaseModel):
    images: int
    uploads: int
    storage_mb: float
    keys: int
    sessions: int
    megapixel_steps_today: float


class QuotaReport(BaseModel):
    """A user's limits and where they stand, for ``GET /v1/me`` and the page."""

    limits: Quotas
    usage: QuotaUsage


def parse(value: object, what: str = "quotas") -> Quotas:
    """``value`` as limits, or a 400 that names the field at fault."""
    if not isinstance(value, dict):
        raise InvalidRequest(f'{what} is an object of limits, such as {{"images": 500}}.')
    try:
        return Quotas.model_validate(value)
    except ValidationError as e:
        error = e.errors()[0]
        field = ".".join(str(x) for x in error["loc"]) or what
        if error["type"] == "extra_forbidden":
            raise InvalidRequest(
                f"{what} has no limit {field!r}; the limits are {', '.join(NAMES)}."
            ) from None
        raise InvalidRequest(
            f"{what}.{field} is a whole number from 0 to {_MAX}, or null for unlimited."
        ) from None


def limits_for(session: Session, user: User, site: SiteSettings | None = None) -> Quotas:
    """The site's defaults with the user's overrides on top: a limit the user's overrides
    do not name is the site's; one they name as null is unlimited for this user."""
    if site is None:
        from sfumato.store.site import read_site  # the site's settings hold the defaults

        site = read_site(session)
    merged = parse(site.quotas or {}).model_dump()
    merged.update({k: v for k, v in (user.quotas or {}).items() if k in merged})
    return parse(merged, "the user's quotas")


def megapixel_steps(settings: dict) -> float:
    """The compute of a job from its resolved settings. Image-to-image and inpainting run
    only ``int(steps x strength)`` of the steps (diffusers starts part-way along the noise
    schedule); the hires fix's second pass adds its steps at its size. A graph's job states
    its own (the sum over its samplers: ``workflows.validate.Plan.summary``)."""
    if "megapixel_steps" in settings:
        return float(settings["megapixel_steps"])
    steps = int(settings.get("steps") or 0)
    strength = settings.get("strength")
    if strength is not None and settings.get("mode", "txt2img") != "txt2img":
        steps = min(steps, max(1, int(steps * float(strength))))
    pixels = int(settings.get("width") or 0) * int(settings.get("height") or 0)
    work = pixels * steps
    if settings.get("hr_upscaler"):
        hires = GenerationSettings.from_dict(settings)
        work += hires.hires_size[0] * hires.hires_size[1] * hires.hires_steps
    return work * int(settings.get("batch_size") or 1) / 1e6


def megapixel_steps_today(session: Session, user_id: int) -> float:
    """The compute of the jobs the user queued in the last 24 hours. A job counts in full
    from its admission, whatever became of it, unless it ended without ever starting
    (cancelled while queued): what was admitted is what the allowance pays for."""
    since = utcnow() - DAY
    rows = session.scalars(
        select(Job.settings).where(
            Job.user_id == user_id,
            Job.created_at >= since,
            or_(Job.started_at.is_not(None), Job.status.in_(("queued", "running"))),
        )
    )
    return sum(megapixel_steps(settings) for settings in rows)


def _count(session: Session, table, *where) -> int:
    return session.scalar(select(func.count()).select_from(table).where(*where)) or 0


def stored_bytes(session: Session, user_id: int) -> int:
    pictures = session.scalar(
        select(func.coalesce(func.sum(Image.bytes), 0)).where(Image.user_id == user_id)
    )
    uploads = session.scalar(
        select(func.coalesce(func.sum(Upload.bytes), 0)).where(Upload.user_id == user_id)
    )
    return int(pictures or 0) + int(uploads or 0)


def active_keys(session: Session, user_id: int) -> int:
    now = utcnow()
    return _count(
        session,
        ApiKey,
        ApiKey.user_id == user_id,
        ApiKey.revoked_at.is_(None),
        or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
    )


def active_sessions(session: Session, user_id: int) -> int:
    return _count(
        session,
        LoginSession,
        LoginSession.user_id == user_id,
        LoginSession.expires_at > utcnow(),
    )


def usage(session: Session, user: User) -> dict:
    return {
        "images": _count(session, Image, Image.user_id == user.id),
        "uploads": _count(session, Upload, Upload.user_id == user.id),
        "storage_mb": round(stored_bytes(session, user.id) / MB, 1),
        "keys": active_keys(session, user.id),
        "sessions": active_sessions(session, user.id),
        "megapixel_steps_today": round(megapixel_steps_today(session, user.id), 1),
    }


def report(session: Session, user: User) -> dict:
    return {"limits": limits_for(session, user).model_dump(), "usage": usage(session, user)}


def check_keys(session: Session, user: User) -> None:
    """Before a new API key is made: refused at the limit of active keys."""
    limit = limits_for(session, user).keys
    if limit is not None and (count := active_keys(session, user.id)) >= limit:
        raise QuotaExceeded(
            f"You have {count} active API keys, the most your quota allows ({limit}); revoke "
            "one you no longer use, or ask the server's admin."
        )


def sessions_limit(session: Session, user: User) -> int | None:
    """How many login sessions the user may hold at once (None: no limit); the login
    decides what to do at the limit."""
    return limits_for(session, user).sessions


def check_storage(session: Session, user: User, limits: Quotas, adding: int = 0) -> None:
    """Refused when the user's files already fill their storage, or ``adding`` more bytes
    would overfill it."""
    if limits.storage_mb is None:
        return
    stored = stored_bytes(session, user.id)
    if stored >= limits.storage_mb * MB or stored + adding > limits.storage_mb * MB:
        raise QuotaExceeded(
            f"Your pictures and uploads take {stored / MB:.1f} MB, and your storage quota is "
            f"{limits.storage_mb} MB; {WHAT_TO_DO}."
        )


def check_upload(session: Session, user: User, size: int) -> None:
    """Before an upload of ``size`` bytes is kept."""
    limits = limits_for(session, user)
    if limits.uploads is not None:
        count = _count(session, Upload, Upload.user_id == user.id)
        if count + 1 > limits.uploads:
            raise QuotaExceeded(
                f"You have {count} uploads, the most your quota allows ({limits.uploads}); "
                "delete uploads you no longer need (or wait for them to expire), or ask the "
                "server's admin."
            )
    check_storage(session, user, limits, size)


def check_job(
    session: Session, user: User, settings: dict, site: SiteSettings | None = None
) -> Quotas:
    """Before a job is queued: its compute, the day's compute, the picture count it would
    reach (counting the pictures of the user's jobs still queued or running) and the
    storage. Returns the limits, whose ``job_seconds`` the job then runs under."""
    limits = limits_for(session, user, site)
    cost = megapixel_steps(settings)
    if limits.job_megapixel_steps is not None and cost > limits.job_megapixel_steps:
        raise QuotaExceeded(
            f"This generation costs {cost:.1f} megapixel-steps (width x height x steps x batch "
            f"/ 1e6), over your quota of {limits.job_megapixel_steps} per job; ask for fewer "
            "steps, a smaller size or a smaller batch, or ask the server's admin."
        )
    if limits.daily_megapixel_steps is not None:
        spent = megapixel_steps_today(session, user.id)
        if spent + cost > limits.daily_megapixel_steps:
            raise QuotaExceeded(
                f"This generation costs {cost:.1f} megapixel-steps and you have spent "
                f"{spent:.1f} of your {limits.daily_megapixel_steps} in the last 24 hours; "
                "wait for earlier ones to age out, ask for less, or ask the server's admin."
            )
    if limits.images is not None:
        stored = _count(session, Image, Image.user_id == user.id)
        pending = sum(
            int(s.get("batch_size") or 1)
            for s in session.scalars(
                select(Job.settings).where(
                    Job.user_id == user.id, Job.status.in_(("queued", "running"))
                )
            )
        )
        batch = int(settings.get("batch_size") or 1)
        if stored + pending + batch > limits.images:
            waiting = f" and {pending} on the way" if pending else ""
            raise QuotaExceeded(
                f"You have {stored} pictures{waiting}; {batch} more would pass your quota of "
                f"{limits.images} pictures; {WHAT_TO_DO}."
            )
    check_storage(session, user, limits)
    return limits
