"""Lineage and version from the names people give model files.

Model sites name versions in the file: ``juggernautXL_v10``, ``dreamshaper_8``, ``anime-5``,
``sd_xl_base_1.0``. Reading them lets the catalog group versions of one model and show the
newest first, for files that came without a card. A card's ``lineage``/``version`` always win.
"""

from __future__ import annotations

import re

# words that say how a file was saved, not which model or version it is
_NOISE = re.compile(
    r"[-_. ]*(pruned|emaonly|ema|fp16|fp32|bf16|full|fix(ed)?|baked[-_]?vae|no[-_]?vae|vae|"
    r"safetensors|ckpt|\d+[-_]?steps?)(?=$|[-_. ])",
    re.IGNORECASE,
)
_INPAINTING = re.compile(r"[-_. ]*inpaint(ing)?(?=$|[-_. ])", re.IGNORECASE)
# a version at the end, after a separator or a "v": "_v10", "-5", "V60", " 1.0", "_v2-1", "v51b";
# not digits glued to a word ("sd15", "photo2"), which are part of the name
_VERSION = re.compile(r"(?:[-_. ][vV]?|(?<=[a-z])[vV])(\d+(?:[._-]\d+)*[a-z]?)$")


def normalise(name: str) -> str:
    """How names are compared: case and separators do not matter."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def infer_lineage(stem: str) -> tuple[str, str | None]:
    """(lineage, version or None) from a file or folder name."""
    name = _NOISE.sub("", stem)
    inpainting = bool(_INPAINTING.search(name))
    name = _INPAINTING.sub("", name)
    version = None
    if match := _VERSION.search(name):
        version = match.group(1).replace("_", ".").replace("-", ".")
        name = name[: match.start()]
    lineage = name.strip("-_. ") or stem
    if inpainting:
        lineage += "-inpainting"
    return lineage, version


def version_key(version: str | None) -> tuple:
    """Natural order of version labels: 9 < 10, 1.5 < 2, v51 < v60; none sorts first."""
    if not version:
        return ()
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.findall(r"\d+|[a-z]+", version.lower().lstrip("v"))
    )
