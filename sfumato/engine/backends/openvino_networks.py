"""OpenVINO's networks as the pipeline calls them: a model's compiled UNet and VAE decoder
(``Compiled``), the float32 wrappers they are converted from, and ``running``, which routes a
pipeline's UNet calls and decodes to them for the time of a block."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import torch

from sfumato.engine.shortcuts import DeepCache

NETWORKS = ("unet", "vae_decoder", "unet_shallow")  # as Compiled holds them


@dataclass
class Compiled:
    """A model's UNet and VAE decoder, compiled by OpenVINO for the CPU."""

    unet: object  # openvino.CompiledModel: the noise, and DeepCache's features
    decoder: ShapedNetwork
    shallow: object  # DeepCache's cached steps: the UNet's outer blocks on kept features
    folder: Path  # where their converted form lies
    converted_s: float | None  # None: read from the cache
    int8: bool = False  # the UNet quantized

    @property
    def bytes(self) -> int:
        """Memory their weights take: saved in fp16, held in the precision they compute in
        (bf16 where the CPU has it, else f32: twice the size); an int8 UNet's as saved."""
        element = self.unet.get_property("INFERENCE_PRECISION_HINT").get_size()
        total = 0
        for path in self.folder.glob("*.bin"):
            as_saved = self.int8 and path.stem == "unet"
            total += path.stat().st_size * (2 if as_saved else element) // 2
        return total


class ShapedNetwork:
    """A network compiled for the shape of the inputs it is called with, compiled again when
    that changes, the previous compilation dropped first. For the VAE decoder: compiled for
    one shape, OpenVINO plans its working memory for that shape (less of it than the open
    network keeps), the pixels are the same, and a compile is quick (the figures are in
    ``benchmarks/RESULTS.md``). The UNet stays open: its memory is its weights,
    which each compilation copies, and the guidance cutoff changes its batch mid-picture.
    Called one at a time, as a compiled network is."""

    def __init__(self, core, model):
        self._core, self._model = core, model
        self._compiled = None
        self.compiled_for: tuple[int, ...] | None = None  # the input shape compiled for
        self.compilations = 0

    def __call__(self, inputs: list):
        shape = tuple(inputs[0].shape)
        if shape != self.compiled_for:
            # the old one's working memory goes before the new one's comes
            self._compiled, self.compiled_for = None, None
            self._model.reshape({self._model.inputs[0]: list(shape)})
            self._compiled = self._core.compile_model(self._model, "CPU")
            self.compiled_for = shape
            self.compilations += 1
        return self._compiled(inputs)


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
