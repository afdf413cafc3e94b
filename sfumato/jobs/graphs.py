"""Run a graph's job in the server: models through the model cache, pictures from the
user's uploads, ``SaveImage`` pictures into the user's history (with the graph embedded as
ComfyUI embeds it), ComfyUI's events to the user's streams.

As with a plain job, the pictures' rows and the job's end are written in one transaction at
the end, and a failure removes the files written before it: a graph that fails at its third
node leaves no half of its pictures behind.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image as PILImage

from sfumato.catalog.loras import check_lora_fits
from sfumato.catalog.scan import CHECKPOINT, LORA, VAE
from sfumato.engine.generate import Step, StepCallback
from sfumato.engine.loader import LoadedModel
from sfumato.engine.loras import LoraSpec
from sfumato.errors import Cancelled, ModelNotFound, NotFound, SfumatoError
from sfumato.jobs.execute import store_picture
from sfumato.jobs.queue import succeed
from sfumato.store.tables import Image, Job, Upload, User, new_id
from sfumato.workflows import outputs as files
from sfumato.workflows.info import choices_for, installed, prompt_id, upload_names
from sfumato.workflows.run import run_graph
from sfumato.workflows.samplers import SAMPLERS
from sfumato.workflows.submit import SOURCE
from sfumato.workflows.validate import validate
from sfumato.workflows.values import Context, ModelRef, Pictures

if TYPE_CHECKING:
    import threading

    from sfumato.studio import Studio


# the messages ComfyUI keeps in a prompt's history ("status": {"messages": [...]})
STATUS_MESSAGES = (
    "execution_start",
    "execution_cached",
    "execution_success",
    "execution_error",
    "execution_interrupted",
)


class StudioContext(Context):
    def __init__(self, studio: Studio, job: Job, on_step: StepCallback, cancel, total: int):
        self.studio, self.job, self.cancel = studio, job, cancel
        self.on_step, self.total, self.done = on_step, max(1, total), 0
        self.models = studio.models()
        with studio.db.session() as session:
            self.uploads = upload_names(session, job.user_id)
        self.rows: list[Image] = []
        self.written: list[str] = []
        self.counters: dict[str, int] = {}
        self.current_node: str | None = None
        self.prompt_id = prompt_id(job)

    def report(self, event: str, data: dict) -> None:
        workflow = self.job.workflow or {}
        if event == "executing":
            self.current_node = data["node"]
        if event in STATUS_MESSAGES:  # timed, and kept for the history's status messages
            data = data | {"timestamp": data.get("timestamp", _now())}
            workflow.setdefault("messages", []).append([event, data])
        self.studio.events.publish(
            self.job.user_id,
            {
                "type": "comfyui",
                "job_id": self.job.id,
                "client_id": workflow.get("client_id"),
                "event": event,
                "data": data,
            },
        )

    def checkpoint(self, name: str) -> ModelRef:
        path = installed(self.models, CHECKPOINT).get(name)
        if path is None or not path.exists():
            raise ModelNotFound(f"The model {name} is no longer installed.")
        return ModelRef(name, path)

    def load(self, model: ModelRef) -> LoadedModel:
        source = self.studio.source_of(model.path)
        return self.studio.model_cache.get(source, self.studio.config.load)

    def lora(self, name: str, strength: float, model: LoadedModel) -> LoraSpec:
        path = installed(self.models, LORA).get(name)
        entry = self.models.scan().entry_at(path) if path is not None else None
        if entry is None or entry.lora is None:
            raise ModelNotFound(f"The LoRA {name} is no longer installed.")
        check_lora_fits(name, entry.lora, model.source.name, model.source.family.architecture)
        return LoraSpec(path, name, strength, self.models.hashes.lora_hash(path))

    def vae_file(self, name: str) -> Path:
        path = installed(self.models, VAE).get(name)
        if path is None:
            raise ModelNotFound(f"The VAE {name} is no longer installed.")
        return path

    def picture(self, name: str) -> PILImage.Image:
        found = self.uploads.get(name)
        if found is None:
            raise NotFound(f"You have no uploaded picture named {name!r}; upload it again.")
        with self.studio.db.session() as session:
            upload = session.get(Upload, found[0])
            key = upload.file_key if upload else None
        if key is None or not self.studio.files.exists(key):
            raise NotFound(f"The uploaded picture {name!r} is gone; upload it again.")
        picture = PILImage.open(io.BytesIO(self.studio.files.get(key)))
        picture.load()
        return picture

    def picture_key(self, name: str) -> str:
        found = self.uploads.get(name)
        return found[0] if found else name

    def progress(self, node_id, done, total, latents, previewer) -> None:
        self.report(
            "progress",
            {"value": done, "max": total, "prompt_id": self.prompt_id, "node": node_id},
        )
        self.on_step(Step(min(self.done + done, self.total), self.total, latents, previewer))
        if done == total:
            self.done += total

    def save(self, node_id: str, pictures: Pictures, prefix: str, temporary: bool) -> list[dict]:
        workflow = self.job.workflow or {}
        graph, extra = workflow.get("prompt", {}), workflow.get("extra_data", {})
        pnginfo = extra.get("extra_pnginfo") if isinstance(extra, dict) else None
        subfolder, stem = files.split_prefix(prefix)
        saved = []
        for picture in pictures.images:
            image_id = new_id()
            counter = self.counters[prefix] = self.counters.get(prefix, 0) + 1
            # (a preview's name is its storage key's: lower case)
            name = files.output_name("preview" if temporary else stem, counter, image_id)
            encoded = files.comfy_png(picture, graph, pnginfo)
            if temporary:
                key = files.TEMP_KEY.format(user_id=self.job.user_id, filename=name)
                self.studio.files.put(key, encoded)
                self.written.append(key)
                saved.append({"filename": name, "subfolder": "", "type": "temp"})
                continue
            row, keys = store_picture(
                self.studio, self.job, len(self.rows), picture, _settings(pictures.trace, picture),
                encoded, {"name": pictures.trace.get("model"), "family":
                          pictures.trace.get("family"), "graph": True},
                fmt="png", image_id=image_id, model_name=pictures.trace.get("model"),
            )  # fmt: skip
            self.rows.append(row)
            self.written += keys
            saved.append({"filename": name, "subfolder": subfolder, "type": "output"})
        return saved


def _settings(trace: dict, picture: PILImage.Image) -> dict:
    """A graph's picture's settings, as far as its trace says them (the whole recipe is the
    graph embedded in the file)."""
    return {
        "family": trace.get("family", ""),
        "prompt": trace.get("prompt", ""),
        "negative_prompt": trace.get("negative_prompt", ""),
        "width": picture.width,
        "height": picture.height,
        "steps": trace.get("steps"),
        "guidance": trace.get("cfg"),
        "sampler": SAMPLERS.get(trace.get("sampler", ""), trace.get("sampler")),
        "scheduler": trace.get("scheduler"),
        "seed": trace.get("seed"),
        "denoise": trace.get("denoise"),
        "loras": trace.get("loras", []),
        "graph": True,
    }


def execute_graph(
    studio: Studio, job: Job, on_step: StepCallback, cancel: threading.Event
) -> list[Image]:
    """Run the graph of ``job``: checked again (a model or upload may have gone since it was
    queued), run, its pictures kept and the job marked done."""
    started = time.perf_counter()
    workflow = dict(job.workflow or {})
    job.workflow = workflow
    ctx = StudioContext(studio, job, on_step, cancel, job.total)
    try:
        plan = validate(workflow.get("prompt"), choices_for(studio, job.user_id))
        ctx.report("execution_start", {"prompt_id": ctx.prompt_id})
        outputs = run_graph(
            plan, ctx, ctx.prompt_id, ctx.report, studio.node_cache, cache_key(studio, job),
            rerun_outputs=job.source != SOURCE,
        )  # fmt: skip
        ctx.report("execution_success", {"prompt_id": ctx.prompt_id})
        rendered = time.perf_counter()
        workflow["outputs"] = outputs
        with studio.db.session() as session:
            session.add_all(ctx.rows)
            row = succeed(session, job)
            row.workflow = dict(workflow)
            row.timings = (row.timings or {}) | {
                "engine_s": round(rendered - started, 4),
                "save_s": round(time.perf_counter() - rendered, 4),
            }
    except BaseException as e:
        for key in ctx.written:  # no file without its row
            studio.files.delete(key)
        _report_failure(ctx, job, e)
        raise
    return ctx.rows


def cache_key(studio: Studio, job: Job) -> tuple:
    """Whose node outputs a graph may reuse: the user's, by id and sign-up time (a database
    may give a deleted user's id to a new one)."""
    with studio.db.session() as session:
        user = session.get(User, job.user_id)
        return (job.user_id, user.created_at.isoformat() if user else None)


def _report_failure(ctx: StudioContext, job: Job, error: BaseException) -> None:
    """ComfyUI's message for the failure, sent and kept with the job (its history says which
    node failed, and why)."""
    if isinstance(error, Cancelled) and ctx.studio.dispatch.stopping:
        return  # not the end: the server stops, and the job runs again at its next start
    node = ctx.current_node
    kind = (job.workflow or {}).get("prompt", {}).get(node, {}).get("class_type")
    base = {"prompt_id": ctx.prompt_id, "node_id": node, "node_type": kind, "executed": []}
    if isinstance(error, Cancelled):
        ctx.report("execution_interrupted", base)
    else:
        message = error.message if isinstance(error, SfumatoError) else str(error)[:300]
        ctx.report(
            "execution_error",
            base
            | {
                "exception_message": message,
                "exception_type": type(error).__name__,
                "traceback": [],
                "current_inputs": {},
                "current_outputs": [],
            },
        )
    with ctx.studio.db.session() as session:
        row = session.get(Job, job.id)
        if row is not None:
            row.workflow = dict(job.workflow or {}) | {"failed_node": node}


def _now() -> int:
    return int(time.time() * 1000)
