"""OpenVINO as the CPU backend of the UNet and the VAE decoder (the default on the CPU).

On the CPU, OpenVINO runs the same UNet faster than PyTorch (``benchmarks/RESULTS.md``): it
fuses the network's layers and, on CPUs with native bf16, computes in bf16 by itself. Both
parts are converted once per model from the weights sfumato loaded, with the batch, the prompt
length and the picture size left open, saved in the data folder's cache and compiled from
there at every later load (seconds, not minutes).

DeepCache runs on OpenVINO too: the converted UNet also hands out what its deep blocks give
the last up block, and a second, shallow network (the first down block and the last up block)
takes that in on the cached steps.

``--dtype int8`` quantizes the converted UNet to int8 (``int8.py``), calibrated on a few
pictures drawn on it when the model is converted.

Once converted, PyTorch's copies of the UNet and the VAE decoder are let go (``loader.py``):
requests with LoRAs, which change the UNet's weights, read it from disk again for their
duration, and decode on OpenVINO still. Everything else the pipeline does stays on PyTorch
(text encoders, samplers, the VAE encoder of image-to-image).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import torch

from sfumato.engine import conversions, int8
from sfumato.engine.device import INT8, cpu_has_native_bf16
from sfumato.engine.shortcuts import DeepCache, stand_ins
from sfumato.errors import InvalidRequest, UnsupportedModel

log = logging.getLogger(__name__)
BACKENDS = ("auto", "torch", "openvino")
ENV_VAR = "SFUMATO_BACKEND"  # the default of --backend
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


def extra_bytes(parts: dict[str, int], dtype: torch.dtype, quantized: bool = False) -> int:
    """What a model on this backend holds beyond PyTorch's weights in ``dtype`` (``parts``:
    bytes of its ``unet``, the UNet's ``unet_outer`` blocks and its ``vae_decoder`` in that
    dtype): its compiled UNet (a byte a weight if ``quantized``), DeepCache's shallow network
    (the outer blocks again) and VAE decoder, in the precision it computes in, less PyTorch's
    VAE decoder, let go for good. PyTorch's UNet stays counted: it is let go too, but requests
    with LoRAs read it again."""
    compiled = 2 if cpu_has_native_bf16() else 4  # bf16 where the CPU has it, else f32
    scale = compiled / dtype.itemsize
    unet = parts["unet"] * (1 / dtype.itemsize if quantized else scale)
    converted = unet + (parts["unet_outer"] + parts["vae_decoder"]) * scale
    return round(converted) - parts["vae_decoder"]


def requested_backend(backend: str | None) -> str:
    return backend or os.environ.get(ENV_VAR) or "auto"


def check_backend(backend: str | None, device: torch.device, dtype: str | None = None) -> str:
    """The backend that runs: ``auto`` (the default) is OpenVINO on the CPU, PyTorch on GPUs
    and where the openvino package is missing. ``dtype`` int8 runs on OpenVINO only."""
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


def _save(ov, module: torch.nn.Module, example: list, shapes: list, path: Path) -> None:
    """Convert ``module`` traced on ``example``, with ``shapes`` (-1: left open), to ``path``."""
    from openvino.frontend.pytorch.ts_decoder import TorchScriptPythonDecoder

    # traced as convert_model traces it, less the trace's check: that traces the network a
    # second time on the same inputs to compare the graphs, a fifth of a tiny model's
    # conversion, and the files come out byte for byte the same without it
    traced = TorchScriptPythonDecoder(
        module, example_input=tuple(example), trace_kwargs={"check_trace": False}
    )
    converted = ov.convert_model(traced, input=[ov.PartialShape(s) for s in shapes])
    ov.save_model(converted, path)


def _convert(pipe, folder: Path, source: dict, quantized: bool) -> None:
    import openvino as ov

    unet = pipe.unet
    dtype = unet.dtype
    sdxl = unet.config.addition_embed_type == "text_time"
    channels, width = unet.config.in_channels, unet.config.cross_attention_dim
    # latents of a size no UNet divides evenly: the traced network then passes every upsampler
    # the size of its skip connection (as the UNet does for such sizes), and runs any size
    example = [
        torch.randn(2, channels, 15, 9),
        torch.tensor(500.0),
        torch.randn(2, 77, width),
    ]
    shapes = [[-1, channels, -1, -1], [], [-1, -1, width]]
    if sdxl:
        config = unet.config  # the pooled prompt and 6 size numbers, embedded side by side
        pooled = config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim
        example += [torch.randn(2, pooled), torch.randn(2, 6)]
        shapes += [[-1, pooled], [-1, 6]]
    latent = pipe.vae.config.latent_channels
    whole, shallow = Float32Unet(unet, sdxl), Float32Unet(unet, sdxl, shallow=True)
    # the network to quantize is converted from fp32 weights: NNCF's int8 network of one
    # converted from bf16 weights fails to compile (bf16 and f32 meet in the attention;
    # OpenVINO 2026.4, NNCF 3.4). OpenVINO computes the rest in bf16 either way.
    unet_file = folder / ("unet_f32.xml" if quantized else "unet.xml")
    with torch.no_grad(), warnings.catch_warnings():
        # the trace fixes Python-side shape checks; the shapes that matter stay open
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        try:
            unet.to(torch.float32 if quantized else dtype)
            with stand_ins(unet, whole.state):
                features = whole(*example)[1]  # what the shallow network takes in, this size
                _save(ov, whole, example, shapes, unet_file)
            with stand_ins(unet, shallow.state):
                example.append(torch.randn(features.shape))
                shapes.append([-1, features.shape[1], -1, -1])
                _save(ov, shallow, example, shapes, folder / "unet_shallow.xml")
        finally:
            # int8: PyTorch's UNet goes now, not after the conversion as the loader lets it go
            # (the calibration runs the converted network): NNCF's statistics are the
            # conversion's largest moment. A failed int8 conversion fails the load. Either
            # way in the model's dtype: a request with LoRAs reads its weights in that again
            unet.to("meta" if quantized else unet.device, dtype)
        decoder = Float32Decoder(pipe.vae.decoder)
        _save(
            ov,
            decoder,
            [torch.randn(1, latent, 16, 16)],
            [[-1, latent, -1, -1]],
            folder / "vae_decoder.xml",
        )
    if quantized:
        _quantize(pipe, unet_file, folder / "unet.xml")
    conversions.record(folder, source, sdxl=sdxl, openvino=ov.__version__)


def _quantize(pipe, network: Path, out: Path) -> None:
    """The converted UNet at ``network`` quantized to int8 into ``out``."""
    samples = _calibration_samples(pipe, network)
    int8.quantize(network, samples, out)
    for path in (network, network.with_suffix(".bin")):
        path.unlink()


def _calibration_samples(pipe, network: Path) -> list[list]:
    """The inputs of the converted UNet at ``network`` over a few pictures drawn on it
    (``int8.PROMPTS``, at the model's native size), as a compiled network takes them."""
    import numpy as np
    import openvino as ov
    from PIL import Image

    compiled = ov.Core().compile_model(network, "CPU")
    samples = []

    def recorded(inputs):
        samples.append([np.array(x) for x in inputs])  # copies: the pipeline reuses tensors
        return compiled(inputs)

    size = pipe.unet.config.sample_size * pipe.vae_scale_factor
    extra = {}
    if pipe.unet.config.in_channels == 9:  # an inpainting model: all of a grey picture to paint
        extra["image"] = Image.new("RGB", (size, size), "grey")
        extra["mask_image"] = Image.new("L", (size, size), 255)
    log.info("Calibrating the int8 UNet on %d pictures", len(int8.PROMPTS))
    with running(SimpleNamespace(unet=recorded, decoder=None), pipe), torch.no_grad():
        for seed, prompt in enumerate(int8.PROMPTS):
            pipe(
                prompt,
                height=size,
                width=size,
                num_inference_steps=int8.STEPS,
                guidance_scale=int8.GUIDANCE,
                generator=torch.Generator().manual_seed(seed),
                output_type="latent",
                **extra,
            )
    return samples


def _convert_into(pipe, folder: Path, name: str, source: dict, quantized: bool) -> None:
    partial = conversions.partial_folder(folder)
    try:
        _convert(pipe, partial, source, quantized)
    except Exception as e:
        remedy = "without --dtype int8" if quantized else "with --backend torch"
        message = (
            f"Could not convert {name} for OpenVINO "
            f"({str(e).splitlines()[0][:300]}); run it {remedy}."
        )
        if not isinstance(e, OSError | MemoryError):  # the network itself: it would fail again
            conversions.note_failure(folder, message)
        raise UnsupportedModel(message) from None
    finally:
        if not conversions.is_converted(partial):
            shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)  # what a crash before the rename left
    partial.rename(folder)


