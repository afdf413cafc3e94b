"""Converting a model's UNet and VAE decoder for OpenVINO (once per model, kept in the data
folder's cache: ``conversions.py``), quantizing the UNet for ``--dtype int8`` (``int8.py``), and
compiling them for the CPU.

Both parts are converted from the weights sfumato loaded, with the batch, the prompt length and
the picture size left open. DeepCache runs on OpenVINO too: the converted UNet also hands out
what its deep blocks give the last up block, and a second, shallow network (the first down
block and the last up block) takes that in on the cached steps.
"""

from __future__ import annotations

import logging
import shutil
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import torch

from sfumato.engine import conversions, int8
from sfumato.engine.backends.openvino_networks import (
    NETWORKS,
    UNET_SHAPES,
    Compiled,
    Float32Decoder,
    Float32Unet,
    ShapedNetwork,
    running,
)
from sfumato.engine.device import INT8
from sfumato.engine.shortcuts import stand_ins
from sfumato.errors import UnsupportedModel

log = logging.getLogger(__name__)


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
    unet_shapes: int = UNET_SHAPES,
) -> Compiled:
    """The UNet and VAE decoder converted into ``folder`` (from ``pipe``'s, the model read
    from ``source_path``, unless done already), made ready for the CPU. ``precision``: int8
    quantizes the UNet; None or a dtype: ``pipe``'s own. ``unet_shapes``: how many shapes
    the UNet keeps compiled (each compiled at its first call); 0: compiled now with its
    shapes open, one network for every shape."""
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
        ShapedNetwork(core, unet, unet_shapes) if unet_shapes else core.compile_model(unet, "CPU"),
        ShapedNetwork(core, decoder),
        core.compile_model(shallow, "CPU"),
        folder,
        converted_s,
        core.get_property("CPU", "INFERENCE_PRECISION_HINT").get_size(),
        quantized,
    )
