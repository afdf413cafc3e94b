"""A request becomes a queued job: the model looked up in the catalog, the user's
preferences and the model's card filling what the request left out, everything checked now
(so a mistake is answered at once, not after waiting in the queue), the seed drawn."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from sfumato.catalog.scan import Models, find_checkpoint
from sfumato.engine.request import GenerationRequest
from sfumato.errors import InvalidRequest, ModelNotFound
from sfumato.generation import GenerationJob
from sfumato.jobs.estimates import estimate
from sfumato.jobs.eta import queue_now
from sfumato.jobs.queue import enqueue
from sfumato.jobs.views import job_view
from sfumato.preferences import Preferences, apply_preferences
from sfumato.quotas import check_job
from sfumato.store.site import SiteSettings, read_site
from sfumato.store.tables import Job, User
from sfumato.uploads import upload_picture

if TYPE_CHECKING:
    from sfumato.studio import Studio

FORMATS = ("png", "jpg", "webp")


def default_models(user: User, site: SiteSettings) -> list[str]:
    """The models a request that names none runs, in order: the user's default, then the
    server's (without either, the catalog's own choice)."""
    preferences = Preferences.model_validate(user.preferences or {})
    return [name for name in (preferences.default_model, site.default_model) if name]


def _installed(name: str, models: Models) -> bool:
    try:
        models.scan().resolve(name, hashes=models.hashes)
    except ModelNotFound:
        return False
    return True


def checkpoint_path(studio: Studio, user: User, model: str | None) -> Path:
    """The model file a request runs: the one it names, else the user's default, the
    server's, the catalog's own choice."""
    with studio.db.session() as session:
        site = read_site(session)
    models = studio.models()
    # a default is checked when it is set; one whose model was removed since is passed over
    defaults = [name for name in default_models(user, site) if _installed(name, models)]
    return find_checkpoint(model or (defaults[0] if defaults else None), models)


def submit(
    studio: Studio,
    user: User,
    request: GenerationRequest,
    model: str | None = None,
    fmt: str = "png",
    source: str = "api",
    init_upload: str | None = None,
    mask_upload: str | None = None,
) -> Job:
    job = plan_job(studio, user, request, model, fmt, source, init_upload, mask_upload)
    return admit(studio, job)


def plan_job(
    studio: Studio,
    user: User,
    request: GenerationRequest,
    model: str | None = None,
    fmt: str = "png",
    source: str = "api",
    init_upload: str | None = None,
    mask_upload: str | None = None,
) -> Job:
    """The job ``request`` would be, checked, not queued (what an estimate is made for)."""
    fmt = {"jpeg": "jpg"}.get(fmt.lower(), fmt.lower())
    if fmt not in FORMATS:
        raise InvalidRequest(f"format is one of {', '.join(FORMATS)}; got {fmt!r}.")
    if mask_upload and not init_upload:
        raise InvalidRequest("A mask needs its picture: give init_image as well.")
    preferences = Preferences.model_validate(user.preferences or {})
    models = studio.models()
    path = checkpoint_path(studio, user, model)
    checkpoint = studio.source_of(path)
    with studio.db.session() as session:
        for field, upload_id, what in (
            ("init_image", init_upload, "picture"),
            ("mask_image", mask_upload, "mask"),
        ):
            if upload_id:
                picture = upload_picture(session, studio.files, user.id, upload_id, what)
                request = replace(request, **{field: picture})
    request = apply_preferences(request, preferences, checkpoint.family.id)
    planned = GenerationJob.plan(request, checkpoint, studio.data, studio.config.load, models)
    return Job(
        user_id=user.id,
        source=source,
        model_name=checkpoint.name,
        model_path=str(path),
        settings=planned.settings.to_dict(),
        loras=[[str(x.path), x.name, x.weight, x.hash] for x in planned.loras],
        init_upload_id=init_upload,
        mask_upload_id=mask_upload,
        format=fmt,
        total=planned.settings.steps + planned.settings.hires_steps,
        warnings=planned.warnings,
    )


def admit(studio: Studio, job: Job) -> Job:
    """Queue a job made by any door: the user's quotas and queue limit checked, its
    estimate recorded, the streams told, the worker woken."""
    if job.workflow is None and job.upscale is None:
        # kept to tell later how good estimates are, and to give the jobs behind it an ETA
        # without fitting again; a graph's runs its own nodes, an upscale has no steps
        job.estimate = estimate(studio, job).recorded()
    with studio.db.session() as session:
        site = read_site(session)
        # the user as stored now: the admin may have changed their limits since they logged in
        limits = check_job(session, session.get_one(User, job.user_id), job.settings, site)
        if limits.job_seconds is not None:
            # the limit in force at admission is the one the job runs under, even after a
            # restart or a change of the setting
            job.timings = {"limit_s": limits.job_seconds}
        enqueue(session, job, site.max_queued_per_user)
        queue = queue_now(studio, session)
    # told before the worker is woken, so that "queued" reaches the streams before "running"
    view = job_view(job, [], queue.positions.get(job.id), eta=queue.etas.get(job.id))
    studio.events.publish(job.user_id, {"type": "job", "job": view})
    studio.dispatch.wake()
    return job
