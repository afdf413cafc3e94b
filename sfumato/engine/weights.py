"""A model's UNet read from disk on its own (whole, or its architecture alone), SDXL Lightning
applied to a pipeline, and weights let go: the pieces a backend that keeps its own copy of the
UNet (OpenVINO) uses to hold PyTorch's only while a request needs them."""

from __future__ import annotations

import contextlib
import ctypes
import gc
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from sfumato.engine.checkpoint import ModelSource
from sfumato.errors import UnsupportedModel


def configs_for(source: ModelSource, config_dir: Path | None) -> Path:
    """The diffusers-format folder of configs a single-file checkpoint is read against."""
    return config_dir or source.family.config_dir_for(source.inpainting)


def read_unet(source: ModelSource, dtype: torch.dtype, config_dir: Path | None):
    if source.layout == "diffusers":
        return UNet2DConditionModel.from_pretrained(
            source.path, subfolder="unet", dtype=dtype, local_files_only=True
        )
    return UNet2DConditionModel.from_single_file(
        str(source.path),
        config=str(configs_for(source, config_dir)),
        subfolder="unet",
        dtype=dtype,
        local_files_only=True,
    )


def empty_unet(source: ModelSource, dtype: torch.dtype, config_dir: Path | None):
    """The model's UNet without weights (on the meta device): the architecture alone."""
    folder = source.path if source.layout == "diffusers" else configs_for(source, config_dir)
    with torch.device("meta"):
        config = UNet2DConditionModel.load_config(folder, subfolder="unet")
        return UNet2DConditionModel.from_config(config).to(dtype)


def apply_lightning(pipe, path: Path) -> None:
    """Turn an SDXL pipeline into SDXL Lightning with ByteDance's UNet or LoRA file."""
    try:
        with safe_open(path, framework="pt") as f:
            keys = list(f.keys())
    except SafetensorError as e:
        raise UnsupportedModel(f"{path.name} is not a readable safetensors file ({e}).") from None
    if any("lora" in k for k in keys):
        pipe.load_lora_weights(str(path), adapter_name="lightning")
        pipe.fuse_lora()  # bake it in: every later request runs the Lightning UNet
        pipe.unload_lora_weights()
        return
    try:
        pipe.unet.load_state_dict(load_file(path, device=str(pipe.unet.device)), strict=True)
    except RuntimeError as e:
        raise UnsupportedModel(
            f"{path.name} is neither an SDXL-Lightning LoRA nor a UNet that fits this SDXL model "
            f"({str(e).splitlines()[0]})."
        ) from None


def let_go(module: torch.nn.Module) -> None:
    """Free ``module``'s weights, keeping its structure (its tensors on the meta device)."""
    module.to("meta")
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        # glibc keeps large freed blocks for the process; give them back to the system
        ctypes.CDLL("libc.so.6").malloc_trim(0)
