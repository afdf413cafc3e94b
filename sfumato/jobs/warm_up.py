"""The server's default model made ready before its first job: loaded into the model cache
(on the CPU's default backend, converted for OpenVINO once per model and compiled), then one
short picture drawn at its native size and thrown away, so that the first user's picture costs
what the next one does.

The first picture of a cold server pays for the load (and the conversion, the first time the
model runs on OpenVINO), for OpenVINO's UNet and VAE decoder compiled for the picture's
shapes at their first call (seconds; DeepCache's network, its shapes open, plans its kernels
for a shape at its first call) and for the model file's hash its metadata records. A picture of two
steps at the model's own settings pays all of it: the same size, guidance and sampler as a
request that leaves them out, two steps rather than many.

It runs in the server's worker thread, before it takes its first job: a job queued meanwhile
waits for it rather than loading the same model a second time beside it, and no two pictures
run at once (the backends route a pipeline's networks for the time of one picture). With a
broker (``cluster/``) the API process runs no jobs and warms nothing.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from sfumato.engine.request import GenerationRequest
from sfumato.errors import Cancelled, ModelNotFound, SfumatoError
from sfumato.generation import GenerationJob
from sfumato.jobs.submit import checkpoint_path
from sfumato.store.tables import User

if TYPE_CHECKING:
    from sfumato.engine.checkpoint import ModelSource
    from sfumato.studio import Studio

log = logging.getLogger(__name__)
ENV_VAR = "SFUMATO_WARM_UP"  # 0: servers start cold (the default of --no-warm-up)
STEPS = 2  # enough to call each network at the picture's shapes (guidance cutoff: both batches)

# what /v1/health says
OFF = "off"
WARMING = "warming up"
READY = "ready"
FAILED = "failed"


def wanted(setting: bool | None) -> bool:
    """Whether a server warms its default model: its setting, else SFUMATO_WARM_UP, else yes."""
    if setting is not None:
        return setting
    return os.environ.get(ENV_VAR, "1").strip().lower() not in ("0", "false", "no", "off")


class WarmUp:
    """The warm-up of one server, and where it stands."""

    def __init__(self, studio: Studio, why_off: str | None = None):
        self.studio = studio
        self.status = OFF if why_off else WARMING
        self.message: str | None = why_off
        self.model: str | None = None
        self.source: ModelSource | None = None  # the model warmed, once ready
        self.seconds: float | None = None
        self._stop = threading.Event()

    def view(self) -> dict:
        return {
            "status": self.status,
            "model": self.model,
            "seconds": self.seconds,
            "message": self.message,
        }

    def stop(self) -> None:
        """The server is stopping: end the warm-up's picture after its current step."""
        self._stop.set()

    def run(self) -> None:
        """Warm the default model; never raises (a model that cannot load is said, and its
        jobs get their own error)."""
        if self.status != WARMING:
            return
        started = time.perf_counter()
        try:
            job = self._job()
        except ModelNotFound as e:  # no model, or several and none the default
            self._end(OFF, f"Nothing to warm up: {e.message}")
            return
        except Exception as e:
            self._fail(e)
            return
        self.model = job.source.name
        log.info("Warming up %s", self.model)
        try:
            job.model = self.studio.model_cache.get(job.source, job.load_options)
            job.render(cancel=self._stop)
            job.metadata(0)  # the model file's hash, read once and kept
        except Cancelled:
            self._end(OFF, "The server stopped before the model was warm.")
            return
        except Exception as e:
            self._fail(e)
            return
        self.seconds = round(time.perf_counter() - started, 2)
        self.source = job.source
        self._end(READY, None)
        log.info("%s is ready (%.1f s)", self.model, self.seconds)

    def _job(self) -> GenerationJob:
        """The picture a request naming no model would be, at two steps."""
        studio = self.studio
        user = None
        if studio.personal_user_id is not None:  # personal mode: its one user's default
            with studio.db.session() as session:
                user = session.get(User, studio.personal_user_id)
        # otherwise the server's default (a user's own default is theirs to warm)
        path = checkpoint_path(studio, user or User(preferences=None), None)
        source = studio.source_of(path)
        job = GenerationJob.plan(
            GenerationRequest("warm-up"), source, studio.data, studio.config.load, studio.models()
        )
        job.settings = replace(job.settings, steps=min(job.settings.steps, STEPS))
        return job

    def _fail(self, e: Exception) -> None:
        if isinstance(e, SfumatoError):
            message = e.message
            log.warning("Warm-up failed: %s", message)
        else:
            first = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
            message = f"Could not warm up {self.model or 'the default model'}: {first}"
            log.exception("Warm-up failed")
        self._end(FAILED, message)

    def _end(self, status: str, message: str | None) -> None:
        self.message = message
        self.status = status