def compile_model(
    pipe,
    folder: Path,
    source_path: Path,
    lightning: Path | None = None,
    precision: torch.dtype | str | None = None,
) -> Compiled:
    """The UNet and VAE decoder converted into ``folder`` (from ``pipe``'s, the model read
    from ``source_path``, unless done already), compiled for the CPU. ``precision``: int8
    quantizes the UNet; None or a dtype: ``pipe``'s own."""
    import openvino as ov

    quantized = precision == INT8
    folder.parent.mkdir(parents=True, exist_ok=True)
    converted_s = None
    # a second process (or server) loading the same model waits for this one's conversion
    # and reads it, rather than converting too and replacing the folder under the first
    with conversions.lock(folder):
        if not conversions.is_converted(folder):
            log.info("Converting %s for OpenVINO (once per model)", source_path.name)
            started = time.perf_counter()
            source = conversions.made_from(source_path, lightning, precision or pipe.unet.dtype)
            _convert_into(pipe, folder, source_path.name, source, quantized)
            converted_s = time.perf_counter() - started
            conversions.note_failure(folder, None)  # converted when asked by name
            conversions.drop_replaced(folder, source)
    core = ov.Core()
    unet, decoder, shallow = (core.read_model(folder / f"{name}.xml") for name in NETWORKS)
    return Compiled(
        core.compile_model(unet, "CPU"),
        ShapedNetwork(core, decoder),
        core.compile_model(shallow, "CPU"),
        folder,
        converted_s,
        quantized,
    )


class ShapedNetwork:
    """A network compiled for the shape of the inputs it is called with, compiled again when
    that changes, the previous compilation dropped first. For the VAE decoder: compiled for
    one shape, OpenVINO plans its working memory for that shape (SDXL at 1024 px: 1.67 GiB
    where the open network keeps 2.21), the pixels are the same, and a compile takes under
    a second (``benchmarks/RESULTS.md``). The UNet stays open: its memory is its weights,
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


def can_run(compiled: Compiled | None, loras) -> bool:
    """Whether a model's converted UNet (None: it has none) runs a request: LoRAs change the
    UNet's weights, so those run on PyTorch's (and their VAE decode on OpenVINO still: LoRAs
    leave the VAE alone)."""
    return compiled is not None and not loras


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
