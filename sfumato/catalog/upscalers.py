"""The upscalers a user can name: the resizes every install has (Lanczos, Nearest) and the
upscaler models in the models folders (``ESRGAN/``, ``RealESRGAN/``, ``SwinIR/``, ``DAT/``,
``HAT/``: A1111's; ``upscale_models/``: ComfyUI's), by file name as A1111 lists them
("4x-UltraSharp"), each with its architecture and scale, read from its weights."""

from __future__ import annotations

from dataclasses import dataclass

from sfumato.catalog.naming import normalise
from sfumato.catalog.scan import UPSCALER, Catalog, Entry, Scan
from sfumato.engine.hires import built_in
from sfumato.engine.request import GenerationSettings
from sfumato.errors import InvalidRequest, ModelNotFound
from sfumato.upscale import models
from sfumato.upscale.run import RESIZES, Upscaler


@dataclass
class UpscalerListing:
    name: str
    kind: str  # "resize" or "model"
    architecture: str | None = None
    scale: int | None = None  # a model's own factor; a resize takes any
    broken: str | None = None  # why a model file cannot be used


def _name(entry: Entry) -> str:
    return entry.path.stem


def _model_listing(entry: Entry) -> UpscalerListing:
    if entry.broken:
        return UpscalerListing(_name(entry), "model", broken=entry.broken)
    try:
        info = models.describe(entry.path)
    except InvalidRequest as e:
        return UpscalerListing(_name(entry), "model", broken=e.message)
    return UpscalerListing(_name(entry), "model", info.architecture, info.scale)


def listing(catalog: Catalog) -> list[UpscalerListing]:
    """Every upscaler: the resizes first, then the models by name. Describing a model loads
    its weights once per version of the file (``models.describe`` keeps what it found)."""
    resizes = [UpscalerListing(name, "resize") for name in RESIZES if name != "None"]
    found = sorted(catalog.of_kind(UPSCALER), key=lambda e: normalise(_name(e)))
    return resizes + [_model_listing(e) for e in found]


def model_names(catalog: Catalog) -> tuple[str, ...]:
    """The names of the upscaler model files (without reading them: a hires fix's choices)."""
    return tuple(_name(e) for e in catalog.of_kind(UPSCALER) if not e.broken)


def hires_upscaler(settings: GenerationSettings, scan: Scan) -> Upscaler | None:
    """The upscaler model a hires fix runs with (None for A1111's own: latent, Lanczos, ...);
    the catalog is scanned only then, not for every job."""
    if not settings.hires or built_in(settings.hr_upscaler):
        return None
    return find_upscaler(settings.hr_upscaler, scan())


def find_upscaler(name: str | None, catalog: Catalog) -> Upscaler:
    """The upscaler ``name`` means (any case; None: Lanczos); the choices when none is."""
    if name is None or not name.strip():
        return Upscaler("Lanczos")
    wanted = normalise(name)
    for resize in RESIZES:
        if normalise(resize) == wanted:
            return Upscaler(resize)
    entries = catalog.of_kind(UPSCALER)
    matches = [e for e in entries if normalise(_name(e)) == wanted] or [
        e for e in entries if normalise(_name(e)).startswith(wanted)
    ]
    if len(matches) == 1:
        entry = matches[0]
        if entry.broken:
            raise InvalidRequest(f"The upscaler {_name(entry)} cannot be used: {entry.broken}")
        info = models.describe(entry.path)  # a sentence when it is no upscaler
        return Upscaler(_name(entry), entry.path, info.scale)
    if len(matches) > 1:
        names = ", ".join(_name(e) for e in matches)
        raise ModelNotFound(f"'{name}' could mean several upscalers: {names}. Which one?")
    usable = [
        f"{x.name} ({x.scale}x)" if x.scale else x.name for x in listing(catalog) if not x.broken
    ]
    raise ModelNotFound(f"No upscaler named '{name}'. Choose one of: {', '.join(usable)}.")
