"""Measure how well a demo model follows prompts: generate, analyze, score.

Every picture goes through the same engine path as any SD 1.5 model (load, resolve settings
from the model card, generate); a deterministic analyzer reads each one back.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from sfumato.catalog.cards import describe_model, read_card, write_card
from sfumato.demo.analyze import analyze, score
from sfumato.demo.world import COLOURS, POSITIONS, SHAPES, SIZES, Scene, canonical_prompt
from sfumato.engine.generate import generate
from sfumato.engine.loader import LoadedModel, load_model
from sfumato.engine.request import GenerationRequest, resolve

NEGATIVE_PROMPT = "a circle on a white background"

# The acceptance bar (issue: "A bundled demo model that really follows prompts")
TARGETS = {
    "seen colour": 0.95,
    "seen background": 0.95,
    "seen shape": 0.85,
    "seen all three": 0.80,
    "held-out all three": 0.60,
    "position (stretch)": 0.60,
    "guidance gain (points)": 10.0,
    "negative prompt ratio (at most)": 1 / 3,
}


def eval_scenes(every: int = 1) -> list[Scene]:
    """Every colour x shape x background combination (224, the held-out pairs included), with
    size and position cycled so each appears evenly. ``every`` > 1 takes a spread subset."""
    scenes = []
    i = 0
    for colour in COLOURS:
        for shape in SHAPES:
            for background in COLOURS:
                if background == colour:
                    continue
                scenes.append(
                    Scene(
                        shape,
                        colour,
                        background,
                        SIZES[i % len(SIZES)],
                        POSITIONS[(i // len(SIZES)) % len(POSITIONS)],
                    )
                )
                i += 1
    return scenes[::every]


@dataclass
class Verdict:
    scene: Scene
    prompt: str
    seed: int
    image: Image.Image
    right: dict[str, bool]
    seconds: float


@dataclass
class Report:
    verdicts: list[Verdict]
    rates: dict[str, float] = field(default_factory=dict)

    def passed(self) -> dict[str, bool]:
        out = {}
        for name, target in TARGETS.items():
            if name not in self.rates:
                continue
            value = self.rates[name]
            out[name] = value <= target if "at most" in name else value >= target
        return out


def _run(model: LoadedModel, prompt: str, seed: int, **fields) -> tuple[Image.Image, float]:
    settings, _ = resolve(
        GenerationRequest(prompt, seed=seed, **fields),
        model.source.family,
        model.source.effective_defaults,
    )
    start = time.perf_counter()
    image = generate(model, settings)[0]
    return image, time.perf_counter() - start


def load(folder: Path, device: str | None = "cpu") -> LoadedModel:
    # the model's own quality, on PyTorch; what OpenVINO changes is measured by the quality
    # guard (tests/engine/test_shortcuts.py)
    return load_model(describe_model(folder), device=device, backend="torch")


def evaluate_model(
    model: LoadedModel, every: int = 1, negative_seeds: int = 50, progress=None
) -> Report:
    scenes = eval_scenes(every)
    total = 2 * len(scenes) + 2 * negative_seeds
    done = 0

    def tick():
        nonlocal done
        done += 1
        if progress:
            progress(done, max(total, done))

    verdicts = []
    for seed, scene in enumerate(scenes):
        prompt = canonical_prompt(scene)
        image, seconds = _run(model, prompt, seed)
        verdicts.append(Verdict(scene, prompt, seed, image, score(scene, analyze(image)), seconds))
        tick()
    seen = [v for v in verdicts if not v.scene.held_out]
    held = [v for v in verdicts if v.scene.held_out]

    def rate(group, key):
        return sum(v.right[key] for v in group) / max(1, len(group))

    rates = {
        "seen colour": rate(seen, "colour"),
        "seen background": rate(seen, "background"),
        "seen shape": rate(seen, "shape"),
        "seen all three": rate(seen, "all"),
        "held-out all three": rate(held, "all"),
        "position (stretch)": rate(verdicts, "position"),
        "size": rate(verdicts, "size"),
    }
    # guidance: the same prompts and seeds without classifier-free guidance
    unguided = []
    for v in verdicts:
        image, _ = _run(model, v.prompt, v.seed, guidance=1.0)
        unguided.append(score(v.scene, analyze(image))["all"])
        tick()
    rates["all three at guidance 1"] = sum(unguided) / len(unguided)
    rates["guidance gain (points)"] = 100 * (
        rate(verdicts, "all") - rates["all three at guidance 1"]
    )
    # negative prompt: a circle of no named colour, with and without a colour as the negative
    # prompt. The issue names red; a model that seldom draws red there (this one: 1 in 50)
    # makes a red-only ratio meaningless, so every colour drawn at least 1 time in 10 counts,
    # red reported beside them.
    seeds = [1000 + i for i in range(negative_seeds)]

    def colours(negative: str = "") -> Counter:
        found = Counter()
        for seed in seeds:
            image, _ = _run(model, NEGATIVE_PROMPT, seed, negative_prompt=negative)
            found[analyze(image).colour] += 1
            tick()
        return found

    without = colours()
    common = [c for c, n in without.items() if n >= negative_seeds / 10 and c != "white"]
    total += negative_seeds * len(common)
    kept = {c: colours(c)[c] for c in sorted({*common, "red"})}
    rates["red without negative"] = without["red"] / negative_seeds
    rates["red with negative 'red'"] = kept["red"] / negative_seeds
    rates["negative prompt ratio (at most)"] = sum(kept[c] for c in common) / sum(
        without[c] for c in common
    )
    rates["seconds per picture (median)"] = statistics.median(v.seconds for v in verdicts)
    return Report(verdicts, rates)


def contact_sheet(report: Report, path: Path, columns: int = 14) -> Path:
    """A grid of every picture with its prompt and what the analyzer read, for a person."""
    tile, text_h = 128, 44
    rows = -(-len(report.verdicts) // columns)
    sheet = Image.new("RGB", (columns * (tile + 8) + 8, rows * (tile + text_h) + 8), "#e8e8e8")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=10)
    for i, v in enumerate(report.verdicts):
        x, y = 8 + (i % columns) * (tile + 8), 8 + (i // columns) * (tile + text_h)
        sheet.paste(v.image.resize((tile, tile), Image.NEAREST), (x, y))
        ok = v.right["all"]
        mark = "OK" if ok else "x"
        lines = [
            f"{v.scene.colour} {v.scene.shape}",
            f"on {v.scene.background}",
            f"{mark}{' held-out' if v.scene.held_out else ''}",
        ]
        draw.multiline_text(
            (x, y + tile + 2),
            "\n".join(lines),
            fill="#106010" if ok else "#b01010",
            font=font,
            spacing=1,
        )
    sheet.save(path)
    return path


def as_json(report: Report) -> dict:
    return {
        "rates": report.rates,
        "targets": TARGETS,
        "passed": report.passed(),
        "pictures": [
            {"prompt": v.prompt, "seed": v.seed, "held_out": v.scene.held_out, **v.right}
            for v in report.verdicts
        ],
    }


def record_in_card(folder: Path, report: Report, quick: bool) -> None:
    """Keep the measured figures with the model: its card's [evaluation] table."""
    card = read_card(folder)
    card.extra["evaluation"] = {
        "command": "sfumato demo eval" + (" --quick" if quick else ""),
        "date": date.today().isoformat(),
        "prompts": len(report.verdicts),
        "rates": {name: round(value, 4) for name, value in report.rates.items()},
        "passed": report.passed(),
    }
    write_card(folder, card)
