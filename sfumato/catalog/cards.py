"""Model cards: a small, human-editable TOML file beside a model's weights.

``sfumato.toml`` inside a diffusers folder, ``NAME.sfumato.toml`` next to a single file. A card
says what a model is and how best to run it; its ``[defaults]`` override the family defaults.

    name = "dreamshaper-8"
    family = "sd15"
    description = "..."
    [defaults]
    steps = 30
    sampler = "dpmpp_2m_karras"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import tomli_w

from sfumato.engine.checkpoint import ModelSource, inspect_model
from sfumato.engine.families import Defaults
from sfumato.errors import SfumatoError

DEFAULT_FIELDS = {f.name for f in fields(Defaults)}


@dataclass
class Card:
    name: str | None = None
    family: str | None = None
    description: str = ""
    defaults: dict = field(default_factory=dict)
    keywords: dict[str, int] = field(default_factory=dict)  # word -> frequency in training
    extra: dict = field(default_factory=dict)  # everything else the file holds, kept as is


def card_path(model: Path) -> Path:
    return model / "sfumato.toml" if model.is_dir() else model.with_suffix(".sfumato.toml")


def read_card(model: Path) -> Card | None:
    path = card_path(model)
    if not path.is_file():
        return None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SfumatoError(f"The model card {path} cannot be read: {e}.") from None
    unknown = set(data.get("defaults", {})) - DEFAULT_FIELDS
    if unknown:
        raise SfumatoError(
            f"The model card {path} has unknown [defaults] {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(DEFAULT_FIELDS))}."
        )
    known = {"name", "family", "description", "defaults", "keywords"}
    return Card(
        name=data.get("name"),
        family=data.get("family"),
        description=data.get("description", ""),
        defaults=data.get("defaults", {}),
        keywords=data.get("keywords", {}),
        extra={k: v for k, v in data.items() if k not in known},
    )


def write_card(model: Path, card: Card) -> Path:
    data = {"name": card.name, "family": card.family, "description": card.description}
    data = {k: v for k, v in data.items() if v is not None} | card.extra
    data["defaults"] = card.defaults
    data["keywords"] = card.keywords
    path = card_path(model)
    path.write_text(tomli_w.dumps(data, multiline_strings=True), encoding="utf-8")
    return path


def apply_card(source: ModelSource, card: Card | None) -> ModelSource:
    """The model with its card's name, and its recommended settings over the family's."""
    if card is None:
        return source
    return replace(
        source,
        label=card.name or source.label,
        defaults=replace(source.effective_defaults, **card.defaults),
    )


def describe_model(
    path: Path, family_hint: str | None = None, lightning: Path | None = None
) -> ModelSource:
    """What the model at ``path`` is (from its files), with its card's name and settings."""
    return apply_card(inspect_model(path, family_hint, lightning), read_card(path))
