"""--dtype int8: the UNet quantized by NNCF on the OpenVINO backend, once per model, calibrated
on pictures drawn on the model itself. Its pictures against fp32's on the demo model (the
quality guard) are in test_shortcuts.py."""

import collections
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

from sfumato.catalog.cards import describe_model
from sfumato.engine import int8
from sfumato.engine.backends import OpenVINOBackend, check_backend
from sfumato.engine.cache import ModelCache, estimate_bytes, loaded_bytes
from sfumato.engine.checkpoint import inspect_model
from sfumato.engine.device import pick_dtype
from sfumato.engine.generate import generate
from sfumato.engine.loader import LoadOptions, load_model
from sfumato.errors import InvalidRequest, OutOfMemory
from tests.engine.test_openvino import Counting, _settings
from tests.engine.test_shortcuts import _psnr
from tests.fixtures.tiny_models import tiny_sd15


def _precisions(compiled) -> collections.Counter:
    """How many of a compiled network's convolutions and matrix products run in each
    precision (u8 and i8: int8)."""
    counted = collections.Counter()
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        if info["layerType"].astype(str) in ("Convolution", "FullyConnected"):
            counted[info["runtimePrecision"].astype(str)] += 1
    return counted


@pytest.mark.parametrize("arch", ["sd15", "sdxl"])
def test_int8_quantizes_the_unet_once_and_draws_with_it(arch, tiny_models, tmp_path, capfd):
    source = inspect_model(tiny_models[arch]["single"])
    config = tiny_models[arch]["config"]
    options = LoadOptions(
        device="cpu", dtype="int8", backend="openvino", cache_dir=tmp_path, config_dir=config
    )
    first = load_model(source, options)
    converted = first.backend.compiled
    assert converted.int8 and converted.converted_s is not None
    # NNCF's progress bars kept off the terminal, where the CLI's spinner is
    assert "Statistics collection" not in capfd.readouterr().out
    # every convolution and matrix product of the UNet in int8 (compiled for the shapes of
    # its first call); the rest as without int8
    generate(first, _settings(first, width=64, height=64, steps=2))
    unet = _precisions(converted.unet.latest)
    assert set(unet) <= {"u8", "i8"} and unet.total() > 10, unet
    assert not {"u8", "i8"} & set(_precisions(converted.shallow))
    # the fp32 network it was quantized from is not kept
    assert sorted(p.name for p in converted.folder.glob("unet*")) == [
        "unet.bin",
        "unet.xml",
        "unet_shallow.bin",
        "unet_shallow.xml",
    ]
    # a server makes room for the int8 UNet as a byte a weight
    dtype = pick_dtype(torch.device("cpu"))
    estimate = estimate_bytes(source.path, OpenVINOBackend(dtype, quantized=True))
    assert abs(estimate - loaded_bytes(first)) / loaded_bytes(first) < 0.02  # 0.5 % measured
    assert estimate < estimate_bytes(source.path, OpenVINOBackend(dtype))

    again = load_model(source, options)
    read = again.backend.compiled
    assert read.converted_s is None and read.folder == converted.folder
    # the default's conversion is another, kept beside it
    default = load_model(source, replace(options, dtype=None))
    assert not default.backend.compiled.int8 and default.backend.compiled.folder != read.folder
    assert converted.folder.is_dir()

    # guidance, several pictures, another size; the cutoff's batch change and DeepCache's
    # shallow network run too
    again.backend.compiled.unet = Counting(again.backend.compiled.unet)
    fields = {"width": 96, "height": 64, "steps": 6, "batch_size": 2, "guidance": 5.0}
    shortcuts = {"guidance_cutoff": 0.5, "deep_cache": 2}
    for extra in [{}, shortcuts]:
        a = generate(default, _settings(default, **fields, **extra))
        b = generate(again, _settings(again, **fields, **extra))
        for x, y in zip(a, b, strict=True):
            assert y.size == (96, 64)
            # these tiny random networks: 35-39 dB from the default's pictures, measured
            assert _psnr(np.asarray(x), np.asarray(y)) >= 30
    # DeepCache: 2 of the 6 steps on kept features
    assert again.backend.compiled.unet.calls == 6 + 4


