"""Recognise what a model on disk is, from its files alone, before loading any weights.

A single-file checkpoint is recognised from its tensor names and shapes (read from the
safetensors header, without reading the weights); a diffusers folder from its configs.
"""

from __future__ import annotations

import json
import pickle
import re
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from sfumato.engine.families import SD15, SDXL, SDXL_LIGHTNING, Defaults, Family, get_family
from sfumato.engine.preview import LatentPreview
from sfumato.errors import ModelNotFound, UnsupportedModel

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")
UNET = "model.diffusion_model."
SDXL_CLIP_L = "conditioner.embedders.0.transformer."
SDXL_CLIP_G = "conditioner.embedders.1.model."
REFINER_CLIP_G = "conditioner.embedders.0.model."
SD1_CLIP = "cond_stage_model.transformer."
SD2_CLIP = "cond_stage_model.model."


@dataclass(frozen=True)
class ModelSource:
    """A model on disk and what it is."""

    path: Path
    layout: str  # "diffusers" (a folder) or "single_file"
    family: Family
    inpainting: bool = False
    defaults: Defaults | None = None  # the family's defaults, adjusted for this model
    label: str | None = None  # the name its model card gives it
    preview: LatentPreview | None = None  # its own latent-to-RGB map, when its VAE has one

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        return self.path.stem if self.layout == "single_file" else self.path.name

    @property
    def effective_defaults(self) -> Defaults:
        return self.defaults or self.family.defaults

    @property
    def effective_preview(self) -> LatentPreview:
        return self.preview or self.family.preview


def read_header(path: Path) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """Tensor names and shapes of a weights file, and its text metadata (safetensors only),
    reading as little of the file as possible."""
    if path.suffix.lower() == ".safetensors":
        try:
            with safe_open(path, framework="pt") as f:
                shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
                return shapes, f.metadata() or {}
        except SafetensorError as e:
            raise UnsupportedModel(
                f"{path.name} is not a readable safetensors file; it may be truncated or corrupt "
                f"({e}). Download it again."
            ) from None
    state = load_pickled_checkpoint(path)
    return {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}, {}


def read_tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    return read_header(path)[0]


def load_pickled_checkpoint(path: Path) -> dict:
    """A .ckpt/.pt file's tensors, unpickled with ``weights_only`` so no code can run."""
    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e):
                raise
            # files from torch < 1.6 predate the zip format that memory-mapping needs
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        raise UnsupportedModel(
            f"{path.name} cannot be read safely: pickled checkpoints are only loaded when they "
            f"hold nothing but tensors, and this one holds more or is damaged ({str(e)[:200]}). "
            "Convert it to .safetensors, or download the .safetensors version of the model."
        ) from None
    while isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UnsupportedModel(f"{path.name} does not hold a state dict of tensors.")
    return state


def _describe(shapes: dict[str, tuple[int, ...]]) -> str:
    prefixes = sorted({".".join(k.split(".")[:2]) for k in shapes})
    shown = ", ".join(prefixes[:6]) + (", ..." if len(prefixes) > 6 else "")
    return f"{len(shapes)} tensors under {shown}"


def detect_architecture(shapes: dict[str, tuple[int, ...]], name: str) -> tuple[str, bool]:
    """('sd15' | 'sdxl', inpainting?) from an original-layout checkpoint's tensors."""
    keys = shapes.keys()

    def has(prefix: str) -> bool:
        return any(k.startswith(prefix) for k in keys)

    if not has(UNET):
        if any("lora" in k for k in keys):
            raise UnsupportedModel(f"{name} is a LoRA, not a model checkpoint.")
        if "conv_in.weight" in keys and has("down_blocks."):
            raise UnsupportedModel(
                f"{name} holds a UNet alone (diffusers layout), not a whole model. If it is an "
                "SDXL-Lightning UNet, pass it with --lightning next to an SDXL checkpoint."
            )
        raise UnsupportedModel(
            f"{name} is not a Stable Diffusion checkpoint sfumato recognises (found "
            f"{_describe(shapes)}). If it is a diffusers model in another layout, give its "
            "configs with --config DIR."
        )
    conv_in = shapes.get(UNET + "input_blocks.0.0.weight", (0, 4))
    inpainting = len(conv_in) == 4 and conv_in[1] == 9
    if has(SDXL_CLIP_G) and has(SDXL_CLIP_L):
        return "sdxl", inpainting
    if has(REFINER_CLIP_G):
        raise UnsupportedModel(f"{name} is an SDXL refiner; sfumato runs SDXL base models only.")
    if has(SD2_CLIP):
        raise UnsupportedModel(
            f"{name} is a Stable Diffusion 2.x checkpoint; sfumato runs SD 1.5, SDXL and SDXL "
            "Lightning models."
        )
    if has(SD1_CLIP):
        return "sd15", inpainting
    raise UnsupportedModel(
        f"Cannot tell which model family {name} belongs to: it has a UNet but no text encoder "
        f"that sfumato knows (found {_describe(shapes)}). Give its configs with --config DIR."
    )


