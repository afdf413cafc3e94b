"""``sfumato generate --estimate`` on the demo model: not known before anything ran here and
nothing made or created by asking; learned from the CLI's own timed runs, within a stated
tolerance of the next run; before any CLI run, learned from the jobs of the server that
keeps its database in the same data folder."""

from __future__ import annotations

import json
import time

from sfumato.datadir import DataDir
from sfumato.engine.request import GenerationRequest
from sfumato.jobs.submit import submit
from sfumato.timings import FILE
from tests.test_cli import run

PROMPT = "a red circle on a blue background"
# the demo model's runs take about a second here, on a machine shared with other work, and
# the estimate is fitted from two runs
TOLERANCE = 0.5


def _timed(data: DataDir) -> list[dict]:
    return [json.loads(line) for line in (data.cache / FILE).read_text().splitlines()]


def test_the_estimate_is_learned_from_the_clis_own_runs():
    data = DataDir.resolve()
    first = run("generate", PROMPT, "--steps", "12", "--estimate")
    assert first.exit_code == 0, first.output
    assert "not known yet" in first.output
    assert not data.outputs.exists() and not (data.root / "sfumato.db").exists()
    assert not (data.cache / FILE).exists()  # asking is not a run

    for steps in ("6", "20"):
        assert run("generate", PROMPT, "--steps", steps, "--seed", "1").exit_code == 0
    said = run("generate", PROMPT, "--steps", "12", "--estimate")
    assert said.exit_code == 0, said.output
    assert "Time: about " in said.output and "2 of this CLI's runs here" in said.output
    seconds = float(said.output.split("Time: about ")[1].split(" s")[0])
    assert len(list(data.outputs.rglob("*.png"))) == 2  # still two pictures: nothing made

    assert run("generate", PROMPT, "--steps", "12", "--seed", "1").exit_code == 0
    measured = _timed(data)[-1]
    assert measured["settings"]["steps"] == 12
    took = sum(measured["timings"][k] for k in ("load_s", "engine_s", "save_s"))
    assert abs(seconds - took) <= TOLERANCE * took, (seconds, measured["timings"])


def test_before_any_cli_run_the_estimate_comes_from_this_data_folders_server():
    from sfumato.store.tables import User
    from sfumato.studio import Studio, StudioConfig

    data = DataDir.resolve()
    studio = Studio(StudioConfig(personal=True))  # this data folder, its SQLite database
    studio.start()
    try:
        with studio.db.session() as session:
            user = session.get(User, studio.personal_user_id)
            session.expunge(user)
        for steps in (6, 20):
            job = submit(studio, user, GenerationRequest(PROMPT, steps=steps, seed=1))
            _wait(studio, job.id)
    finally:
        studio.stop()
    said = run("generate", PROMPT, "--steps", "12", "--estimate")
    assert said.exit_code == 0, said.output
    assert "Time: about " in said.output
    assert f"2 job(s) the server in {data.root}" in " ".join(said.output.split())


def _wait(studio, job_id: str) -> None:
    from sfumato.jobs.queue import FINISHED
    from sfumato.store.tables import Job

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with studio.db.session() as session:
            job = session.get(Job, job_id)
            if job.status in FINISHED:
                assert job.status == "succeeded", job.error_message
                return
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")
