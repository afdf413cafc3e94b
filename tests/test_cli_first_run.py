"""`sfumato generate` says, once, that the first run of a model converts it (on the CPU's
default backend, OpenVINO, each model is converted once into the data folder)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from sfumato.datadir import DataDir

FIRST_RUN = "First run of tiny-sd15: converting it for this CPU"


def generate(data: DataDir, *args: str) -> str:
    """Run `sfumato generate` as a user does (its own process, the default backend); its
    stderr."""
    env = {k: v for k, v in os.environ.items() if k != "SFUMATO_BACKEND"}
    done = subprocess.run(
        [sys.executable, "-m", "sfumato", "generate", "a red circle", "-W", "64", "-H", "64",
         "-s", "2", "--data-dir", str(data.root), *args],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr


def test_the_first_run_says_it_converts_the_model_and_later_runs_do_not(tiny_models):
    data = DataDir.resolve()  # the test's own empty data folder (see conftest)
    data.models.mkdir(parents=True)
    shutil.copytree(tiny_models["sd15"]["folder"], data.models / "tiny-sd15")
    first = generate(data)
    assert first.count(FIRST_RUN) == 1, first
    assert list((data.cache / "openvino").glob("*/unet.xml"))  # converted indeed
    second = generate(data)
    assert "First run" not in second and "convert" not in second, second
    # PyTorch converts nothing, and says nothing of it
    assert "First run" not in generate(data, "--backend", "torch")
