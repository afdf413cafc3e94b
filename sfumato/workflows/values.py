"""The values that travel on a graph's links, and the context a graph runs in.

Models, text encoders and VAEs travel as references (which file, which LoRAs at which
strength, which clip skip): loading is the context's business, through the model cache, so
a graph that names one checkpoint three times loads it once. Latents travel as tensors, or
as a size while still empty (its latent size depends on the model that samples it).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from PIL import Image

from sfumato.catalog.scan import UPSCALER, Models
from sfumato.engine.loader import LoadedModel
from sfumato.engine.loras import LoraSpec
from sfumato.engine.sampling import Cond, empty_latent
from sfumato.errors import ModelNotFound
from sfumato.upscale.models import describe
from sfumato.upscale.run import Upscaler


@dataclass(frozen=True)
class ModelRef:
    """A checkpoint's diffusion model, with LoRAs on it: (name, strength)."""

    name: str
    path: Path
    loras: tuple[tuple[str, float], ...] = ()

    def with_lora(self, name: str, strength: float) -> ModelRef:
        return replace(self, loras=(*self.loras, (name, strength)))


@dataclass(frozen=True)
class ClipRef:
    """A checkpoint's text encoders, with LoRAs on them and the layer read (1: the last)."""

    model: ModelRef  # its LoRAs are the text encoders' (LoraLoader's ``strength_clip``)
    clip_skip: int = 1


@dataclass(frozen=True)
class VaeRef:
    """A checkpoint's own VAE, or a VAE file (``file``) used in its place."""

    model: ModelRef | None = None
    file: Path | None = None
    name: str | None = None


@dataclass
class Conditioning:
    """Encoded prompts: several after ``ConditioningCombine`` (their predictions averaged)."""

    conds: list[Cond]
    model: str  # the checkpoint that encoded them: another's UNet cannot read them
    texts: list[str] = field(default_factory=list)


@dataclass
class Latent:
    samples: torch.Tensor | None  # diffusers-scaled; None: empty, of ``size``
    size: tuple[int, int]  # in pixels (width, height)
    batch: int = 1
    noise_mask: torch.Tensor | None = None  # (batch or 1, 1, h, w), 1 = repaint
    trace: dict = field(default_factory=dict)  # what made it: for the pictures' metadata
    model: ModelRef | None = None  # the model that sampled it
    # the pictures it was encoded from, while it has their size: with a noise mask, decoding
    # lays them back outside the mask
    pixels: list[Image.Image] | None = None

    def tensor(self, model: LoadedModel) -> torch.Tensor:
        if self.samples is None:
            return empty_latent(model, *self.size, self.batch)
        return self.samples


@dataclass
class Pictures:
    images: list[Image.Image]  # RGB
    trace: dict = field(default_factory=dict)


@dataclass
class Mask:
    values: torch.Tensor  # (batch, height, width), 0-1, 1 = repaint


class Context(ABC):
    """What nodes need from where the graph runs: the server's worker (history, model cache,
    the user's uploads) or the command line (files)."""

    cancel: threading.Event | None = None
    models: Models  # the installed files it may name

    @abstractmethod
    def checkpoint(self, name: str) -> ModelRef:
        """The installed checkpoint ``name`` (validated already)."""

    @abstractmethod
    def load(self, model: ModelRef) -> LoadedModel:
        """The checkpoint loaded (through the model cache where there is one)."""

    @abstractmethod
    def lora(self, name: str, strength: float, model: LoadedModel) -> LoraSpec:
        """The installed LoRA ``name``, checked against ``model``."""

    @abstractmethod
    def vae_file(self, name: str) -> Path:
        """The installed VAE file ``name``."""

    def upscaler(self, name: str) -> Upscaler:
        """The installed upscaler model ``name`` (its file name, as ComfyUI lists them)."""
        for entry in self.models.scan().of_kind(UPSCALER):
            if entry.path.name == name and entry.path.exists() and not entry.broken:
                return Upscaler(entry.path.stem, entry.path, describe(entry.path).scale)
        raise ModelNotFound(f"The upscale model {name} is not installed.")

    @abstractmethod
    def picture(self, name: str) -> Image.Image:
        """The user's picture ``name`` (an upload), as stored: alpha kept."""

    @abstractmethod
    def save(self, node_id: str, pictures: Pictures, prefix: str, temporary: bool) -> list[dict]:
        """Keep the pictures (``temporary``: a preview, not in the history); ComfyUI's
        ``{"filename", "subfolder", "type"}`` for each."""

    @abstractmethod
    def progress(self, node_id: str, done: int, total: int, latents, previewer) -> None:
        """A sampler's step ``done`` of ``total``."""

    def picture_key(self, name: str) -> str:
        """What identifies the picture ``name`` now (an upload replaced under the same name
        is another picture): a node reading it is run again when this changes."""
        return name

    def loras(self, refs: tuple[tuple[str, float], ...], model: LoadedModel) -> list[LoraSpec]:
        return [self.lora(name, strength, model) for name, strength in refs if strength]
