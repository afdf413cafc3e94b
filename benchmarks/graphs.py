"""What a ComfyUI graph costs beside the same settings through `/v1/generations`, and how long
validating a large graph takes.

1. Picture time: ComfyUI's own API example graph (the demo model, 64 px) and the
   `/v1/generations` request that means the same (same prompt, negative prompt, seed, steps,
   guidance, sampler), each queued in one studio and waited for until its job is finished,
   in turns (the machine's drift falls on both alike), after a warm-up of each. Each graph
   runs with the node cache cleared, so it computes every node as a first graph does.
   Medians, and the graph's extra time as a share of the request's (the issue's bar: 5 %).
2. Validation: a graph of 1,000 nodes (the example, then a chain of image scalers),
   validated again and again; the median in milliseconds.

    python benchmarks/graphs.py [--rounds 15] [--steps 12] [--out results.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from benchmarks.in_studio import DEMO, demo_studio, in_turns, wait  # noqa: E402
from sfumato.engine.request import GenerationRequest  # noqa: E402
from sfumato.jobs.submit import submit  # noqa: E402
from sfumato.workflows import samplers  # noqa: E402
from sfumato.workflows.spec import Choices  # noqa: E402
from sfumato.workflows.submit import submit_graph  # noqa: E402
from sfumato.workflows.validate import validate  # noqa: E402

EXAMPLE = Path(__file__).parents[1] / "tests" / "data" / "comfyui_basic_api_example.json"
PROMPT = "a small red circle at the top on a blue background"
NEGATIVE = "bad hands"
SEED, SIZE, GUIDANCE = 1234, 64, 8.0


def example_graph(steps: int) -> dict:
    graph = json.loads(EXAMPLE.read_text())
    graph["4"]["inputs"]["ckpt_name"] = DEMO
    graph["5"]["inputs"].update(width=SIZE, height=SIZE)
    graph["3"]["inputs"].update(steps=steps, seed=SEED, cfg=GUIDANCE)
    graph["6"]["inputs"]["text"] = PROMPT
    graph["7"]["inputs"]["text"] = NEGATIVE
    return graph


def picture_times(rounds: int, steps: int) -> dict:
    with demo_studio() as (studio, user):
        request = GenerationRequest(
            PROMPT, negative_prompt=NEGATIVE, width=SIZE, height=SIZE, steps=steps,
            guidance=GUIDANCE, sampler="euler", seed=SEED, clip_skip=1,
        )  # fmt: skip

        def through_v1() -> None:
            wait(studio, submit(studio, user, request, model=DEMO).id)

        def through_graph() -> None:
            studio.node_cache.clear()
            wait(studio, submit_graph(studio, user, copy.deepcopy(example_graph(steps))).id)

        figures = in_turns({"v1": through_v1, "graph": through_graph}, rounds)
    medians = figures["median_s"]
    return figures | {"graph_extra_share": round(medians["graph"] / medians["v1"] - 1, 4)}


def validation_ms(nodes: int = 1000, repeats: int = 50) -> dict:
    graph = example_graph(20)
    previous = ["8", 0]
    for i in range(10, 10 + nodes - len(graph)):
        graph[str(i)] = {
            "class_type": "ImageScaleBy",
            "inputs": {"image": previous, "upscale_method": "bilinear", "scale_by": 1.0},
        }
        previous = [str(i), 0]
    graph["9"]["inputs"]["images"] = previous
    choices = Choices(
        checkpoints=[DEMO],
        samplers=list(samplers.SAMPLERS),
        schedulers=list(samplers.SCHEDULERS),
    )
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        validate(graph, choices)
        times.append((time.perf_counter() - started) * 1000)
    return {"nodes": len(graph), "median_ms": round(statistics.median(times), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    figures = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "rounds": args.rounds,
        "steps": args.steps,
        "pictures": picture_times(args.rounds, args.steps),
        "validation": validation_ms(),
    }
    pictures, validation = figures["pictures"], figures["validation"]
    print(
        f"picture, median of {args.rounds}: /v1/generations {pictures['median_s']['v1']:.3f} s, "
        f"graph {pictures['median_s']['graph']:.3f} s "
        f"({pictures['graph_extra_share']:+.1%} for the graph)"
    )
    print(f"validating a {validation['nodes']}-node graph: {validation['median_ms']:.2f} ms")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
