"""Backends: what runs a model's UNet calls and VAE decodes (``base.Backend``), chosen once
per load by ``choose_backend``.

- ``torch``: PyTorch on any device (``pytorch.py``).
- ``openvino``: OpenVINO on the CPU, the default there (``openvino.py``); ``--dtype int8`` is
  this backend with its UNet quantized.

A new backend (a GPU path with compile, another runtime) is a module with a ``Backend``
subclass, its name in ``BACKENDS`` and its case in ``choose_backend``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from sfumato.engine import int8
from sfumato.engine.backends.base import Backend
from sfumato.engine.backends.openvino import OpenVINOBackend
from sfumato.engine.backends.pytorch import TorchBackend
from sfumato.engine.device import INT8, pick_dtype
from sfumato.errors import InvalidRequest

if TYPE_CHECKING:
    from sfumato.engine.loader import LoadOptions

BACKENDS = ("auto", "torch", "openvino")
ENV_VAR = "SFUMATO_BACKEND"  # the default of --backend

__all__ = [
    "BACKENDS",
    "ENV_VAR",
    "Backend",
    "OpenVINOBackend",
    "TorchBackend",
    "check_backend",
    "choose_backend",
]


def choose_backend(options: LoadOptions, device: torch.device) -> Backend:
    """The backend ``options`` ask for on ``device``, ready to load a model."""
    name = check_backend(options.backend, device, options.dtype)
    dtype = pick_dtype(device, options.dtype)
    if name == "openvino":
        return OpenVINOBackend(
            dtype,
            quantized=options.quantized,
            by_default=requested_backend(options.backend) == "auto" and not options.quantized,
            cache_dir=options.cache_dir,
            config_dir=Path(options.config_dir) if options.config_dir else None,
            lightning=options.lightning,
            unet_shapes=options.unet_shapes,
        )
    return TorchBackend(device, dtype)


def requested_backend(backend: str | None) -> str:
    return backend or os.environ.get(ENV_VAR) or "auto"


def check_backend(backend: str | None, device: torch.device, dtype: str | None = None) -> str:
    """The name of the backend that runs: ``auto`` (the default) is OpenVINO on the CPU,
    PyTorch on GPUs and where the openvino package is missing. ``dtype`` int8 runs on OpenVINO
    only."""
    chosen = _backend(backend, device)
    if dtype == INT8:
        if chosen != "openvino":
            raise InvalidRequest(
                "--dtype int8 runs on the OpenVINO backend, on the CPU: leave --backend at "
                "auto or openvino, and --device at auto or cpu (GPUs run fp16)."
            )
        int8.check_installed()
    return chosen


def _backend(backend: str | None, device: torch.device) -> str:
    named = backend
    backend = requested_backend(backend)
    if backend not in BACKENDS:
        where = "" if named else f" (from {ENV_VAR})"
        raise InvalidRequest(
            f"Unknown backend '{backend}'{where}. Use one of: {', '.join(BACKENDS)}."
        )
    installed = importlib.util.find_spec("openvino") is not None
    if backend == "auto":
        return "openvino" if device.type == "cpu" and installed else "torch"
    if backend == "openvino":
        if device.type != "cpu":
            raise InvalidRequest(
                f"The OpenVINO backend runs on the CPU, not {device.type}: add --device cpu, "
                "or leave the backend at auto."
            )
        if not installed:
            raise InvalidRequest(
                "The OpenVINO backend needs the openvino package: pip install openvino."
            )
    return backend
