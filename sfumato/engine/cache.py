"""Loaded models kept in memory between requests, the least recently used dropped first.

Loading SD 1.5 from disk takes seconds and SDXL more; a server switching among a few models
should not pay that every time. The cache keeps what fits in a memory budget (or, without
one, a number of models), keyed by the file, its modification time (a replaced file is loaded
again) and the load options. Before a load it estimates the model's size from its weights'
headers and makes room first, so it never holds more than the budget, and refuses a model
larger than the whole budget with a sentence.
"""

from __future__ import annotations

import gc
import itertools
import logging
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from sfumato.engine.backends import Backend, choose_backend
from sfumato.engine.checkpoint import UNET, ModelSource, read_header
from sfumato.engine.device import INT8, pick_device
from sfumato.engine.loader import LoadedModel, LoadOptions, load_model
from sfumato.errors import NoMemoryToQuantize, OutOfMemory

log = logging.getLogger(__name__)

GB = 1024**3


@dataclass
class Cached:
    model: LoadedModel
    bytes: int


class ModelCache:
    def __init__(self, max_models: int | None = None, max_bytes: int | None = None):
        # without a budget, one model at a time (real ones are several GB each)
        self.max_models = max_models or (1 if max_bytes is None else math.inf)
        self.max_bytes = max_bytes
        self._models: OrderedDict[tuple, Cached] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0  # how many times a model was read from disk (for tests and stats)
        self._not_quantized: set[Path] = set()  # refused --dtype int8 for want of memory
        self._in_int8: set[Path] = set()  # run in int8 where asked for no dtype (run_in_int8)

    @property
    def used_bytes(self) -> int:
        return sum(c.bytes for c in self._models.values())

    def loaded_names(self) -> list[str]:
        """The models held now by name, the most recently used last (what a worker reports
        as warm, so that jobs for them come to it)."""
        with self._lock:
            return list(dict.fromkeys(c.model.source.name for c in self._models.values()))

    def get(self, source: ModelSource, options: LoadOptions) -> LoadedModel:
        key = (str(source.path), source.path.stat().st_mtime_ns, options)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key].model
            try:
                model = self._load(source, self._as_run(source, options))
            except NoMemoryToQuantize as e:
                # --dtype int8 and a model this machine has not the memory to quantize (SDXL
                # on 24 GiB): the server's int8 means int8 where it can be; the model's
                # pictures say which they were made with
                log.warning("%s The server runs it without int8.", e.message)
                self._not_quantized.add(source.path)
                model = self._load(source, replace(options, dtype=None))
            self.loads += 1
            self._models[key] = Cached(model, loaded_bytes(model))
            return model

    def run_in_int8(self, path: Path) -> None:
        """From now on the model at ``path`` runs with its UNet in int8 where the load options
        name no dtype (``jobs/int8_switch.py``: its int8 conversion is in the cache); its
        loaded copies in the default dtype are let go."""
        with self._lock:
            self._in_int8.add(path)
            for key in list(self._models):
                if key[0] == str(path) and key[2].dtype in (None, "auto"):
                    del self._models[key]
            gc.collect()

    def _as_run(self, source: ModelSource, options: LoadOptions) -> LoadOptions:
        if options.quantized and source.path in self._not_quantized:
            return replace(options, dtype=None)
        if options.dtype in (None, "auto") and source.path in self._in_int8:
            return replace(options, dtype=INT8)
        return options

    def _load(self, source: ModelSource, options: LoadOptions) -> LoadedModel:
        """``source`` loaded with ``options``, once there is room for it."""
        device = pick_device(options.device)
        need = estimate_bytes(source.path, choose_backend(options, device))
        if self.max_bytes is not None and need > self.max_bytes and options.unet_shapes:
            # OpenVINO's UNet compiled for each shape holds a copy of its weights a shape: with
            # no room for them, one network with its shapes open (slower, a copy in all)
            options = replace(options, unet_shapes=0)
            need = estimate_bytes(source.path, choose_backend(options, device))
        if self.max_bytes is not None and need > self.max_bytes:
            raise OutOfMemory(
                f"{source.name} needs about {need / GB:.1f} GB, more than the server's "
                f"memory for models ({self.max_bytes / GB:.1f} GB, --model-memory)."
            )
        # make room before loading: two large models side by side may not fit
        while self._models and (
            len(self._models) >= self.max_models
            or (self.max_bytes is not None and self.used_bytes + need > self.max_bytes)
        ):
            self._models.popitem(last=False)
            gc.collect()
        return load_model(source, options)


