"""Load a model from disk into a diffusers pipeline, offline.

Single-file checkpoints are read by diffusers' own ``from_single_file`` against the component
configs that ship with sfumato (or a folder the user gives), so no load ever reaches a hub.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from diffusers import (
    StableDiffusionInpaintPipeline,
    StableDiffusionPipeline,
    StableDiffusionXLInpaintPipeline,
    StableDiffusionXLPipeline,
)
from diffusers.utils import logging as diffusers_logging
from transformers.utils import logging as transformers_logging

from sfumato.engine.backends import Backend, choose_backend
from sfumato.engine.backends.openvino_networks import UNET_SHAPES
from sfumato.engine.checkpoint import ModelSource
from sfumato.engine.device import INT8, cpu_has_native_bf16, pick_device, pick_dtype
from sfumato.engine.tokenizers import PAD_OPEN_CLIP, clip_tokenizer
from sfumato.engine.weights import apply_lightning, configs_for
from sfumato.errors import UnsupportedModel

log = logging.getLogger(__name__)
PIPELINES = {
    ("sd15", False): StableDiffusionPipeline,
    ("sdxl", False): StableDiffusionXLPipeline,
    # 9-channel UNets that see the picture and the mask: their own pipelines, which also make
    # plain pictures (an empty picture, all of it to paint)
    ("sd15", True): StableDiffusionInpaintPipeline,
    ("sdxl", True): StableDiffusionXLInpaintPipeline,
}

# diffusers and transformers narrate every load; sfumato reports what matters itself
diffusers_logging.set_verbosity_error()
transformers_logging.set_verbosity_error()
diffusers_logging.disable_progress_bar()
transformers_logging.disable_progress_bar()


@dataclass(frozen=True)
class LoadOptions:
    device: str | None = None  # None or "auto": CUDA, else MPS, else CPU
    # None or "auto": fp16 on GPUs, bf16 or fp32 on the CPU; "int8": the UNet quantized
    dtype: str | None = None
    config_dir: Path | None = None  # configs for an unusual single-file checkpoint
    lightning: Path | None = None  # a Lightning UNet or LoRA to run an SDXL model with
    # None or "auto": SFUMATO_BACKEND, else OpenVINO on the CPU (UNet and VAE decoder), else torch
    backend: str | None = None
    cache_dir: Path | None = None  # where converted forms are kept (the data folder's cache)
    # OpenVINO: the UNet's shapes kept compiled (0: one network with its shapes open, where
    # the memory for models has no room for more than one copy of its weights)
    unet_shapes: int = UNET_SHAPES

    @property
    def quantized(self) -> bool:
        return self.dtype == INT8

    def cached_in(self, folder: Path) -> LoadOptions:
        """These options, converted forms kept in ``folder`` unless they name their own."""
        return replace(self, cache_dir=self.cache_dir or folder)


@dataclass
class LoadedModel:
    source: ModelSource
    pipe: StableDiffusionPipeline | StableDiffusionXLPipeline
    device: torch.device
    dtype: torch.dtype
    scheduler_config: dict  # the model's own scheduler config: each sampler starts from it
    # what runs its UNet and VAE decoder (OpenVINO on the CPU by default, else PyTorch)
    backend: Backend
    options: LoadOptions = field(default_factory=LoadOptions)
    # image-to-image and inpainting pipelines made from this one's components (no copies)
    variants: dict = field(default_factory=dict)


def _tokenizers(architecture: str, config_dir: Path | None) -> dict:
    """Our shipped tokenizers, unless the config folder brings its own."""
    if config_dir is not None and (config_dir / "tokenizer").is_dir():
        return {}
    tokenizers = {"tokenizer": clip_tokenizer()}
    if architecture == "sdxl":
        tokenizers["tokenizer_2"] = clip_tokenizer(pad_token=PAD_OPEN_CLIP)
    return tokenizers


def _from_disk(source: ModelSource, dtype: torch.dtype, config_dir: Path | None, **components):
    architecture = source.family.architecture
    cls = PIPELINES[architecture, source.inpainting]
    extra = (
        {"safety_checker": None, "requires_safety_checker": False} if architecture == "sd15" else {}
    )
    extra |= components  # given, not read from the file
    if source.layout == "diffusers":
        return cls.from_pretrained(
            source.path,
            dtype=dtype,
            local_files_only=True,
            **_tokenizers(architecture, source.path),
            **extra,
        )
    return cls.from_single_file(
        str(source.path),
        config=str(configs_for(source, config_dir)),
        dtype=dtype,
        local_files_only=True,
        **_tokenizers(architecture, config_dir),
        **extra,
    )


def load_model(source: ModelSource, options: LoadOptions | None = None, **fields) -> LoadedModel:
    """Load ``source`` onto the best (or the requested) device and backend.

    Options come as a ``LoadOptions`` or as its fields (``device="cpu"``).
    """
    options = options or LoadOptions(**fields)
    config_dir = Path(options.config_dir) if options.config_dir else None
    torch_device = pick_device(options.device)
    torch_dtype = pick_dtype(torch_device, options.dtype)
    chosen = choose_backend(options, torch_device)
    if torch_device.type == "cpu" and torch_dtype == torch.bfloat16 and not cpu_has_native_bf16():
        log.warning(
            "This CPU has no bf16 in hardware (AVX512-BF16 or AMX): PyTorch emulates it, "
            "slower than fp32. It only saves memory; --dtype auto picks fp32."
        )
    if config_dir is not None and not (config_dir / "model_index.json").is_file():
        raise UnsupportedModel(
            f"--config {config_dir} is not a diffusers-format folder (no model_index.json)."
        )

    def read(**components):
        """The pipeline from disk on the CPU, ``components`` given rather than read (a
        backend that holds its own UNet gives an empty one)."""
        try:
            pipe = _from_disk(source, torch_dtype, config_dir, **components)
        except (OSError, ValueError, RuntimeError, KeyError) as e:
            raise UnsupportedModel(
                f"Could not load {source.name} as a {source.family.label} model: "
                f"{str(e).splitlines()[0][:300]}"
            ) from None
        if options.lightning is not None and "unet" not in components:
            apply_lightning(pipe, Path(options.lightning))
        pipe.set_progress_bar_config(disable=True)
        return pipe

    pipe, backend = chosen.load(source, read)
    return LoadedModel(
        source,
        pipe,
        torch_device,
        torch_dtype,
        dict(pipe.scheduler.config),
        backend,
        options=options,
    )
