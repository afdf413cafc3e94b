"""OpenVINO's networks as the pipeline calls them: a model's compiled UNet and VAE decoder
(``Compiled``), the float32 wrappers they are converted from, and ``running``, which routes a
pipeline's UNet calls and decodes to them for the time of a block."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sfumato.engine.shortcuts import DeepCache

NETWORKS = ("unet", "vae_decoder", "unet_shallow")  # as Compiled holds them
UNET_SHAPES = 2  # the UNet's shapes kept compiled: a size with and without guidance


@dataclass
class Compiled:
    """A model's UNet and VAE decoder, compiled by OpenVINO for the CPU."""

    unet: ShapedNetwork | object  # the noise, and DeepCache's features (object: shapes open)
    decoder: ShapedNetwork
    shallow: object  # DeepCache's cached steps: the UNet's outer blocks on kept features
    folder: Path  # where their converted form lies
    converted_s: float | None  # None: read from the cache
    element_size: int  # bytes of the precision they compute in: 2 in bf16, else 4 (f32)
    int8: bool = False  # the UNet quantized

    @property
    def bytes(self) -> int:
        """Memory their weights take: saved in fp16, held in the precision they compute in
        (an int8 UNet's as saved), the UNet's once for every shape it may keep compiled (each
        compilation holds its own copy of the weights)."""
        total = 0
        for path in self.folder.glob("*.bin"):
            unet = path.stem == "unet"
            element = 2 if unet and self.int8 else self.element_size  # int8: as saved
            copies = getattr(self.unet, "slots", 1) if unet else 1
            total += copies * path.stat().st_size * element // 2
        return total


class ShapedNetwork:
    """A network compiled for the shapes of the inputs it is called with, the last ``slots``
    compilations kept, the least recently used dropped first (before the new one is made).

    Compiled for fixed shapes, OpenVINO runs a network faster than with its shapes open and
    plans its working memory for them: a UNet call at 512 px takes 0.72-0.94x the open
    network's on the CPUs with bf16, and its first call makes no kernels (3 s of an SD 1.5
    picture's first call); the VAE decoder keeps less working memory (figures in
    ``benchmarks/RESULTS.md``). A compile takes seconds (SD 1.5's UNet 2-4 s, SDXL's about 15,
    a decoder under one), and each holds its own copy of the weights: so few are kept,
    ``UNET_SHAPES`` for the UNet (the guidance cutoff changes the batch mid-picture), one for
    the decoder.
    Called one at a time, as a compiled network is."""

    def __init__(self, core, model, slots: int = 1):
        self._core, self._model, self.slots = core, model, slots
        self._compiled: OrderedDict[tuple, object] = OrderedDict()
        self.compilations = 0

    @property
    def compiled_for(self) -> list[tuple]:
        """The input shapes compiled for, the most recently used last."""
        return list(self._compiled)

    @property
    def latest(self):
        """The compiled network called last (None before any call)."""
        return next(reversed(self._compiled.values()), None)

    def __call__(self, inputs: list):
        shapes = tuple(tuple(np.shape(x)) for x in inputs)
        compiled = self._compiled.get(shapes)
        if compiled is None:
            while len(self._compiled) >= self.slots:
                self._compiled.popitem(last=False)  # its memory goes before the new one's comes
            self._model.reshape(
                {port: list(shape) for port, shape in zip(self._model.inputs, shapes, strict=True)}
            )
            compiled = self._compiled[shapes] = self._core.compile_model(self._model, "CPU")
            self.compilations += 1
        self._compiled.move_to_end(shapes)
        return compiled(inputs)


class Float32Unet(torch.nn.Module):
    """The UNet with plain float32 tensors in and out, whatever the weights' dtype, to be
    converted under DeepCache's ``stand_ins``: it hands out the noise and what its deep blocks
    gave the last up block; ``shallow``, it takes that in as its last input instead of running
    the deep blocks, and hands out the noise."""

    def __init__(self, unet, sdxl: bool, shallow: bool = False):
        super().__init__()
        self.unet, self.sdxl = unet, sdxl
        self.state = DeepCache(skipping=shallow)

    def forward(self, sample, timestep, encoder_hidden_states, *rest):
        dtype = self.unet.dtype
        added = None
        if self.sdxl:
            text_embeds, time_ids, *rest = rest
            added = {"text_embeds": text_embeds.to(dtype), "time_ids": time_ids.to(dtype)}
        # the stand-ins keep the features during a whole call; without them (the benchmark's
        # plain peer) none are handed out
        self.state.features = rest[0].to(dtype) if self.state.skipping else None
        out = self.unet(
            sample.to(dtype),
            timestep,
            encoder_hidden_states.to(dtype),
            added_cond_kwargs=added,
            return_dict=False,
        )[0].float()
        if self.state.skipping or self.state.features is None:
            return out
        return out, self.state.features.float()


class Float32Decoder(torch.nn.Module):
    """The VAE decoder with plain float32 tensors in and out."""

    def __init__(self, decoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, latents):
        dtype = next(self.decoder.parameters()).dtype
        return self.decoder(latents.to(dtype)).float()


@contextlib.contextmanager
def running(compiled: Compiled | None, pipe, cache: DeepCache | None = None, unet: bool = True):
    """Within the block, ``pipe``'s UNet and VAE decoder calls run on ``compiled`` (anything
    with a compiled ``unet``, ``decoder`` and ``shallow`` of the ``Float32*`` wrappers; None:
    nothing changes). With ``cache`` (``shortcuts.deep_cache``'s), its cached steps run on the
    shallow network. ``unet=False``: only the decoder (the UNet is PyTorch's, for LoRAs)."""
    if compiled is None:
        yield
        return

    def unet_forward(sample, timestep, encoder_hidden_states, *args, **kwargs):
        inputs = [
            sample.float().numpy(),
            torch.as_tensor(timestep, dtype=torch.float32).flatten()[0].numpy(),
            encoder_hidden_states.float().numpy(),
        ]
        added = kwargs.get("added_cond_kwargs")
        if added:
            inputs += [added["text_embeds"].float().numpy(), added["time_ids"].float().numpy()]
        if cache is not None and cache.skipping:
            noise = compiled.shallow([*inputs, cache.features.numpy()])[0]
        else:
            outputs = compiled.unet(inputs)
            noise = outputs[0]
            if cache is not None:
                cache.features = torch.from_numpy(outputs[1])
        # diffusers' pipelines call the UNet with return_dict=False
        return (torch.from_numpy(noise).to(sample.dtype),)

    def decoder_forward(latents, *args, **kwargs):
        return torch.from_numpy(compiled.decoder([latents.float().numpy()])[0]).to(latents.dtype)

    patched = {pipe.vae.decoder: decoder_forward}
    if unet:
        patched[pipe.unet] = unet_forward
    for module, forward in patched.items():
        module.forward = forward
    try:
        yield
    finally:
        for module in patched:
            del module.forward  # the class's own forward again
