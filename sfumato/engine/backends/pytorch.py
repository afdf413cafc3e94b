"""PyTorch on any device (CUDA, MPS, the CPU): the pipeline as diffusers runs it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sfumato.engine.backends.base import Backend, Reader


@dataclass
class TorchBackend(Backend):
    name = "torch"
    device: torch.device
    dtype: torch.dtype

    def load(self, source, read: Reader):
        pipe = read()
        pipe.to(self.device)
        return pipe, self
