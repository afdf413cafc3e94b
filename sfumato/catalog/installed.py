"""Find installed models by name in the models folder.

A first, plain version: model files and diffusers folders directly in ``models/`` (and in an
A1111-style ``models/Stable-diffusion/``), named by file stem or folder name, and the bundled
demo model, which is the default until the user adds a model of their own.
"""

from __future__ import annotations

from pathlib import Path

from sfumato import demo
from sfumato.engine.checkpoint import SINGLE_FILE_SUFFIXES
from sfumato.errors import ModelNotFound

SUBFOLDERS = ("", "Stable-diffusion")


def installed_models(models_dir: Path) -> dict[str, Path]:
    """Name -> path of every model found, sorted by name."""
    found: dict[str, Path] = {}
    for sub in SUBFOLDERS:
        folder = models_dir / sub
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            if entry.is_file() and entry.suffix.lower() in SINGLE_FILE_SUFFIXES:
                found.setdefault(entry.stem, entry)
            elif entry.is_dir() and (entry / "model_index.json").is_file():
                found.setdefault(entry.name, entry)
    return dict(sorted(found.items()))


def how_to_add(models_dir: Path) -> str:
    return (
        f"Put a Stable Diffusion checkpoint (.safetensors) or a diffusers model folder in "
        f"{models_dir}, or pass --model PATH."
    )


def bundled_models() -> dict[str, Path]:
    return {demo.NAME: demo.WEIGHTS} if (demo.WEIGHTS / "model_index.json").is_file() else {}


def resolve_model(name: str | None, models_dir: Path) -> Path:
    """The model a user means: a path, a model's name, else the only model the user installed,
    else the bundled demo model."""
    models = installed_models(models_dir)
    if name is None:
        if len(models) == 1:
            return next(iter(models.values()))
        if not models:
            if bundled := bundled_models():
                return next(iter(bundled.values()))
            raise ModelNotFound(f"No model is installed. {how_to_add(models_dir)}")
        raise ModelNotFound(
            f"Several models are installed; choose one with --model: {', '.join(models)}."
        )
    path = Path(name).expanduser()
    if path.exists():
        return path
    models = models | {k: v for k, v in bundled_models().items() if k not in models}
    if name in models:
        return models[name]
    matches = [n for n in models if n.lower() == name.lower()]
    if len(matches) == 1:
        return models[matches[0]]
    listing = f"Installed: {', '.join(models)}." if models else "No model is installed."
    raise ModelNotFound(f"No model named '{name}'. {listing} {how_to_add(models_dir)}")
