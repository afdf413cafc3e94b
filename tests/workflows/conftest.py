"""A studio on a fresh data folder with the bundled demo model and its worker thread, for
running graphs through the real queue, worker, engine and history."""

from __future__ import annotations

import copy
import io
import json
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

from sfumato.jobs.queue import FINISHED
from sfumato.store.tables import Image as ImageRow
from sfumato.store.tables import Job, User
from sfumato.studio import Studio, StudioConfig
from sfumato.uploads import save_upload
from sfumato.workflows.submit import submit_graph

DATA = Path(__file__).parent.parent / "data"
DEMO = "sfumato-demo"
PROMPT = "a red circle on a blue background"


def default_graph(**changes) -> dict:
    """ComfyUI's own text-to-image API example (``script_examples/basic_api_example.py``,
    verbatim in tests/data), the checkpoint changed to the demo model, the size to its 64 px,
    the prompt to one of its world."""
    graph = json.loads((DATA / "comfyui_basic_api_example.json").read_text())
    graph["4"]["inputs"]["ckpt_name"] = DEMO
    graph["5"]["inputs"].update(width=64, height=64)
    graph["3"]["inputs"].update(steps=8, seed=5)
    graph["6"]["inputs"]["text"] = PROMPT
    for path, value in changes.items():
        node, name = path.split(".")
        graph[node]["inputs"][name] = value
    return graph


class Runner:
    def __init__(self, studio: Studio):
        self.studio = studio
        with studio.db.session() as session:
            user = session.get(User, studio.personal_user_id)
            session.expunge(user)
        self.user = user

    def submit(self, graph: dict, fresh: bool = True, **options) -> Job:
        if fresh:  # no node taken from an earlier graph: each run computes everything
            self.studio.node_cache.clear()
        return submit_graph(self.studio, self.user, copy.deepcopy(graph), **options)

    def run(self, graph: dict, fresh: bool = True, **options) -> Job:
        return self.wait(self.submit(graph, fresh, **options).id)

    def wait(self, job_id: str, timeout: float = 120) -> Job:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.studio.db.session() as session:
                job = session.get(Job, job_id)
                if job.status in FINISHED:
                    session.expunge(job)
                    return job
            time.sleep(0.05)
        raise AssertionError(f"graph job {job_id} did not finish")

    def pictures(self, job: Job) -> list[Image.Image]:
        with self.studio.db.session() as session:
            rows = session.query(ImageRow).filter_by(job_id=job.id).order_by("batch_index")
            return [Image.open(io.BytesIO(self.studio.files.get(r.file_key))) for r in rows]

    def upload(self, picture: Image.Image, name: str) -> str:
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        with self.studio.db.session() as session:
            upload = save_upload(
                session, self.studio.files, self.user.id, buffer.getvalue(), 10_000_000
            )
            upload.name = name
            session.commit()
        return name


@pytest.fixture
def runner(tmp_path) -> Runner:
    models = tmp_path / "models"
    (models / "Lora").mkdir(parents=True)
    shutil.copy(DATA / "demo-white-background.safetensors", models / "Lora")
    studio = Studio(StudioConfig(data_dir=tmp_path / "data", models_dirs=[models], personal=True))
    studio.start()
    yield Runner(studio)
    studio.stop()
