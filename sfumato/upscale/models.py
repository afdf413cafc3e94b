"""An upscaler file: what it is (architecture, scale), read once per file version, and the
network itself, kept loaded for the next picture."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sfumato.errors import InvalidRequest
from sfumato.upscale.library import MissingTorchvision, spandrel

if TYPE_CHECKING:
    import torch

SUFFIXES = (".pth", ".safetensors")  # what A1111's and ComfyUI's upscaler folders hold
KEPT = 2  # loaded networks kept; ESRGAN's is 64 MB, the largest common ones a few hundred


@dataclass(frozen=True)
class UpscalerInfo:
    architecture: str  # spandrel's name: "ESRGAN", "RealESRGAN Compact", "SwinIR", ...
    scale: int  # how many times larger each side comes out
    parameters: int


_described: dict[tuple, UpscalerInfo | str] = {}
_loaded: OrderedDict[tuple, object] = OrderedDict()
_lock = threading.Lock()


def _version(path: Path) -> tuple:
    stat = path.stat()
    return (str(path), stat.st_size, stat.st_mtime_ns)


def describe(path: Path) -> UpscalerInfo:
    """What the file at ``path`` is; a sentence (InvalidRequest) when it is no upscaler this
    server can run. Read once per version of the file: it loads the weights."""
    key = _version(path)
    found = _described.get(key)
    if found is None:
        try:
            found = _info(_read(path, "cpu"))
        except InvalidRequest as e:
            found = e.message
        _described[key] = found
    if isinstance(found, str):
        raise InvalidRequest(found)
    return found


def load(path: Path, device: torch.device):
    """The file's network (spandrel's model descriptor) on ``device``, in inference mode."""
    key = (*_version(path), str(device))
    with _lock:
        if key in _loaded:
            _loaded.move_to_end(key)
            return _loaded[key]
    descriptor = _read(path, device)
    _info(descriptor)  # refuses what is no upscaler
    descriptor.eval()
    with _lock:
        _loaded[key] = descriptor
        while len(_loaded) > KEPT:
            _loaded.popitem(last=False)
    return descriptor


def _read(path: Path, device) -> object:
    library = spandrel()
    name = path.name
    if path.suffix.lower() not in SUFFIXES:
        raise InvalidRequest(f"{name} is not an upscaler file: use .pth or .safetensors.")
    try:
        return library.ModelLoader(device=device).load_from_file(path)
    except library.UnsupportedModelError:
        raise InvalidRequest(
            f"{name} is not an upscaler model spandrel recognises (ESRGAN, RealESRGAN, "
            "SwinIR, HAT, DAT, OmniSR, SPAN, ... are)."
        ) from None
    except MissingTorchvision:
        raise InvalidRequest(
            f"{name} is a model whose architecture needs torchvision, which this server does "
            "not have; it is not an upscaler either."
        ) from None
    except MemoryError:
        raise
    except Exception as e:  # a broken or foreign file: pickle, safetensors or shape errors
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise InvalidRequest(f"{name} cannot be read as an upscaler: {reason}.") from None


def _info(descriptor) -> UpscalerInfo:
    architecture = descriptor.architecture.name
    if descriptor.purpose != "SR" or descriptor.scale < 2:
        what = {"FaceSR": "a face restorer", "Inpainting": "an inpainting model"}.get(
            descriptor.purpose, f"a {descriptor.purpose.lower()} model"
        )
        raise InvalidRequest(
            f"This {architecture} file is {what} (scale {descriptor.scale}), not an upscaler."
        )
    if descriptor.input_channels != 3 or descriptor.output_channels != 3:
        raise InvalidRequest(
            f"This {architecture} file works on {descriptor.input_channels}-channel pictures; "
            "upscalers for colour pictures have 3."
        )
    parameters = sum(p.numel() for p in descriptor.model.parameters())
    return UpscalerInfo(architecture, int(descriptor.scale), parameters)
