"""OpenVINO as the CPU backend of the UNet and the VAE decoder (the default on the CPU).

On the CPU, OpenVINO runs the same UNet faster than PyTorch (``benchmarks/RESULTS.md``): it
fuses the network's layers and, on CPUs with native bf16, computes in bf16 by itself. Both
parts are converted once per model (``openvino_convert.py``), with their shapes open, saved in
the data folder's cache and compiled from there for the shapes each request calls them at
(seconds, not minutes; ``openvino_networks.ShapedNetwork``). ``--dtype int8`` is this
backend with the converted UNet quantized (``int8.py``), calibrated on a few pictures drawn on
it when the model is converted.

Once converted, PyTorch's copies of the UNet and the VAE decoder are let go: they would double
the model's memory. Requests with LoRAs, which change the UNet's weights, read it from disk
again for their duration, and decode on OpenVINO still. Everything else the pipeline does stays
on PyTorch (text encoders, samplers, the VAE encoder of image-to-image).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sfumato.datadir import DataDir
from sfumato.engine import int8
from sfumato.engine.backends.base import Backend, Reader
from sfumato.engine.backends.openvino_convert import compile_model
from sfumato.engine.backends.openvino_networks import UNET_SHAPES, Compiled, running
from sfumato.engine.backends.pytorch import TorchBackend
from sfumato.engine.checkpoint import ModelSource
from sfumato.engine.conversions import converted_folder, failed_before, is_converted
from sfumato.engine.device import INT8, cpu_has_native_bf16
from sfumato.engine.weights import apply_lightning, empty_unet, let_go, read_unet
from sfumato.errors import UnsupportedModel

log = logging.getLogger(__name__)


@dataclass
class OpenVINOBackend(Backend):
    name = "openvino"
    dtype: torch.dtype  # PyTorch's weights', and the conversion's unless quantized
    quantized: bool = False  # --dtype int8: the converted UNet in int8
    # chosen by default, not by the user: a model it cannot convert runs on PyTorch (a user's
    # choice fails the load with a sentence instead)
    by_default: bool = False
    cache_dir: Path | None = None  # where conversions are kept (None: the data folder's cache)
    config_dir: Path | None = None  # the model's configs, to read its UNet again
    lightning: Path | None = None
    unet_shapes: int = UNET_SHAPES  # shapes the UNet keeps compiled (0: one network, shapes open)
    compiled: Compiled | None = field(default=None, init=False)  # once loaded
    source: ModelSource | None = field(default=None, init=False)

    @property
    def precision(self) -> torch.dtype | str:
        """What the conversion is made in: the model's dtype, or int8."""
        return INT8 if self.quantized else self.dtype

    def _folder(self, source: ModelSource) -> Path:
        cache = self.cache_dir or DataDir.resolve().cache
        return converted_folder(cache, source.path, self.lightning, self.precision)

    def converts(self, source: ModelSource) -> bool:
        folder = self._folder(source)
        # a conversion that failed before is not tried again by default (PyTorch runs it)
        return not is_converted(folder) and not (self.by_default and failed_before(folder))

    def load(self, source: ModelSource, read: Reader):
        folder = self._folder(source)
        failed = failed_before(folder)
        if failed and self.by_default:  # not tried again at every load
            log.warning("%s Running it on PyTorch.", failed)
            return self._on_pytorch(read())
        # converted already: PyTorch's UNet is not read at all (it is read when a request
        # needs it)
        converted = is_converted(folder)
        components = {"unet": empty_unet(source, self.dtype, self.config_dir)} if converted else {}
        if self.quantized and not converted:  # to quantize: refused before reading
            unet = empty_unet(source, self.dtype, self.config_dir)
            int8.check_memory(sum(p.numel() for p in unet.parameters()), source.name)
        pipe = read(**components)  # on the CPU, where OpenVINO runs
        try:
            self.compiled = compile_model(
                pipe, folder, source.path, self.lightning, self.precision, self.unet_shapes
            )
        except UnsupportedModel as e:
            if not self.by_default:
                raise
            log.warning("%s Running it on PyTorch.", e)
            return self._on_pytorch(pipe)
        if not converted:  # OpenVINO has its own copy; PyTorch's is read when needed
            let_go(pipe.unet)
        let_go(pipe.vae.decoder)  # every decode runs on OpenVINO, LoRAs' too
        self.source = source
        return pipe, self

    def _on_pytorch(self, pipe):
        return pipe, TorchBackend(torch.device("cpu"), self.dtype)  # read on the CPU already

    @staticmethod
    def runs_unet(loras) -> bool:
        """Whether the converted UNet runs a request: LoRAs change the UNet's weights, so those
        run on PyTorch's (and their VAE decode on OpenVINO still: LoRAs leave the VAE alone)."""
        return not loras

    @contextlib.contextmanager
    def unet_for(self, pipe, loras):
        """PyTorch's UNet weights, present for a request with LoRAs: read from disk again for
        its duration, and let go after it."""
        unet = pipe.unet
        if self.runs_unet(loras) or unet.device.type != "meta":
            yield
            return
        source = self.source
        log.info("Reading %s's UNet for PyTorch", source.name)
        try:
            if not source.path.exists():
                raise FileNotFoundError(f"{source.path} is gone since the model was loaded")
            weights = read_unet(source, self.dtype, self.config_dir)
        except (OSError, ValueError, RuntimeError, KeyError) as e:  # moved or replaced since
            raise UnsupportedModel(
                f"Could not read {source.path.name} again for a request with LoRAs, "
                f"which run on PyTorch: {str(e).splitlines()[0][:300]}"
            ) from None
        # the module stays the one every pipeline of this model holds
        unet.load_state_dict(weights.state_dict(), assign=True)
        del weights
        try:
            if self.lightning is not None:
                apply_lightning(pipe, Path(self.lightning))
            yield
        finally:
            let_go(unet)

    def running(self, pipe, loras, cache):
        return running(self.compiled, pipe, cache, unet=self.runs_unet(loras))

    def name_for(self, loras) -> str:
        if not self.runs_unet(loras):
            return "torch"
        return "openvino int8" if self.quantized else "openvino"

    def held_bytes(self) -> int:
        return self.compiled.bytes if self.compiled else 0

    def extra_bytes(self, parts: dict[str, int]) -> int:
        """Its compiled UNet (a byte a weight if quantized; once for every shape it may keep
        compiled), DeepCache's shallow network (the outer blocks again: ``unet_outer``) and VAE
        decoder, in the precision it computes in, less PyTorch's VAE decoder, let go for good.
        PyTorch's UNet stays counted: it is let go too, but requests with LoRAs read it
        again."""
        computed = 2 if cpu_has_native_bf16() else 4  # bf16 where the CPU has it, else f32
        itemsize = self.dtype.itemsize
        scale = computed / itemsize
        copies = max(self.unet_shapes, 1)
        unet = parts["unet"] * (1 / itemsize if self.quantized else scale) * copies
        converted = unet + (parts["unet_outer"] + parts["vae_decoder"]) * scale
        return round(converted) - parts["vae_decoder"]
