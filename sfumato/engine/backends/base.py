"""What every backend offers: the one interface between the engine and what runs a model's
UNet calls and VAE decodes.

The loader picks a backend once per load (``backends.choose_backend``) and asks it to load the
model's networks; the model keeps the backend that runs it (``LoadedModel.backend``), which may
not be the one chosen: OpenVINO, chosen by default, hands a model it cannot convert to PyTorch.
Everything else the pipeline does (text encoders, samplers, the VAE encoder) stays on PyTorch
whatever the backend; a backend only replaces the networks it runs, for the time of a request.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar

import torch

if TYPE_CHECKING:
    from sfumato.engine.checkpoint import ModelSource
    from sfumato.engine.shortcuts import DeepCache

# reads the model's pipeline from disk, on the CPU, given components not to read from the file
# (an empty UNet, when a backend holds its own copy already)
Reader = Callable[..., Any]


class Backend(ABC):
    name: ClassVar[str]  # as --backend names it
    dtype: torch.dtype  # PyTorch's weights' dtype (what the memory estimate counts in)

    @abstractmethod
    def load(self, source: ModelSource, read: Reader) -> tuple[Any, Backend]:
        """The model's pipeline read with ``read`` and made ready to run, and the backend that
        runs it (this one, or the one it falls back to)."""

    def unet_for(self, pipe, loras: Sequence) -> AbstractContextManager:
        """Within the block, PyTorch's UNet holds its weights where this request runs on them
        (its ``loras`` are applied to them): for a backend that lets them go."""
        return contextlib.nullcontext()

    def running(self, pipe, loras: Sequence, cache: DeepCache | None) -> AbstractContextManager:
        """Within the block, ``pipe``'s UNet calls (unless ``loras`` keep them on PyTorch) and
        VAE decodes run on this backend; ``cache``: DeepCache's state, for its cached steps."""
        return contextlib.nullcontext()

    def name_for(self, loras: Sequence) -> str:
        """What runs a request's UNet, as its pictures' metadata says (``torch``,
        ``openvino``, ``openvino int8``): pictures differ a little from one to another."""
        return self.name

    def converts(self, source: ModelSource) -> bool:
        """Whether loading ``source`` converts it first: a one-time cost (minutes) that the
        CLI says before it is paid."""
        return False

    def held_bytes(self) -> int:
        """Memory this backend holds beside PyTorch's weights (its own copy of networks)."""
        return 0

    def extra_bytes(self, parts: dict[str, int]) -> int:
        """``held_bytes`` estimated before the load, from the bytes of the model's parts in
        ``dtype`` (``cache._weights_by_part``), less what of PyTorch's it lets go for good."""
        return 0