def _folder_architecture(path: Path) -> tuple[str, bool]:
    index = path / "model_index.json"
    if not index.is_file():
        raise UnsupportedModel(
            f"{path} is a folder but not a diffusers model (it has no model_index.json)."
        )
    try:
        cls = json.loads(index.read_text())["_class_name"]
        unet = json.loads((path / "unet" / "config.json").read_text())
    except (OSError, ValueError, KeyError) as e:
        raise UnsupportedModel(
            f"{path} has an unreadable model_index.json or unet config ({e})."
        ) from None
    if "XL" in cls:
        arch = "sdxl"
    elif cls.startswith("StableDiffusion") and unet.get("cross_attention_dim") != 1024:
        arch = "sd15"
    else:
        raise UnsupportedModel(f"{path.name} is a {cls}; sfumato runs SD 1.5 and SDXL pipelines.")
    return arch, unet.get("in_channels") == 9


def _lightning_steps(name: str) -> int | None:
    match = re.search(r"(\d+)[-_ ]?steps?", name, re.IGNORECASE)
    return int(match.group(1)) if match else None


def pick_family(architecture: str, name: str, hint: str | None) -> Family:
    """The family of a model of this architecture: the hint if given, else from its name."""
    if hint:
        family = get_family(hint)
        if family.architecture != architecture:
            raise UnsupportedModel(
                f"{name} is an {architecture.upper()} model, not {family.label}."
            )
        return family
    if architecture == "sdxl":
        return SDXL_LIGHTNING if "lightning" in name.lower() else SDXL
    return SD15


def inspect_model(
    path: Path,
    family_hint: str | None = None,
    lightning: Path | None = None,
    shapes: dict[str, tuple[int, ...]] | None = None,
) -> ModelSource:
    """What the model at ``path`` is: layout, family, inpainting, tuned defaults.

    ``lightning`` names a Lightning UNet or LoRA file to run an SDXL model with: the model is
    then SDXL Lightning, with the step count of that file. ``shapes``: the file's tensor
    shapes, when the caller has read them already.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelNotFound(f"No model at {path}.")
    if path.is_dir():
        layout = "diffusers"
        architecture, inpainting = _folder_architecture(path)
    elif path.suffix.lower() in SINGLE_FILE_SUFFIXES:
        layout = "single_file"
        shapes = shapes if shapes is not None else read_tensor_shapes(path)
        architecture, inpainting = detect_architecture(shapes, path.name)
    else:
        raise UnsupportedModel(
            f"{path.name} is not a model file sfumato reads (.safetensors, .ckpt, or a diffusers "
            "folder)."
        )
    if lightning is not None:
        if architecture != "sdxl":
            raise UnsupportedModel(
                f"A Lightning UNet or LoRA goes with an SDXL checkpoint; {path.name} is SD 1.5."
            )
        family_hint = SDXL_LIGHTNING.id
    family = pick_family(architecture, path.name, family_hint)
    defaults = None
    steps_from = Path(lightning).name if lightning is not None else path.name
    if family is SDXL_LIGHTNING and (steps := _lightning_steps(steps_from)):
        defaults = replace(family.defaults, steps=steps)
    return ModelSource(path, layout, family, inpainting, defaults)
