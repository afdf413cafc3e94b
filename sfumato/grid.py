"""X/Y/Z comparison grids, as A1111's "X/Y/Z plot" makes them: up to three axes over the
settings, every other setting (the seed included) fixed, so the only difference between two
cells is the axis; one grid picture with readable labels (one grid per Z value), and each
cell as a picture of its own.

An axis is ``name=values``: ``guidance=3,5,7``, ``sampler=Euler,DPM++ 2M``,
``steps=10-30 (+10)`` (A1111's ranges: ``1-5``, ``1-10 (+2)``, ``10-20 [5]`` for five evenly
spaced values), ``model=v9,v10``, ``size=512x512,768x512``, ``lora:NAME=0,0.5,1`` (that
LoRA's weight), and ``prompt=red,green,blue``: A1111's "Prompt S/R", where the first value is
searched in the prompt and each value takes its place (synonyms side by side). A1111's prompt
matrix (``a castle|at night|in fog``: every combination of the optional parts) makes its
own two axes (``matrix_axes``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from itertools import product

from PIL import Image, ImageDraw, ImageFont

from sfumato.engine.parameters import BY_NAME
from sfumato.engine.request import GenerationRequest
from sfumato.errors import InvalidRequest

MAX_CELLS = 100  # the command line's limit: a grid of 10x10 is already a long wait
NUMBERS = {"seed": int, "steps": int, "guidance": float, "clip_skip": int}
WORDS = ("sampler", "model", "prompt", "negative_prompt", "size")
ALIASES = {"cfg": "guidance", "cfg_scale": "guidance", "prompt_sr": "prompt", "checkpoint": "model"}
_RANGE = re.compile(
    r"^\s*(-?[\d.]+)\s*-\s*(-?[\d.]+)\s*(?:\(\s*\+\s*([\d.]+)\s*\)|\[\s*(\d+)\s*\])?\s*$"
)


@dataclass(frozen=True)
class Axis:
    name: str  # a request field, "model", "size", "prompt" (S/R) or "lora:NAME"
    values: tuple  # as the cells take them
    labels: tuple[str, ...]  # as the grid writes them


@dataclass(frozen=True)
class Cell:
    position: tuple[int, int, int]  # x, y, z indices
    request: GenerationRequest
    model: str | None


def parse_axis(text: str) -> Axis:
    name, sep, raw = text.partition("=")
    name = ALIASES.get(name.strip().lower(), name.strip().lower())
    if not sep or not raw.strip():
        raise InvalidRequest(
            f"An axis is name=values, e.g. guidance=3,5,7 or sampler=Euler,DPM++ 2M; got "
            f"{text[:60]!r}."
        )
    if name.startswith("lora:") and len(name) > 5:
        values = _numbers(raw, float)
        return Axis(f"lora:{text.partition('=')[0].strip()[5:]}", tuple(values), _labels(values))
    if name in NUMBERS:
        values = _numbers(raw, NUMBERS[name])
        for value in values:
            BY_NAME[name].check(value)
        return Axis(name, tuple(values), _labels(values))
    if name in WORDS:
        values = [v.strip() for v in raw.split(",") if v.strip()]
        if name == "size":
            values = [_size(v) for v in values]
            return Axis(name, tuple(values), tuple(f"{w}x{h}" for w, h in values))
        if not values:
            raise InvalidRequest(f"The axis {name} has no values.")
        return Axis(name, tuple(values), tuple(values))
    known = ", ".join([*NUMBERS, *WORDS, "lora:NAME"])
    raise InvalidRequest(f"Unknown axis {name[:40]!r}. Axes: {known}.")


def _numbers(raw: str, kind: type) -> list:
    """A1111's lists and ranges: ``1,2,3``, ``1-5``, ``1-10 (+2)``, ``10-20 [5]``."""
    values: list = []
    for part in raw.split(","):
        if not part.strip():
            continue
        match = _RANGE.match(part)
        try:
            if match and not (part.strip().startswith("-") and part.count("-") == 1):
                start, end = float(match.group(1)), float(match.group(2))
                if match.group(4):  # [count]: evenly spaced, ends included
                    count = int(match.group(4))
                    if count < 1 or count > MAX_CELLS:
                        raise InvalidRequest(f"A range's count is 1 to {MAX_CELLS}.")
                    step = (end - start) / (count - 1) if count > 1 else 0
                    values += [start + i * step for i in range(count)]
                else:
                    step = float(match.group(3) or 1)
                    if step <= 0 or (end - start) / step > MAX_CELLS:
                        raise InvalidRequest(f"The range {part.strip()!r} is too long or empty.")
                    n = int((end - start) / step + 1e-9)
                    values += [start + i * step for i in range(n + 1)]
            else:
                values.append(float(part))
        except ValueError:
            raise InvalidRequest(f"{part.strip()[:40]!r} is not a number or a range.") from None
    if not values:
        raise InvalidRequest("An axis needs at least one value.")
    if kind is int:
        return [int(round(v)) for v in values]
    return [round(v, 6) for v in values]


