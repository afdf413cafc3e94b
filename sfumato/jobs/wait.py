"""Waiting for a job to finish, for the front doors that answer with the picture itself
(Dezgo's, A1111's and OpenAI's APIs) rather than with a job to follow."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool

from sfumato.errors import ServerStopping
from sfumato.jobs.queue import FINISHED, job_images
from sfumato.store.tables import Image, Job

if TYPE_CHECKING:
    from sfumato.studio import Studio

# the owner's events wake the wait at once; this is only the fallback, should one be missed
POLL_S = 2.0


async def finished(studio: Studio, job: Job) -> tuple[Job, list[Image]]:
    """The job once it has finished (succeeded, failed or cancelled), and its pictures; a
    503 when the server stops first (its job stays queued and runs again at the next start,
    so a waiting client is told rather than held until the process is killed)."""

    def read() -> tuple[Job, list[Image]]:
        with studio.db.session() as session:
            return session.get_one(Job, job.id), job_images(session, job.id)

    async with studio.events.subscribe(job.user_id) as events:
        while True:
            current, images = await run_in_threadpool(read)
            if current.status in FINISHED:
                return current, images
            if studio.dispatch.stopping:
                raise ServerStopping(
                    f"The server is stopping; job {job.id} runs again when it starts. "
                    f"Follow it with GET /v1/generations/{job.id}."
                )
            try:
                while True:
                    event = await asyncio.wait_for(events.get(), POLL_S)
                    if event["type"] == "job" and event["job"]["id"] == job.id:
                        break
            except TimeoutError:
                pass
