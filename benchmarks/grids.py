"""What a comparison grid costs beside its cells made one by one.

A grid of four cells (`seed=1-4` across, the demo model at 64x64) queued as one job with
`submit_grid`, against the same four requests queued one after the other with `submit`,
each waited for until its job is finished, in turns (the machine's drift falls on both
alike), after a warm-up of each. The grid's time includes its grid picture. Medians, and the
grid's extra time as a share of the cells' (the issue's bar: 5 %).

    python benchmarks/grids.py [--rounds 9] [--steps 12] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from sfumato.engine.request import GenerationRequest  # noqa: E402
from sfumato.jobs.grids import submit_grid  # noqa: E402
from sfumato.jobs.queue import FINISHED  # noqa: E402
from sfumato.jobs.submit import submit  # noqa: E402
from sfumato.store.tables import Job, User  # noqa: E402
from sfumato.studio import Studio, StudioConfig  # noqa: E402

PROMPT = "a small red circle at the top on a blue background"
SEEDS = (1, 2, 3, 4)
DEMO = "sfumato-demo"


def _wait(studio: Studio, job_id: str) -> None:
    while True:
        with studio.db.session() as session:
            job = session.get(Job, job_id)
            if job.status in FINISHED:
                if job.status != "succeeded":
                    raise SystemExit(f"job {job_id} {job.status}: {job.error_message}")
                return
        time.sleep(0.002)


def measure(rounds: int, steps: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        studio = Studio(
            StudioConfig(data_dir=root / "data", models_dirs=[root / "models"], personal=True)
        )
        studio.start()
        try:
            with studio.db.session() as session:
                user = session.get(User, studio.personal_user_id)
                session.expunge(user)
            base = GenerationRequest(PROMPT, width=64, height=64, steps=steps, seed=SEEDS[0])

            def one_by_one() -> None:
                for seed in SEEDS:
                    _wait(studio, submit(studio, user, replace(base, seed=seed), DEMO).id)

            def as_grid() -> None:
                axis = f"seed={SEEDS[0]}-{SEEDS[-1]}"
                _wait(studio, submit_grid(studio, user, base, [axis, None, None], DEMO).id)

            ways = {"cells": one_by_one, "grid": as_grid}
            times: dict[str, list[float]] = {name: [] for name in ways}
            for run in ways.values():  # warm-up
                run()
            for _ in range(rounds):
                for name, run in ways.items():
                    started = time.perf_counter()
                    run()
                    times[name].append(time.perf_counter() - started)
        finally:
            studio.stop()
    cells, grid = statistics.median(times["cells"]), statistics.median(times["grid"])
    return {
        "median_s": {"cells": round(cells, 4), "grid": round(grid, 4)},
        "grid_extra_share": round(grid / cells - 1, 4),
        "times_s": times,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    figures = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "rounds": args.rounds,
        "steps": args.steps,
        "cells": len(SEEDS),
    } | measure(args.rounds, args.steps)
    print(
        f"{len(SEEDS)} cells, median of {args.rounds}: one by one "
        f"{figures['median_s']['cells']:.3f} s, as a grid {figures['median_s']['grid']:.3f} s "
        f"({figures['grid_extra_share']:+.1%} for the grid)"
    )
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