def estimate_bytes(path: Path, backend: Backend) -> int:
    """The memory a model takes once loaded on ``backend`` (in its dtype), from its weights'
    headers (a single file's EMA copy is not loaded; a folder's half-precision duplicates not
    counted), with what the backend holds beside PyTorch's weights."""
    parts = _weights_by_part(path, backend.dtype.itemsize)
    extra = backend.extra_bytes(parts)
    return parts["unet"] + parts["vae_decoder"] + parts["other"] + extra  # outer: in the UNet


def _weights_by_part(path: Path, element_size: int) -> dict[str, int]:
    """Bytes of the UNet's, its outer blocks' (DeepCache's shallow network: ``_outer``), the
    VAE decoder's and the other weights, in ``element_size``."""
    parts = dict.fromkeys(("unet", "unet_outer", "vae_decoder", "other"), 0)
    for file in [path] if path.is_file() else _weight_files(path):
        folder = "" if file == path else file.relative_to(path).parts[0]
        if file.suffix != ".safetensors":  # pickled: as large as on disk, and not split up
            # a pickled single file counted as the UNet: the backend's estimate errs high
            parts["unet" if folder in ("", "unet") else "other"] += file.stat().st_size
            continue
        shapes = {
            f"{folder}.{key}" if folder else key: shape
            for key, shape in read_header(file)[0].items()
            if not key.startswith("model_ema.")
        }
        outer = _outer(shapes)
        for key, shape in shapes.items():
            size = element_size * math.prod(shape)
            if key.startswith(("unet.", UNET)):
                parts["unet"] += size
                parts["unet_outer"] += size if key in outer else 0
            elif key.startswith(("vae.decoder.", "first_stage_model.decoder.")):
                parts["vae_decoder"] += size
            else:
                parts["other"] += size
    return parts


def _outer(keys) -> set[str]:
    """The UNet's keys outside its deep blocks (all down blocks but the first, all up blocks
    but the last, the middle block: those ``shortcuts.stand_ins`` skips, told here by key
    names since no network is loaded yet), in the diffusers layout and in the original one,
    where the first down block ends with the first downsampler and the last up block begins
    after the last upsampler."""

    def index(key: str) -> int:  # "unet.up_blocks.3.x" or UNET + "output_blocks.11.x"
        return int(key.removeprefix(UNET).split(".")[1 if key.startswith(UNET) else 2])

    def indices(prefix: str, inside: str = "") -> list[int]:
        return [index(k) for k in keys if k.startswith(prefix) and inside in k]

    first_down_end = min(indices(UNET + "input_blocks.", ".0.op."), default=0)
    last_up_start = max(indices(UNET + "output_blocks.", ".conv."), default=-1) + 1
    last_up = f"unet.up_blocks.{max(indices('unet.up_blocks.'), default=0)}."

    def is_outer(key: str) -> bool:
        if key.startswith("unet."):
            deep = ("unet.down_blocks.", "unet.up_blocks.", "unet.mid_block.")
            return key.startswith(("unet.down_blocks.0.", last_up)) or not key.startswith(deep)
        if key.startswith(UNET + "input_blocks."):
            return index(key) <= first_down_end
        if key.startswith(UNET + "output_blocks."):
            return index(key) >= last_up_start
        return key.startswith(UNET) and not key.startswith(UNET + "middle_block.")

    return {key for key in keys if is_outer(key)}


def _weight_files(folder: Path) -> list[Path]:
    files = [p for p in folder.rglob("*") if p.suffix in (".safetensors", ".bin")]
    plain = {(p.parent, p.name.split(".")[0]) for p in files if p.name.count(".") == 1}
    # "x.fp16.safetensors" beside "x.safetensors" is the same weights in another precision
    return [
        p for p in files if p.name.count(".") == 1 or (p.parent, p.name.split(".")[0]) not in plain
    ]


def loaded_bytes(model: LoadedModel) -> int:
    """Its weights' memory: PyTorch's, and what its backend holds beside them. PyTorch's UNet
    is counted even where the backend let it go (OpenVINO): requests with LoRAs read it again
    (not PyTorch's VAE decoder, let go for good)."""
    total = 0
    for name, component in model.pipe.components.items():
        if isinstance(component, torch.nn.Module):
            for t in itertools.chain(component.parameters(), component.buffers()):
                if t.device.type != "meta" or name == "unet":
                    total += t.numel() * t.element_size()
    return total + model.backend.held_bytes()
