"""What the /v1 routes answer, as typed "Public" models: the OpenAPI document describes every
response, and a field a route forgets fails its test instead of reaching a client.

Links to the API's own routes are built by the router from the routes' names
(``url_path``), so a moved route moves its links.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, computed_field

from sfumato.quotas import QuotaReport


def url_path(name: str, **params: str) -> str:
    """The path of the route whose function is ``name`` (``/v1/images/ID/file``)."""
    # imported here: the routes import these models
    from sfumato.api.routes.images import router

    return router.url_path_for(name, **params)


class Public(BaseModel):
    # rows and views come in as objects and dicts; unknown keys never leak into the answer
    model_config = ConfigDict(from_attributes=True, extra="ignore")


class ErrorDetail(Public):
    code: str = Field(description="Stable, for programs: invalid_request, not_found, ...")
    message: str = Field(description="A sentence for the person at the keyboard.")


class ErrorBody(Public):
    """Every error, whatever the route."""

    error: ErrorDetail


# --- accounts -------------------------------------------------------------------------------


class UserPublic(Public):
    id: int
    username: str
    is_admin: bool
    created_at: str


class Me(UserPublic):
    csrf_token: str | None = Field(description="Send it as X-CSRF-Token with the login cookie.")
    personal_mode: bool
    quotas: QuotaReport = Field(description="Your limits (null: unlimited) and your usage.")


class LoggedIn(Public):
    user: UserPublic
    csrf_token: str


class KeyPublic(Public):
    id: str
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it.")
    created_at: str
    last_used_at: str | None
    revoked: bool
    scopes: list[str] = Field(description="What it may do: generate, read, admin.")
    expires_at: str | None = Field(description="When it stops working; null: never.")
    expired: bool


class CreatedKey(KeyPublic):
    key: str = Field(description="The key itself: shown this once, never again.")


class KeyList(Public):
    keys: list[KeyPublic]


# --- the admin's users and audit log (api/routes/admin.py) ------------------------------------


class AdminUserPublic(Public):
    id: int
    username: str
    is_admin: bool
    disabled: bool
    created_at: str
    quotas: dict = Field(
        description="The admin's limits for this user: a limit absent is the site's, null is "
        "unlimited."
    )
    images: int = Field(description="Pictures kept.")
    keys: int = Field(description="API keys that work (not revoked, not expired).")
    last_login_at: str | None


class AdminUserList(Public):
    users: list[AdminUserPublic]


class AuditEventPublic(Public):
    id: int
    at: str
    action: str = Field(description="login.failed, key.created, settings.changed, ...")
    actor: str | None = Field(description="Who did it: a user's name, '(command line)', null.")
    actor_id: int | None
    target: str | None = Field(description="The account concerned (a name, as it was then).")
    address: str | None
    detail: dict
    summary: str = Field(description="The detail in a line for a person: 'name: old → new'.")


class AuditPage(Public):
    events: list[AuditEventPublic]
    next: str | None = Field(description="Pass it as cursor for the next (older) page.")


class WorkerPublic(Public):
    name: str
    host: str
    device: str
    models: list[str] = Field(description="The models it holds warm, by name.")
    job_id: str | None = Field(description="The job handed to it or running on it.")
    jobs_done: int
    heartbeat_at: str | None = Field(description="Its last heartbeat (None: this process's own).")
    alive: bool = Field(description="It beat within the expiry; one that did not is gone.")


class WorkerList(Public):
    workers: list[WorkerPublic]


# --- catalog --------------------------------------------------------------------------------


class ModelPublic(Public):
    name: str
    kind: str = Field(description="checkpoint, lora or vae")
    family: str | None
    category: str | None
    lineage: str | None
    version: str | None
    versions: list[str] = Field(description="Every installed version of its lineage.")
    description: str
    defaults: dict = Field(description="Its recommended settings.")
    trigger_words: list[str]
    keywords: dict[str, int] = Field(description="Words it was trained on, by frequency.")
    source_url: str | None
    license: str | None
    deprecated: bool
    hidden: bool
    card_inferred: bool = Field(description="Its card was guessed, not written.")
    bundled: bool
    broken: str | None = Field(description="Why it cannot be used; null when it can.")
    inpainting: bool | None = None
    functions: list[str] = Field(description="The Dezgo routes that run it.")


class ModelList(Public):
    models: list[ModelPublic]


class SamplerPublic(Public):
    id: str
    name: str
    aliases: list[str]


class SamplerList(Public):
    samplers: list[SamplerPublic]
    auto: str


class WarmUp(Public):
    status: str = Field(
        description="'warming up' (the default model is being loaded and its first picture "
        "drawn), 'ready', 'off' (turned off, nothing to warm, or jobs run on other workers) "
        "or 'failed'."
    )
    model: str | None = Field(description="The model warmed up (null until it is known).")
    seconds: float | None = Field(description="How long the warm-up took, once ready.")
    message: str | None = Field(description="Why it is off or failed.")


class Int8Trial(Public):
    status: str = Field(
        description="'off', 'waiting for the warm-up', 'quantizing' (the default model's UNet "
        "quantized and tried in a background process), 'switched' (its jobs run in int8), "
        "'kept the default' (int8 did not win here) or 'failed'."
    )
    model: str | None = Field(description="The model tried (the one warmed up).")
    message: str | None = Field(description="Why it is off, kept the default or failed.")
    figures: dict | None = Field(
        description="The trial's: psnr_db (int8's pictures against the default's), "
        "unet_call_s and default_unet_call_s (medians), call_ratio, quantize_s, peak_gib, "
        "switched, cpu, measured_at; as the model's card records them."
    )


class Health(Public):
    status: str
    version: str
    signup_open: bool
    personal_mode: bool
    retention_days: int | None
    warm_up: WarmUp = Field(
        description="The default model made ready at start, so that the first picture is as "
        "quick as the next."
    )
    int8: Int8Trial = Field(
        description="sfumato serve --int8-in-background: the default model tried in int8, and "
        "switched to where it wins."
    )


# --- history --------------------------------------------------------------------------------


class ImagePublic(Public):
    id: str
    job_id: str | None = Field(description="The generation that made it.")
    created_at: str
    model: str
    prompt: str
    seed: int | None
    width: int
    height: int
    format: str
    favourite: bool
    settings: dict = Field(description="Everything it was made with: enough to make it again.")
    model_info: dict = Field(description="The model's name, family, hash and backend.")
    source_image_id: str | None = Field(
        None, description="An upscale's: the picture it was made from (it may be deleted since)."
    )

    @computed_field
    @property
    def url(self) -> str:
        return url_path("image_file", image_id=self.id)

    @computed_field
    @property
    def thumbnail_url(self) -> str:
        return url_path("image_thumbnail", image_id=self.id)


class Retention(Public):
    days: int | None
    favourites_kept: bool
    description: str


class ImagePage(Public):
    images: list[ImagePublic]
    next_cursor: str | None = Field(description="Pass it as cursor for the next page.")
    total: int
    retention: Retention


class Deleted(Public):
    deleted: int = Field(description="How many were deleted.")


class UploadPublic(Public):
    id: str = Field(description="Pass it as init_image or mask_image.")
    width: int
    height: int
    created_at: str

    @computed_field
    @property
    def url(self) -> str:
        return url_path("upload_file", upload_id=self.id)


# --- jobs -----------------------------------------------------------------------------------


class Progress(Public):
    step: int
    total: int
    eta_s: float | None
    preview: str | None = Field(description="The picture as it stands, a data: URL.")


class JobEstimate(Public):
    """How long the job was expected to take when it was queued (``POST /v1/estimates``'
    figures for it alone, without the queue), kept to tell how good estimates are."""

    seconds: float = Field(description="Its model's load when not loaded, the engine, saving.")
    low: float = Field(description="10th percentile of the fit's errors on past jobs.")
    high: float = Field(description="90th percentile.")
    load_s: float | None = Field(None, description="The model's load, included in seconds.")
    basis: str = Field(description='"this model" or "every model on this server".')
    based_on: int | None = Field(None, description="The finished jobs it was learned from.")


class QueueEta(Public):
    """A queued job's wait, from the recorded estimates of the jobs ahead of it."""

    starts_in_s: float = Field(description="Seconds until it starts.")
    done_in_s: float = Field(description="Seconds until it is done: the wait and its own.")


class JobPublic(Public):
    id: str
    status: str = Field(description="queued, running, succeeded, failed or cancelled")
    source: str = Field(description="What sent it: web, api, dezgo, ...")
    created_at: str
    started_at: str | None
    finished_at: str | None
    model: str
    settings: dict
    format: str
    warnings: list[str]
    timings: dict | None
    queue_position: int | None
    estimate: JobEstimate | None = Field(
        None, description="Its expected time when queued; null when nothing was known yet."
    )
    eta: QueueEta | None = Field(
        None, description="Queued jobs: when it starts and ends; null when not known."
    )
    progress: Progress | None
    images: list[ImagePublic]
    error: ErrorDetail | None


class JobList(Public):
    generations: list[JobPublic]


# --- the admin's queue (api/routes/queue.py) --------------------------------------------------


class AdminJob(JobPublic):
    username: str = Field(description="Whose job it is.")
    position: int | None = Field(description="0: running now; 1: the next to run; ...")


class AdminJobList(Public):
    jobs: list[AdminJob]
