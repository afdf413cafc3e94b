"""The engine benchmark's quick mode runs end to end on a full-size SD 1.5 (random weights):
every path gives its figures, and it writes its JSON and its chart."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def run_benchmark(script: str, *args: str, out: Path, timeout: int = 300) -> tuple[dict, str]:
    """``benchmarks/SCRIPT`` run as a user runs it; its JSON figures and what it printed."""
    done = subprocess.run(
        [sys.executable, f"benchmarks/{script}", *args, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text()), done.stdout


@pytest.mark.slow
def test_the_quick_engine_benchmark_measures_every_path(tmp_path):
    done = subprocess.run(
        [sys.executable, "benchmarks/engine_speed.py", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Random weights" in done.stdout  # it says the pictures are noise
    written = json.loads((tmp_path / "engine_speed_quick.json").read_text())
    (case,) = written["results"].values()
    assert {
        "diffusers fp32",
        "sfumato OpenVINO (default)",
        "sfumato OpenVINO + both",
    } <= set(case)
    for path, figures in case.items():
        assert 0 < figures["unet_call_s"] < figures["picture_s"], path
        assert 0 < figures["vae_s"] < figures["picture_s"], path
        assert figures["unet_call_s"] < figures["next_picture_s"], path  # a second picture
        # the full-size model: its 860 M UNet parameters alone take 3.2 GiB in fp32, 1.6 in bf16
        assert figures["peak_rss_gb"] > (3.2 if figures["dtype"] == "float32" else 1.6), path
        assert 0 < figures["peak_private_gb"] <= figures["peak_rss_gb"], path
    (conversions,) = written["openvino_conversion"].values()
    conversion = conversions["OpenVINO conversion"]  # the quick run has no int8 path
    assert list(conversions) == ["OpenVINO conversion"]
    assert conversion["seconds"] > 0 and conversion["peak_rss_gb"] > 1.6
    with Image.open(tmp_path / "engine_speed_quick.png") as chart:
        assert chart.width > 500 and chart.height > 100


def test_a_slow_machine_can_measure_one_case_and_some_paths():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import engine_speed

    (case,) = engine_speed.select(engine_speed.FULL, "sd15", ["OpenVINO (default)", "both"])
    assert case.architecture == "sd15"
    assert case.sfumato == (
        "sfumato PyTorch + both",
        "sfumato OpenVINO (default)",
        "sfumato OpenVINO + both",
        "sfumato OpenVINO int8 + both",
    )
    assert engine_speed.select(engine_speed.FULL, None, ["no such path"]) == []
    # without filters, every case and every path
    assert engine_speed.select(engine_speed.FULL, None, []) == engine_speed.FULL


def test_the_front_doors_benchmark_runs_every_door_on_the_same_request(tmp_path):
    """One round at one step (the figures in benchmarks/RESULTS.md come from full runs)."""
    figures, _ = run_benchmark(
        "front_doors.py", "--rounds", "1", "--steps", "1", out=tmp_path / "front_doors.json"
    )
    assert figures["same_settings"] is True  # every door ran the same request
    assert list(figures["doors"]) == [
        "/v1/generations",
        "Dezgo /text2image",
        "A1111 /sdapi/v1/txt2img",
        "OpenAI /openai/v1/images/generations",
    ]
    for door in figures["doors"].values():
        assert door["runs"] == 1 and 0 < door["door_ms"] < door["picture_s"] * 1000


def test_the_graphs_benchmark_compares_a_graph_with_the_same_request(tmp_path):
    """One round at one step (the figures in benchmarks/RESULTS.md come from full runs)."""
    figures, printed = run_benchmark(
        "graphs.py", "--rounds", "1", "--steps", "1", out=tmp_path / "graphs.json"
    )
    assert set(figures["pictures"]["median_s"]) == {"v1", "graph"}
    assert figures["validation"]["nodes"] == 1000 and figures["validation"]["median_ms"] > 0
    assert "validating a 1000-node graph" in printed


def test_the_tokenize_benchmark_reads_a_300_token_prompt_in_milliseconds(tmp_path):
    """A few runs (the figure in benchmarks/RESULTS.md is the median of 200)."""
    figures, printed = run_benchmark("tokenize_speed.py", "--runs", "5", out=tmp_path / "t.json")
    assert figures["prompt_tokens"] >= 300 and figures["longest_chars"] == 10_000
    # milliseconds, with room for a slow, busy test machine
    assert 0 < figures["engine_ms"] < 100 and 0 < figures["route_ms"] < 500
    assert "POST /v1/prompts/tokenize answers in" in printed


def test_the_grids_benchmark_compares_a_grid_with_its_cells_one_by_one(tmp_path):
    """One round at one step (the figures in benchmarks/RESULTS.md come from full runs)."""
    figures, printed = run_benchmark(
        "grids.py", "--rounds", "1", "--steps", "1", out=tmp_path / "grids.json"
    )
    assert set(figures["median_s"]) == {"cells", "grid"} and figures["cells"] == 4
    assert "as a grid" in printed


def test_the_hires_benchmark_checks_the_scene_and_measures_memory(tmp_path):
    """One scene, one round, small sizes (the figures in benchmarks/RESULTS.md come from full
    runs; at 128 px the fixed costs dominate the per-megapixel memory)."""
    figures, printed = run_benchmark(
        "hires.py", "--scenes", "1", "--rounds", "1", "--decode", "128", "--unet", "128",
        out=tmp_path / "hires.json",
    )  # fmt: skip
    assert figures["scenes"] == 1 and set(figures["kept"]) == {"Latent", "Lanczos", "direct"}
    assert figures["memory_mib_per_mpx"]["decode 128"] > 0
    assert "with the 2x hires fix" in printed


def test_the_estimates_benchmark_estimates_then_measures(tmp_path):
    """One calibration job and one estimated job (the figures in benchmarks/RESULTS.md come
    from a full run): the first queued before anything was known, the second with the
    estimate recorded when it was queued."""
    figures, printed = run_benchmark(
        "estimates.py", "--calibration", "1", "--jobs", "1", out=tmp_path / "estimates.json"
    )
    (row,) = figures["demo"]["jobs"]
    assert row["estimate_s"] > 0 and row["measured_s"] > 0
    assert figures["demo"]["calibration_without_estimate"] == 1
    assert "median absolute error" in printed


def test_the_scale_out_benchmark_measures_dispatch_throughput_and_affinity(
    tmp_path, postgres_admin
):
    """A few jobs at two steps (the figures in benchmarks/RESULTS.md come from full runs):
    PostgreSQL and Redis on this machine, as the tests in tests/cluster/ need them."""
    from tests.cluster.conftest import REDIS_URL, _reachable

    _reachable(REDIS_URL, "SFUMATO_TEST_REDIS")
    figures, printed = run_benchmark(
        "scale_out.py", "--jobs", "6", "--steps", "2", "--alone", "1",
        out=tmp_path / "scale_out.json", timeout=600,
    )  # fmt: skip
    assert figures["one_worker"]["jobs"] == figures["two_workers"]["jobs"] == 6
    assert figures["dispatch"]["submit_to_start_ms"] > 0
    # two models on two workers keeping one each: with affinity each loads its model once
    assert figures["affinity"]["with"]["model_loads"] == 2
    assert figures["affinity"]["without"]["model_loads"] >= 2
    assert "model loads with affinity" in printed


def test_the_warm_start_benchmark_times_first_and_second_pictures(tmp_path):
    """The demo model's three servers (cold, cold restarted, warm): the warm server's first
    picture loads nothing, the cold ones' first pictures load the model."""
    figures, printed = run_benchmark("warm_start.py", out=tmp_path / "warm_start.json")
    servers = figures["demo"]
    assert list(servers) == ["cold, first start", "cold, restarted", "warm (default)"]
    warm = servers["warm (default)"]
    assert warm["warm_up"]["status"] == "ready" and warm["warm_up"]["model"] == "sfumato-demo"
    total, load, engine = warm["first"]
    assert load < 0.1 and 0 < engine < total
    for cold in ("cold, first start", "cold, restarted"):
        assert servers[cold]["warm_up"]["status"] == "off"
        assert servers[cold]["first"][1] > 0.3  # its load: the compile, and first the conversion
    assert "| warm (default) |" in printed