def test_an_inpainting_model_is_calibrated_on_its_own_pipeline(tmp_path):
    # its pipeline takes a picture and a mask: the calibration draws with both
    folder = tmp_path / "tiny-inpainting"
    tiny_sd15(in_channels=9).save_pretrained(folder)
    source = describe_model(folder)
    model = load_model(source, device="cpu", dtype="int8", backend="openvino", cache_dir=tmp_path)
    assert model.backend.compiled.int8 and source.inpainting
    image = generate(model, _settings(model, width=64, height=64, steps=3))[0]
    assert image.size == (64, 64) and np.asarray(image).std() > 0


def test_int8_runs_only_on_openvino_and_says_so():
    cpu = torch.device("cpu")
    assert check_backend("auto", cpu, "int8") == check_backend("openvino", cpu, "int8")
    assert check_backend("auto", cpu, "int8") == "openvino"
    for backend, device in [("torch", cpu), ("auto", torch.device("cuda"))]:
        with pytest.raises(InvalidRequest, match="--dtype int8 runs on the OpenVINO backend"):
            check_backend(backend, device, "int8")
    with pytest.raises(InvalidRequest, match="Use one of: fp32, fp16, bf16, int8"):
        pick_dtype(cpu, "int4")


def test_a_quantization_the_memory_cannot_hold_is_refused_before_it_starts(
    tiny_models, tmp_path, monkeypatch
):
    # as SDXL's would be on a 24 GiB machine (about 53 GiB): a sentence, not the process
    # killed part way through; before its weights are read (these cannot be), nothing
    # converted, and nothing held against the model
    broken = tmp_path / "broken"
    shutil.copytree(tiny_models["sd15"]["folder"], broken)
    (broken / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"not weights")
    options = LoadOptions(device="cpu", dtype="int8", backend="openvino", cache_dir=tmp_path)
    monkeypatch.setattr(int8, "BYTES_PER_PARAMETER", 2**40)
    with pytest.raises(OutOfMemory, match=r"needs about \d+ GiB of free memory and this"):
        load_model(describe_model(broken), options)
    assert not [p for p in tmp_path.rglob("*.xml")]
    monkeypatch.undo()
    source = describe_model(tiny_models["sd15"]["folder"])
    # with the memory there, it converts
    assert load_model(source, options).backend.compiled.int8


def test_a_server_runs_a_model_it_cannot_quantize_without_int8(
    tiny_models, openvino_cache, monkeypatch, caplog
):
    # `serve --dtype int8` with SD 1.5 and SDXL models on 24 GiB: int8 where it can be, the
    # rest as by default (and their pictures say so), said once in the log. The default
    # conversions are the run's shared ones; no test makes an int8 one of these folders there
    source = describe_model(tiny_models["sd15"]["folder"])
    options = LoadOptions(device="cpu", dtype="int8", backend="openvino", cache_dir=openvino_cache)
    monkeypatch.setattr(int8, "BYTES_PER_PARAMETER", 2**40)
    cache = ModelCache()
    model = cache.get(source, options)
    assert model.backend.name == "openvino" and not model.backend.compiled.int8
    assert caplog.text.count("The server runs it without int8") == 1
    assert cache.get(source, options) is model and cache.loads == 1
    # let go of and asked for again: read as it ran, the quantization not tried again
    cache.get(describe_model(tiny_models["sdxl"]["folder"]), replace(options, dtype=None))
    again = cache.get(source, options)
    assert again is not model and not again.backend.compiled.int8 and cache.loads == 3
    assert caplog.text.count("The server runs it without int8") == 1
