"""The web application: ``create_app(studio)`` gives the FastAPI app that ``sfumato serve``
runs. Starting it migrates the database, queues again what a crash interrupted, starts the
worker and the retention purge."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from sfumato import __version__, audit, web
from sfumato.api import errors
from sfumato.api.bodies import JsonBodies
from sfumato.api.headers import SecurityHeaders
from sfumato.api.routes import (
    a1111,
    account,
    admin,
    auth,
    catalog,
    comfyui,
    dezgo,
    estimates,
    generations,
    grids,
    images,
    openai_images,
    prompts,
    queue,
    upscales,
    workflows,
)
from sfumato.api.schemas import ErrorBody
from sfumato.errors import STATUS
from sfumato.store.site import read_site
from sfumato.studio import Studio

log = logging.getLogger(__name__)
# what each status means to a caller; every status an error may carry is documented on every
# route, with the same JSON body (a status missing here fails at import, not in a client)
MEANING = {
    400: "A request it cannot run, with a sentence that says why",
    401: "No valid API key or login",
    403: "Not allowed: another user's, an admin's, or outside the key's scopes or the quotas",
    404: "Not found, or not yours",
    409: "In conflict with what exists (a name taken, a job already finished)",
    413: "Too large",
    422: "A field missing or of the wrong type",
    429: "Too many requests or jobs queued: retry after the Retry-After header's seconds",
    503: "The server cannot run it now",
    507: "Not enough memory for this model or size",
}
ERRORS = {
    status: {"model": ErrorBody, "description": MEANING[status]}
    for status in sorted(set(STATUS.values()) | {422})
    if status != 500  # a bug, not an answer a caller should plan for
}

DESCRIPTION = """
Generate pictures with Stable Diffusion 1.5, SDXL and SDXL Lightning models on your own server.

Authenticate with an API key (`Authorization: Bearer KEY`, `X-API-Key: KEY`, or Dezgo's
`X-Dezgo-Key: KEY`) or the login cookie (then send `X-CSRF-Token` on changes).
Errors are `{"error": {"code": ..., "message": ...}}`.
"""


def create_app(studio: Studio) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(studio.start)
        purge = asyncio.create_task(_purge_every(studio))
        try:
            yield
        finally:
            purge.cancel()
            await run_in_threadpool(studio.stop)

    app = FastAPI(
        title="sfumato",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.studio = studio
    errors.install(app)
    for module in (
        auth,
        account,
        admin,
        generations,
        grids,
        estimates,
        upscales,
        images,
        catalog,
        prompts,
        dezgo,
        queue,
    ):
        app.include_router(module.router, responses=ERRORS)
    app.include_router(a1111.router, responses=ERRORS)
    app.include_router(openai_images.router, responses=ERRORS)  # its own error shape
    app.include_router(comfyui.router, responses=ERRORS)  # ComfyUI's protocol, /x and /api/x
    app.include_router(workflows.router, responses=ERRORS)  # saved workflows (graphs)
    web.mount(app)
    app.add_middleware(JsonBodies)  # every JSON body bounded in size and depth, no NaN
    app.add_middleware(SecurityHeaders)
    return app


async def _purge_every(studio: Studio) -> None:
    while True:
        try:
            pictures, uploads = await run_in_threadpool(studio.purge)
            if pictures or uploads:
                log.info("retention: deleted %d picture(s), %d upload(s)", pictures, uploads)
            if events := await run_in_threadpool(_purge_audit, studio):
                log.info("retention: deleted %d audit event(s)", events)
        except Exception:
            log.exception("the retention purge failed; it runs again later")
        await asyncio.sleep(studio.config.purge_every_s)


def _purge_audit(studio: Studio) -> int:
    with studio.db.session() as session:
        return audit.purge_expired(session, read_site(session).audit_retention_days)
