"""How good the time estimate is (issue 28, part 3): in a fresh studio, a few calibration jobs,
then a mixed set of jobs (steps, batch, size, the hires fix), each queued as any job is: its
estimate recorded at admission (``Job.estimate``, what the page and the API show), then
measured (load, engine and saving, from the job's timings). The median absolute error of
the recorded estimates, in seconds and as a share of the measured time. Jobs run one at a
time, so the queue adds nothing. On the demo model; with ``--sd15``, then on a full-size
SD 1.5 (the real architecture, zero weights: the same compute as trained ones) at small
sizes, so that it runs in minutes on a CPU.

    python benchmarks/estimates.py [--calibration 4] [--jobs 8] [--sd15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.in_studio import DEMO, demo_studio, wait  # noqa: E402

PROMPT = "a red circle on a blue background"
CALIBRATION = [{"steps": 4}, {"steps": 8}, {"steps": 16}, {"steps": 12, "batch_size": 2}]
MIXED = [
    {"steps": 12},
    {"steps": 20},
    {"steps": 6, "batch_size": 4},
    {"steps": 12, "width": 96, "height": 96},
    {"steps": 12, "hr_scale": 2, "hr_second_pass_steps": 6, "denoising_strength": 0.5},
    {"steps": 30},
    {"steps": 10, "batch_size": 2, "hr_scale": 1.5},
    {"steps": 24, "width": 128, "height": 64},
]
# SD 1.5 at a quarter of its native area and a few steps: a job is seconds here, not minutes
SD15 = "sd15-zeros"
SD15_CALIBRATION = [
    {"steps": 3, "width": 256, "height": 256},
    {"steps": 6, "width": 256, "height": 256},
    {"steps": 3, "width": 384, "height": 384},
]
SD15_MIXED = [
    {"steps": 5, "width": 256, "height": 256},
    {"steps": 8, "width": 256, "height": 256},
    {"steps": 4, "width": 320, "height": 256, "batch_size": 2},
    {"steps": 4, "width": 384, "height": 384},
    {"steps": 3, "width": 256, "height": 256, "hr_scale": 1.5, "hr_second_pass_steps": 2},
    {"steps": 6, "width": 320, "height": 320},
]


def measure(studio, user, model: str, calibration: list, mixed: list) -> dict:
    from sfumato.engine.request import GenerationRequest
    from sfumato.jobs.submit import submit
    from sfumato.store.tables import Job

    def run(fields: dict) -> Job:
        job = submit(studio, user, GenerationRequest(PROMPT, seed=1, **fields), model=model)
        wait(studio, job.id)
        with studio.db.session() as session:
            done = session.get(Job, job.id)
            session.expunge(done)
        return done

    unknown = 0
    for fields in calibration:
        unknown += run(fields).estimate is None  # nothing known before the first finished
    rows = []
    for fields in mixed:
        done = run(fields)
        guess, t = done.estimate, done.timings
        measured = t["load_s"] + t["engine_s"] + t["save_s"]
        rows.append({"job": fields, "estimate_s": guess["seconds"], "low": guess["low"],
                     "high": guess["high"], "measured_s": round(measured, 3)})  # fmt: skip
        print(f"{model} {json.dumps(fields):90} estimated {guess['seconds']:7.2f} s "
              f"({guess['low']:.2f}-{guess['high']:.2f}), took {measured:7.2f} s")  # fmt: skip
    errors = [abs(r["estimate_s"] - r["measured_s"]) for r in rows]
    shares = [e / r["measured_s"] for e, r in zip(errors, rows, strict=True)]
    inside = sum(r["low"] <= r["measured_s"] <= r["high"] for r in rows)
    figures = {
        "calibration_jobs": len(calibration),
        "calibration_without_estimate": unknown,
        "jobs": rows,
        "median_abs_error_s": round(statistics.median(errors), 3),
        "median_abs_error_share": round(statistics.median(shares), 3),
        "inside_range": inside,
    }
    print(f"{model}: median absolute error {figures['median_abs_error_s']:.2f} s "
          f"({100 * figures['median_abs_error_share']:.0f} % of the measured time) over "
          f"{len(rows)} jobs; {inside} inside their stated range; {unknown} calibration "
          "job(s) queued before anything was known")  # fmt: skip
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calibration", type=int, default=len(CALIBRATION))
    parser.add_argument("--jobs", type=int, default=len(MIXED))
    parser.add_argument("--sd15", action="store_true", help="also the full-size SD 1.5")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "estimates.json"
    )
    args = parser.parse_args()

    results = {}
    with demo_studio() as (studio, user):
        demo = measure(studio, user, DEMO, CALIBRATION[: args.calibration], MIXED[: args.jobs])
        results["demo"] = demo
    if args.sd15:
        from tests.fixtures.full_size import write_full_size_checkpoint

        with tempfile.TemporaryDirectory() as folder:
            models = Path(folder)
            write_full_size_checkpoint("sd15", models / f"{SD15}.safetensors")
            with demo_studio(models) as (studio, user):
                results["sd15"] = measure(studio, user, SD15, SD15_CALIBRATION, SD15_MIXED)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
