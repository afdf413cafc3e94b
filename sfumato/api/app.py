"""The web application: ``create_app(studio)`` gives the FastAPI app that ``sfumato serve``
runs. Starting it migrates the database, queues again what a crash interrupted, starts the
worker and the retention purge."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from sfumato import __version__, web
from sfumato.api import errors
from sfumato.api.bodies import JsonBodies
from sfumato.api.headers import SecurityHeaders
from sfumato.api.routes import account, auth, catalog, dezgo, generations, images
from sfumato.api.schemas import ErrorBody
from sfumato.studio import Studio

log = logging.getLogger(__name__)
# documented on every route: the same JSON body whatever the error
ERRORS = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "A request it cannot run, with a sentence that says why"),
        (401, "No valid API key or login"),
        (404, "Not found, or not yours"),
        (422, "A field missing or of the wrong type"),
        (429, "Too many jobs queued"),
    )
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
    for module in (auth, account, generations, images, catalog, dezgo):
        app.include_router(module.router, responses=ERRORS)
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
        except Exception:
            log.exception("the retention purge failed; it runs again later")
        await asyncio.sleep(studio.config.purge_every_s)
