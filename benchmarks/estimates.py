"""How good the time estimate is (issue 28, part 3): on the demo model, a few calibration jobs,
then a mixed set of jobs (steps, batch, size, the hires fix), each estimated just before it
is queued and then measured (load, engine and saving, from the job's timings); the median
absolute error, in seconds and as a share of the measured time. Jobs run one at a time, so
the queue adds nothing.

    python benchmarks/estimates.py [--calibration 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calibration", type=int, default=len(CALIBRATION))
    parser.add_argument("--jobs", type=int, default=len(MIXED))
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "estimates.json"
    )
    args = parser.parse_args()

    from sfumato.engine.request import GenerationRequest
    from sfumato.jobs.estimates import estimate
    from sfumato.jobs.submit import plan_job, submit
    from sfumato.store.tables import Job

    def run(fields: dict) -> Job:
        job = submit(studio, user, GenerationRequest(PROMPT, seed=1, **fields), model=DEMO)
        wait(studio, job.id)
        with studio.db.session() as session:
            done = session.get(Job, job.id)
            session.expunge(done)
        return done

    rows = []
    with demo_studio() as (studio, user):
        for fields in CALIBRATION[: args.calibration]:
            run(fields)
        for fields in MIXED[: args.jobs]:
            planned = plan_job(studio, user, GenerationRequest(PROMPT, seed=1, **fields), DEMO)
            guess = estimate(studio, planned)
            t = run(fields).timings
            measured = t["load_s"] + t["engine_s"] + t["save_s"]
            rows.append({"job": fields, "estimate_s": guess.seconds, "low": guess.low,
                         "high": guess.high, "measured_s": round(measured, 3)})  # fmt: skip
            print(f"{json.dumps(fields):75} estimated {guess.seconds:6.2f} s "
                  f"({guess.low:.2f}-{guess.high:.2f}), took {measured:6.2f} s")  # fmt: skip
    errors = [abs(r["estimate_s"] - r["measured_s"]) for r in rows]
    shares = [e / r["measured_s"] for e, r in zip(errors, rows, strict=True)]
    inside = sum(r["low"] <= r["measured_s"] <= r["high"] for r in rows)
    figures = {
        "calibration_jobs": args.calibration,
        "jobs": rows,
        "median_abs_error_s": round(statistics.median(errors), 3),
        "median_abs_error_share": round(statistics.median(shares), 3),
        "inside_range": inside,
    }
    print(f"median absolute error {figures['median_abs_error_s']:.2f} s "
          f"({100 * figures['median_abs_error_share']:.0f} % of the measured time) over "
          f"{len(rows)} jobs; {inside} inside their stated range")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
