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
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from benchmarks.in_studio import DEMO, demo_studio, in_turns, wait  # noqa: E402
from sfumato.engine.request import GenerationRequest  # noqa: E402
from sfumato.jobs.grids import submit_grid  # noqa: E402
from sfumato.jobs.submit import submit  # noqa: E402

PROMPT = "a small red circle at the top on a blue background"
SEEDS = (1, 2, 3, 4)


def measure(rounds: int, steps: int) -> dict:
    with demo_studio() as (studio, user):
        base = GenerationRequest(PROMPT, width=64, height=64, steps=steps, seed=SEEDS[0])

        def one_by_one() -> None:
            for seed in SEEDS:
                wait(studio, submit(studio, user, replace(base, seed=seed), DEMO).id)

        def as_grid() -> None:
            axis = f"seed={SEEDS[0]}-{SEEDS[-1]}"
            wait(studio, submit_grid(studio, user, base, [axis, None, None], DEMO).id)

        figures = in_turns({"cells": one_by_one, "grid": as_grid}, rounds)
    medians = figures["median_s"]
    return figures | {"grid_extra_share": round(medians["grid"] / medians["cells"] - 1, 4)}


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
