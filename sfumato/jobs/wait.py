"""Waiting for a job to finish, for the front doors that answer with the picture itself
(Dezgo's, A1111's and OpenAI's APIs) rather than with a job to follow."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool

from sfumato.jobs.queue import FINISHED, job_images
from sfumato.store.tables import Image, Job

if TYPE_CHECKING:
    from sfumato.studio import Studio

# the owner's events wake the wait at once; this is only the fallback, should one be missed
POLL_S = 2.0


async def finished(studio: Studio, job: Job) -> tuple[Job, list[Image]]:
    """The job once it has finished (succeeded, failed or cancelled), and its pictures."""

    def read() -> tuple[Job, list[Image]]:
        with studio.db.session() as session:
            return session.get_one(Job, job.id), job_images(session, job.id)

    async with studio.events.subscribe(job.user_id) as events:
        while True:
            current, images = await run_in_threadpool(read)
            if current.status in FINISHED:
                return current, images
            try:
                while True:
                    event = await asyncio.wait_for(events.get(), POLL_S)
                    if event["type"] == "job" and event["job"]["id"] == job.id:
                        break
            except TimeoutError:
                pass