def _labels(values) -> tuple[str, ...]:
    return tuple(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def _size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[x×]\s*(\d+)\s*", text)
    if not match:
        raise InvalidRequest(f"A size is WIDTHxHEIGHT, e.g. 512x768; got {text[:30]!r}.")
    width, height = int(match.group(1)), int(match.group(2))
    BY_NAME["width"].check(width)
    BY_NAME["height"].check(height)
    return width, height


def grid_axes(
    texts: list[str | None], prompt: str, matrix: bool = False
) -> tuple[str, list[Axis | None]]:
    """The prompt every cell starts from and the axes (x, y, z) from their texts; with
    ``matrix``, x and y are the prompt matrix's (only z may be given)."""
    parsed = [parse_axis(text) if text else None for text in (list(texts) + [None] * 3)[:3]]
    if matrix:
        if parsed[0] or parsed[1]:
            raise InvalidRequest("A prompt matrix makes the x and y axes itself: give only z.")
        base, (x, *y) = matrix_axes(prompt)
        return base, [x, y[0] if y else None, parsed[2]]
    if not any(parsed):
        raise InvalidRequest("A grid needs at least one axis: x, y or z.")
    return prompt, parsed


def matrix_axes(prompt: str) -> tuple[str, list[Axis]]:
    """A1111's prompt matrix: ``a castle|at night|in fog`` is the base ``a castle`` and every
    combination of the optional parts, the first half of them across, the rest down: the
    base prompt and the two axes."""
    base, *parts = [part.strip() for part in prompt.split("|")]
    parts = [part for part in parts if part]
    if not parts:
        raise InvalidRequest(
            "A prompt matrix needs optional parts after the base: a castle|at night|in fog."
        )
    if len(parts) > 6:
        raise InvalidRequest("A prompt matrix takes at most 6 optional parts (64 cells).")
    half = (len(parts) + 1) // 2
    axes = [_subsets(parts[:half])]
    if parts[half:]:
        axes.append(_subsets(parts[half:]))
    return base, axes


def _subsets(parts: list[str]) -> Axis:
    values = [
        tuple(part for bit, part in enumerate(parts) if mask >> bit & 1)
        for mask in range(2 ** len(parts))
    ]
    labels = [" + ".join(value) if value else "-" for value in values]
    return Axis("matrix", tuple(values), tuple(labels))


def cells(base: GenerationRequest, model: str | None, axes: list[Axis | None]) -> list[Cell]:
    """Every cell of the grid: the base request with each axis's value, nothing else changed
    (the base must fix the seed, so that every cell shares it)."""
    x, y, z = (axes + [None, None, None])[:3]
    for axis in (x, y, z):
        if axis is not None and axis.name == "prompt" and axis.values[0] not in base.prompt:
            raise InvalidRequest(
                f"Prompt S/R searches the prompt for its first value, {axis.values[0]!r}, "
                "which the prompt does not hold."
            )
    sizes = [len(a.values) if a else 1 for a in (x, y, z)]
    if sizes[0] * sizes[1] * sizes[2] > MAX_CELLS:
        raise InvalidRequest(
            f"The grid has {sizes[0] * sizes[1] * sizes[2]} cells; at most {MAX_CELLS}."
        )
    out = []
    for position in product(*(range(n) for n in sizes)):
        request, cell_model = replace(base), model
        for axis, index in zip((x, y, z), position, strict=True):
            if axis is not None:
                request, cell_model = _apply(axis, axis.values[index], request, cell_model)
        out.append(Cell(position, request, cell_model))
    return out


def _apply(axis: Axis, value, request: GenerationRequest, model: str | None):
    if axis.name == "model":
        return request, value
    if axis.name == "size":
        return replace(request, width=value[0], height=value[1]), model
    if axis.name == "prompt":
        return replace(request, prompt=request.prompt.replace(axis.values[0], value)), model
    if axis.name == "matrix":  # the parts this cell adds to the base
        return replace(request, prompt=", ".join([request.prompt, *value])), model
    if axis.name == "negative_prompt":
        negative = request.negative_prompt or ""
        return replace(request, negative_prompt=negative.replace(axis.values[0], value)), model
    if axis.name.startswith("lora:"):
        name = axis.name[5:]
        others = [(n, w) for n, w in request.loras if n != name]
        return replace(request, loras=[*others, (name, value)]), model
    return replace(request, **{axis.name: value}), model


@dataclass(frozen=True)
class Layout:
    """Where everything sits in the grid picture."""

    axes: tuple[Axis | None, Axis | None, Axis | None]
    cell: tuple[int, int]
    font: ImageFont.FreeTypeFont
    pad: int
    left: int  # the Y labels' column
    top: int  # the X labels' row
    title: int  # each Z grid's title

    @classmethod
    def of(cls, axes: list[Axis | None], cell: tuple[int, int]) -> Layout:
        x, y, z = (list(axes) + [None, None, None])[:3]
        font = ImageFont.load_default(size=max(12, min(32, cell[1] // 8)))
        pad = int(font.size) // 2
        left = max(int(font.getlength(t)) for t in y.labels) + 2 * pad if y else 0
        top = int(font.size) + 2 * pad if x else 0
        title = int(font.size) + 2 * pad if z else 0
        return cls((x, y, z), cell, font, pad, left, top, title)

    @property
    def counts(self) -> tuple[int, int, int]:
        return tuple(len(a.values) if a else 1 for a in self.axes)

    @property
    def grid_width(self) -> int:
        return self.left + self.counts[0] * self.cell[0]

    def origin(self, i: int, j: int, k: int) -> tuple[int, int]:
        """The top-left corner of cell (i, j, k)."""
        x0 = k * (self.grid_width + 2 * self.pad) + self.left + i * self.cell[0]
        return x0, self.title + self.top + j * self.cell[1]


def compose(
    pictures: dict[tuple[int, int, int], Image.Image], axes: list[Axis | None]
) -> Image.Image:
    """One picture: a grid per Z value, side by side, X labels above, Y labels on the left.
    Cells of several sizes (a size axis) each sit in the top-left of the largest's place."""
    cell = (max(p.width for p in pictures.values()), max(p.height for p in pictures.values()))
    at = Layout.of(axes, cell)
    (x, y, z), (nx, ny, nz) = at.axes, at.counts
    height = at.title + at.top + ny * cell[1]
    sheet = Image.new("RGB", (nz * at.grid_width + (nz - 1) * 2 * at.pad, height), "white")
    draw = ImageDraw.Draw(sheet)
    for k in range(nz):
        x0 = at.origin(0, 0, k)[0]
        if z:
            _label(draw, at.font, f"{z.name}: {z.labels[k]}", (x0, 0, x0 + nx * cell[0], at.title))
        for i in range(nx):
            cx, cy = at.origin(i, 0, k)
            if x:
                _label(draw, at.font, x.labels[i], (cx, at.title, cx + cell[0], cy))
            for j in range(ny):
                cx, cy = at.origin(i, j, k)
                if y and i == 0:
                    _label(draw, at.font, y.labels[j], (cx - at.left, cy, cx, cy + cell[1]))
                if (picture := pictures.get((i, j, k))) is not None:
                    sheet.paste(picture, (cx, cy))  # a cancelled grid's missing cells: white
    return sheet


def _label(draw, font, text: str, box) -> None:
    x0, y0, x1, y1 = box
    width = font.getlength(text)
    draw.text(((x0 + x1 - width) / 2, (y0 + y1 - font.size) / 2), text, fill="black", font=font)
