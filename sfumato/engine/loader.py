"""Load a model from disk into a diffusers pipeline, offline.

Single-file checkpoints are read by diffusers' own ``from_single_file`` against the component
configs that ship with sfumato (or a folder the user gives), so no load ever reaches a hub.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from diffusers import (
    StableDiffusionInpaintPipeline,
    StableDiffusionPipeline,
    StableDiffusionXLInpaintPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from diffusers.utils import logging as diffusers_logging
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from transformers.utils import logging as transformers_logging

from sfumato.datadir import DataDir
from sfumato.engine import int8
from sfumato.engine.checkpoint import ModelSource
from sfumato.engine.conversions import converted_folder, failed_before, is_converted
from sfumato.engine.device import INT8, cpu_has_native_bf16, pick_device, pick_dtype
from sfumato.engine.openvino_backend import (
    Compiled,
    check_backend,
    compile_model,
    requested_backend,
)
from sfumato.engine.tokenizers import PAD_OPEN_CLIP, clip_tokenizer
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
    options: LoadOptions = field(default_factory=LoadOptions)
    compiled: Compiled | None = None  # its UNet and VAE decoder on OpenVINO (the CPU default)
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


def _configs(source: ModelSource, config_dir: Path | None) -> Path:
    """The diffusers-format folder of configs a single-file checkpoint is read against."""
    return config_dir or source.family.config_dir_for(source.inpainting)


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
        config=str(_configs(source, config_dir)),
        dtype=dtype,
        local_files_only=True,
        **_tokenizers(architecture, config_dir),
        **extra,
    )


def _unet_from_disk(source: ModelSource, dtype: torch.dtype, config_dir: Path | None):
    if source.layout == "diffusers":
        return UNet2DConditionModel.from_pretrained(
            source.path, subfolder="unet", dtype=dtype, local_files_only=True
        )
    return UNet2DConditionModel.from_single_file(
        str(source.path),
        config=str(_configs(source, config_dir)),
        subfolder="unet",
        dtype=dtype,
        local_files_only=True,
    )


def _empty_unet(source: ModelSource, dtype: torch.dtype, config_dir: Path | None):
    """The model's UNet without weights (on the meta device): the architecture alone."""
    folder = source.path if source.layout == "diffusers" else _configs(source, config_dir)
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


def load_model(source: ModelSource, options: LoadOptions | None = None, **fields) -> LoadedModel:
    """Load ``source`` onto the best (or the requested) device.

    Options come as a ``LoadOptions`` or as its fields (``device="cpu"``).
    """
    options = options or LoadOptions(**fields)
    config_dir = Path(options.config_dir) if options.config_dir else None
    torch_device = pick_device(options.device)
    torch_dtype = pick_dtype(torch_device, options.dtype)
    backend = check_backend(options.backend, torch_device, options.dtype)
    if torch_device.type == "cpu" and torch_dtype == torch.bfloat16 and not cpu_has_native_bf16():
        log.warning(
            "This CPU has no bf16 in hardware (AVX512-BF16 or AMX): PyTorch emulates it, "
            "1.5-9x slower than fp32 (measured). It only saves memory; --dtype auto picks fp32."
        )
    if config_dir is not None and not (config_dir / "model_index.json").is_file():
        raise UnsupportedModel(
            f"--config {config_dir} is not a diffusers-format folder (no model_index.json)."
        )
    # OpenVINO chosen by default, not by the user: a model it cannot convert runs on PyTorch
    by_default = requested_backend(options.backend) == "auto" and not options.quantized
    folder = None  # the OpenVINO backend's converted form
    if backend == "openvino":
        cache = options.cache_dir or DataDir.resolve().cache
        # what the conversion is made in: the model's dtype, or int8
        precision = INT8 if options.quantized else torch_dtype
        folder = converted_folder(cache, source.path, options.lightning, precision)
        failed = failed_before(folder)
        if failed and by_default:  # not tried again at every load
            log.warning("%s Running it on PyTorch.", failed)
            folder = None
    # converted already: PyTorch's UNet is not read at all (it is read when a request needs it)
    components = (
        {"unet": _empty_unet(source, torch_dtype, config_dir)}
        if (folder and is_converted(folder))
        else {}
    )
    if folder and options.quantized and not components:  # to quantize: refused before reading
        unet = _empty_unet(source, torch_dtype, config_dir)
        int8.check_memory(sum(p.numel() for p in unet.parameters()), source.name)
    try:
        pipe = _from_disk(source, torch_dtype, config_dir, **components)
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        raise UnsupportedModel(
            f"Could not load {source.name} as a {source.family.label} model: "
            f"{str(e).splitlines()[0][:300]}"
        ) from None
    if options.lightning is not None and not components:
        apply_lightning(pipe, Path(options.lightning))
    pipe.set_progress_bar_config(disable=True)
    compiled = None
    if folder is None:
        pipe.to(torch_device)
    else:  # loaded on the CPU, where OpenVINO runs
        try:
            compiled = compile_model(pipe, folder, source.path, options.lightning, precision)
        except UnsupportedModel as e:
            if not by_default:
                raise
            log.warning("%s Running it on PyTorch.", e)
        else:
            if not components:  # OpenVINO has its own copy; PyTorch's is read when needed
                _let_go(pipe.unet)
            _let_go(pipe.vae.decoder)  # every decode runs on OpenVINO, LoRAs' too
    return LoadedModel(
        source,
        pipe,
        torch_device,
        torch_dtype,
        dict(pipe.scheduler.config),
        options=options,
        compiled=compiled,
    )


@contextlib.contextmanager
def pytorch_unet(model: LoadedModel):
    """PyTorch's UNet weights, present for the block.

    A model on OpenVINO lets go of them once converted (they would double its memory); a
    request with LoRAs, which change the weights the converted network holds, reads them
    from disk again for its duration, and they are let go after it.
    """
    unet = model.pipe.unet
    if unet.device.type != "meta":
        yield
        return
    log.info("Reading %s's UNet for PyTorch", model.source.name)
    path = model.source.path
    try:
        if not path.exists():
            raise FileNotFoundError(f"{path} is gone since the model was loaded")
        weights = _unet_from_disk(model.source, model.dtype, model.options.config_dir)
    except (OSError, ValueError, RuntimeError, KeyError) as e:  # moved or replaced since
        raise UnsupportedModel(
            f"Could not read {path.name} again for a request with LoRAs, "
            f"which run on PyTorch: {str(e).splitlines()[0][:300]}"
        ) from None
    # the module stays the one every pipeline of this model holds
    unet.load_state_dict(weights.state_dict(), assign=True)
    del weights
    try:
        if model.options.lightning is not None:
            apply_lightning(model.pipe, Path(model.options.lightning))
        yield
    finally:
        _let_go(unet)


def _let_go(module: torch.nn.Module) -> None:
    """Free ``module``'s weights, keeping its structure (its tensors on the meta device)."""
    module.to("meta")
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        # glibc keeps large freed blocks for the process; give them back to the system
        ctypes.CDLL("libc.so.6").malloc_trim(0)
