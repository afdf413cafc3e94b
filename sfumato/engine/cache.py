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
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

from sfumato.engine.checkpoint import ModelSource, read_header
from sfumato.engine.device import pick_device, pick_dtype
from sfumato.engine.loader import LoadedModel, LoadOptions, load_model
from sfumato.engine.openvino_backend import check_backend
from sfumato.errors import OutOfMemory

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

    @property
    def used_bytes(self) -> int:
        return sum(c.bytes for c in self._models.values())

    def get(self, source: ModelSource, options: LoadOptions) -> LoadedModel:
        key = (str(source.path), source.path.stat().st_mtime_ns, options)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key].model
            device = pick_device(options.device)
            need = estimate_bytes(source.path, pick_dtype(device, options.dtype))
            if check_backend(options.backend, device) == "openvino":
                # its own copy of the UNet and VAE decoder, and room for PyTorch's UNet, which
                # requests with LoRAs read again
                need *= 2
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
            model = load_model(source, options)
            self.loads += 1
            self._models[key] = Cached(model, loaded_bytes(model))
            return model


def estimate_bytes(path: Path, dtype: torch.dtype) -> int:
    """The memory a model's weights take once loaded in ``dtype``, from the files' headers
    (a single file's EMA copy is not loaded; a folder's half-precision duplicates not counted)."""
    files = [path] if path.is_file() else _weight_files(path)
    size = torch.empty((), dtype=dtype).element_size()
    total = 0
    for file in files:
        if file.suffix == ".safetensors":
            shapes = read_header(file)[0]
            total += size * sum(
                math.prod(shape)
                for key, shape in shapes.items()
                if not key.startswith("model_ema.")
            )
        else:  # pickled weights: as large as they are on disk
            total += file.stat().st_size
    return total


def _weight_files(folder: Path) -> list[Path]:
    files = [p for p in folder.rglob("*") if p.suffix in (".safetensors", ".bin")]
    plain = {(p.parent, p.name.split(".")[0]) for p in files if p.name.count(".") == 1}
    # "x.fp16.safetensors" beside "x.safetensors" is the same weights in another precision
    return [
        p for p in files if p.name.count(".") == 1 or (p.parent, p.name.split(".")[0]) not in plain
    ]


def loaded_bytes(model: LoadedModel) -> int:
    """Its weights' memory: a model on OpenVINO counts its converted copy and PyTorch's UNet,
    which it lets go of but reads again for requests with LoRAs (not PyTorch's VAE decoder,
    let go for good)."""
    total = 0
    for name, component in model.pipe.components.items():
        if isinstance(component, torch.nn.Module):
            for t in itertools.chain(component.parameters(), component.buffers()):
                if t.device.type != "meta" or name == "unet":
                    total += t.numel() * t.element_size()
    return total + (model.compiled.bytes if model.compiled else 0)
