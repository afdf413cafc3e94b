"""How fast the page's token counter answers: a 300-token prompt read as the engine encodes it.

Two figures, the median of many runs each: the engine's reading alone (``tokens.read_prompt``:
the engine's own chunks, words and weights), and a whole ``POST /v1/prompts/tokenize`` through
the real app in process (personal mode, the demo model, its catalog scanned once before), the
negative prompt read too. Also the longest prompt a request may send (``MAX_PROMPT_CHARS``).

    python benchmarks/tokenize_speed.py [--runs 200] [--out figures.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from fastapi.testclient import TestClient  # noqa: E402

from sfumato.api.app import create_app  # noqa: E402
from sfumato.engine import tokens  # noqa: E402
from sfumato.engine.parameters import MAX_PROMPT_CHARS  # noqa: E402
from sfumato.engine.tokenizers import clip_tokenizer  # noqa: E402
from sfumato.studio import Studio, StudioConfig  # noqa: E402

PHRASES = [
    "masterpiece",
    "(best quality:1.2)",
    "a photorealistic lighthouse on a cliff at dusk",
    "[blurry]",
    "dramatic clouds",
    "volumetric light",
    "oil painting by an old master",
    "((intricate details))",
]
NEGATIVE = "lowres, bad anatomy, (worst quality:1.4), blurry, watermark, text"


def prompt_of(n_tokens: int) -> str:
    """A prompt of A1111's kind (weights, commas, brackets) of ``n_tokens`` text tokens."""
    parts: list[str] = []
    while tokens.read_prompt(", ".join(parts)).text_tokens < n_tokens:
        parts.append(PHRASES[len(parts) % len(PHRASES)])
    return ", ".join(parts)


def median_ms(call, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    prompt = prompt_of(300)
    longest = (prompt + ", ") * (MAX_PROMPT_CHARS // len(prompt) + 1)
    longest = longest[:MAX_PROMPT_CHARS]
    tokenizer = clip_tokenizer()
    figures: dict = {"prompt_tokens": tokens.read_prompt(prompt).text_tokens}
    figures["engine_ms"] = median_ms(lambda: tokens.read_prompt(prompt, tokenizer), args.runs)
    with tempfile.TemporaryDirectory() as data:
        config = StudioConfig(
            data_dir=Path(data), models_dirs=[Path(data) / "models"], personal=True,
            run_worker=False,
        )  # fmt: skip
        app = create_app(Studio(config))
        with TestClient(app, base_url="http://127.0.0.1:8000") as client:

            def ask(text: str):
                answer = client.post(
                    "/v1/prompts/tokenize", json={"prompt": text, "negative_prompt": NEGATIVE}
                )
                assert answer.status_code == 200, answer.text

            ask(prompt)  # the catalog's first scan, the first import of everything
            figures["route_ms"] = median_ms(lambda: ask(prompt), args.runs)
            longest_runs = max(1, args.runs // 10)
            figures["longest_chars"] = len(longest)
            figures["longest_tokens"] = tokens.read_prompt(longest).text_tokens
            figures["longest_route_ms"] = median_ms(lambda: ask(longest), longest_runs)
    print(
        f"A {figures['prompt_tokens']}-token prompt: read in {figures['engine_ms']:.2f} ms "
        f"(median of {args.runs}); POST /v1/prompts/tokenize answers in "
        f"{figures['route_ms']:.2f} ms with its negative prompt."
    )
    print(
        f"The longest prompt a request may send ({figures['longest_chars']} characters, "
        f"{figures['longest_tokens']} tokens): {figures['longest_route_ms']:.1f} ms."
    )
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
