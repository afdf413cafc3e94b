"""Model cards: a small, human-editable TOML file beside a model's weights.

``sfumato.toml`` inside a diffusers folder, ``NAME.sfumato.toml`` next to a single file. A card
says what a model is and how best to run it; its ``[defaults]`` override the family defaults.

    name = "DreamShaper"
    family = "sd15"
    category = "artistic"
    lineage = "dreamshaper"
    version = "8"
    description = "..."
    trigger_words = ["dreamshaper style"]
    source_url = "https://..."
    license = "creativeml-openrail-m"
    deprecated = false
    [defaults]
    steps = 30
    sampler = "dpmpp_2m_karras"
    clip_skip = 2
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import tomli_w

from sfumato.engine.checkpoint import ModelSource, inspect_model
from sfumato.engine.families import Defaults
from sfumato.engine.preview import LatentPreview
from sfumato.errors import SfumatoError

DEFAULT_FIELDS = {f.name for f in fields(Defaults)}  # the recommended settings a card may give
TEXT_FIELDS = (
    "name",
    "family",
    "category",
    "lineage",
    "version",
    "description",
    "source_url",
    "license",
    "preview",
)
FLAGS = ("deprecated", "hidden", "inferred")
LIVE_PREVIEW = "live_preview"  # a table: latent-to-RGB factors for a model with its own VAE


@dataclass
class Card:
    name: str | None = None  # display name; also a name the model can be asked for by
    family: str | None = None
    category: str | None = None  # see categories.toml; any word is accepted
    lineage: str | None = None  # which model this is a version of
    version: str | None = None
    description: str = ""
    source_url: str | None = None
    license: str | None = None
    preview: str | None = None  # a picture's path, relative to the card
    defaults: dict = field(default_factory=dict)
    trigger_words: list[str] = field(default_factory=list)
    keywords: dict[str, int] = field(default_factory=dict)  # word -> frequency in training
    deprecated: bool = False  # kept, listed with --all-versions, never picked as the newest
    hidden: bool = False  # kept, listed only with --all-versions
    inferred: bool = False  # written by sfumato from the files, not by a person
    extra: dict = field(default_factory=dict)  # everything else the file holds, kept as is


def card_path(model: Path) -> Path:
    return model / "sfumato.toml" if model.is_dir() else model.with_suffix(".sfumato.toml")


def _check(path: Path, data: dict) -> None:
    def bad(message: str):
        return SfumatoError(f"The model card {path} {message}.")

    unknown = set(data.get("defaults", {})) - DEFAULT_FIELDS
    if unknown:
        raise bad(
            f"has unknown [defaults] {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(DEFAULT_FIELDS))}"
        )
    for name in TEXT_FIELDS:
        if name in data and not isinstance(data[name], str | int | float):
            raise bad(f"has {name} = {data[name]!r}; it should be text")
    for name in FLAGS:
        if name in data and not isinstance(data[name], bool):
            raise bad(f"has {name} = {data[name]!r}; it should be true or false")
    if LIVE_PREVIEW in data:
        try:
            LatentPreview.from_card(data[LIVE_PREVIEW])
        except (KeyError, TypeError, ValueError) as e:
            raise bad(f"has a [{LIVE_PREVIEW}] table sfumato cannot use ({e})") from None
    words = data.get("trigger_words", [])
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise bad('has trigger_words that are not a list of texts, like ["word", "other"]')


def read_card(model: Path) -> Card | None:
    """The card of the model at ``model``, or None; a broken card is an error that says where."""
    path = card_path(model)
    if not path.is_file():
        return None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SfumatoError(f"The model card {path} cannot be read: {e}.") from None
    _check(path, data)
    known = {f.name for f in fields(Card)} - {"extra"}
    values = {k: v for k, v in data.items() if k in known}
    for name in ("version", "lineage", "name"):  # version = 9 is as good as version = "9"
        if name in values:
            values[name] = str(values[name])
    return Card(**values, extra={k: v for k, v in data.items() if k not in known})


def write_card(model: Path, card: Card) -> Path:
    data = {}
    for f in fields(Card):
        value = getattr(card, f.name)
        if f.name in ("extra", "defaults", "keywords") or value in (None, [], ""):
            continue
        if f.name in FLAGS and not value:
            continue
        data[f.name] = value
    data |= card.extra
    data["defaults"] = card.defaults
    data["keywords"] = card.keywords
    path = card_path(model)
    path.write_text(tomli_w.dumps(data, multiline_strings=True), encoding="utf-8")
    return path


def apply_card(source: ModelSource, card: Card | None) -> ModelSource:
    """The model with its card's name, and its recommended settings over the family's."""
    if card is None:
        return source
    preview = card.extra.get(LIVE_PREVIEW)
    return replace(
        source,
        label=card.name or source.label,
        defaults=replace(source.effective_defaults, **card.defaults),
        preview=LatentPreview.from_card(preview) if preview else source.preview,
    )


def describe_model(
    path: Path, family_hint: str | None = None, lightning: Path | None = None
) -> ModelSource:
    """What the model at ``path`` is (from its files), with its card's name and settings."""
    return apply_card(inspect_model(path, family_hint, lightning), read_card(path))
