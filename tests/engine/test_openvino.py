"""The OpenVINO backend on real models: the same pictures as PyTorch's to within rounding,
converted once and read from the cache after, DeepCache on it, and PyTorch's weights for what it
cannot run (LoRAs)."""

import importlib.util
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from subprocess import PIPE

import numpy as np
import pytest
import torch
from PIL import Image

from sfumato import demo
from sfumato.catalog.cards import describe_model
from sfumato.engine.backends import OpenVINOBackend, check_backend
from sfumato.engine.backends.openvino_networks import Compiled
from sfumato.engine.cache import ModelCache, estimate_bytes, loaded_bytes
from sfumato.engine.checkpoint import inspect_model
from sfumato.engine.device import pick_dtype
from sfumato.engine.generate import generate
from sfumato.engine.images import prepare
from sfumato.engine.loader import LoadOptions, load_model
from sfumato.engine.loras import LoraSpec
from sfumato.engine.request import GenerationRequest, resolve
from sfumato.errors import InvalidRequest, UnsupportedModel
from tests.engine.test_loader import _lightning_lora_file, _lightning_unet_file
from tests.engine.test_loras import kohya_sd15_lora, peft_sdxl_lora
from tests.engine.test_shortcuts import _psnr

LORA = demo.WEIGHTS.parents[2] / "tests" / "data" / "demo-white-background.safetensors"


def _settings(model, prompt="a red circle on a blue background", **fields):
    request = GenerationRequest(prompt, seed=fields.pop("seed", 1), **fields)
    return resolve(request, model.source.family, model.source.effective_defaults)[0]


class Counting:
    """A compiled OpenVINO model that counts its calls (to see which backend ran)."""

    def __init__(self, compiled):
        self.compiled, self.calls = compiled, 0

    def __call__(self, inputs):
        self.calls += 1
        return self.compiled(inputs)


@pytest.fixture(scope="module")
def demo_pair(openvino_cache):
    """The demo model on PyTorch and on OpenVINO (same dtype: the CPU's default); its
    conversion is the run's shared one (test_shortcuts.py reads it too)."""
    cache = openvino_cache
    source = describe_model(demo.WEIGHTS)
    torch_model = load_model(source, device="cpu", backend="torch")
    ov_model = load_model(source, LoadOptions(device="cpu", backend="openvino", cache_dir=cache))
    ov_model.backend.compiled.unet = Counting(ov_model.backend.compiled.unet)
    ov_model.backend.compiled.decoder = Counting(ov_model.backend.compiled.decoder)
    return torch_model, ov_model


def test_the_demo_model_on_openvino_draws_what_pytorch_draws(demo_pair):
    torch_model, ov_model = demo_pair
    # the model's own size, and one its UNet does not divide evenly (latents 9x11)
    for seed, size in enumerate([{}, {"width": 72, "height": 88}, {}]):
        a = np.asarray(generate(torch_model, _settings(torch_model, seed=seed, **size))[0])
        b = np.asarray(generate(ov_model, _settings(ov_model, seed=seed, **size))[0])
        # measured 37-40 dB: differences of a level or two (the quality guard on 28 scenes
        # is in test_shortcuts.py)
        assert _psnr(a, b) >= 32
    assert ov_model.backend.compiled.unet.calls == 3 * 12  # every step of every picture on OpenVINO


@pytest.mark.parametrize("arch", ["sd15", "sdxl"])
def test_each_family_converts_once_and_loads_from_the_cache(arch, tiny_models, tmp_path):
    source = inspect_model(tiny_models[arch]["single"])
    options = LoadOptions(
        device="cpu",
        backend="openvino",
        cache_dir=tmp_path,
        config_dir=tiny_models[arch]["config"],
    )
    first = load_model(source, options)
    assert first.backend.compiled.converted_s is not None
    files = sorted(p.name for p in first.backend.compiled.folder.iterdir())
    assert files == [
        "sfumato.json",
        "unet.bin",
        "unet.xml",
        "unet_shallow.bin",  # DeepCache's cached steps
        "unet_shallow.xml",
        "vae_decoder.bin",
        "vae_decoder.xml",
    ]
    again = load_model(source, options)
    assert (
        again.backend.compiled.converted_s is None
        and again.backend.compiled.folder == first.backend.compiled.folder
    )

    plain = load_model(source, LoadOptions(device="cpu", config_dir=tiny_models[arch]["config"]))
    # guidance, several pictures and a size other than the conversion's: shapes are open
    fields = {"width": 96, "height": 64, "steps": 3, "batch_size": 2, "guidance": 5.0}
    a = generate(plain, _settings(plain, **fields))
    b = generate(again, _settings(again, **fields))
    # DeepCache: of 6 steps, the 3rd and 5th run on kept features (the shallow network)
    again.backend.compiled.shallow = Counting(again.backend.compiled.shallow)
    deep = fields | {"steps": 6, "deep_cache": 2}
    a += generate(plain, _settings(plain, **deep))
    b += generate(again, _settings(again, **deep))
    assert again.backend.compiled.shallow.calls == 2 and not _holds_pytorch_unet(again)
    for x, y in zip(a, b, strict=True):
        assert x.size == (96, 64)
        assert _psnr(np.asarray(x), np.asarray(y)) >= 30


def _own_copy(tiny_models, tmp_path) -> tuple[Path, LoadOptions]:
    """A copy of the tiny SD 1.5 single file (to touch or remove) and options to convert it."""
    single = tmp_path / "model.safetensors"
    single.write_bytes(tiny_models["sd15"]["single"].read_bytes())
    options = LoadOptions(
        device="cpu",
        backend="openvino",
        cache_dir=tmp_path,
        config_dir=tiny_models["sd15"]["config"],
    )
    return single, options


def test_a_changed_model_file_is_converted_again(tiny_models, tmp_path):
    single, options = _own_copy(tiny_models, tmp_path)
    first = load_model(inspect_model(single), options)
    before = first.backend.compiled.folder
    other_dtype = "bf16" if first.dtype == torch.float32 else "fp32"
    in_other_dtype = load_model(
        inspect_model(single), replace(options, dtype=other_dtype)
    ).backend.compiled.folder
    single.touch()  # a replaced file: new modification time
    after = load_model(inspect_model(single), options).backend.compiled
    assert after.converted_s is not None and after.folder != before
    # the old file's conversion is gone (gigabytes for a real model); another dtype's is kept
    # until that one is loaded again
    assert not before.exists() and in_other_dtype.is_dir()
    assert sorted(p.name for p in (tmp_path / "openvino").iterdir() if p.is_dir()) == sorted(
        [after.folder.name, in_other_dtype.name]
    )


def test_a_conversion_that_fails_says_so_and_leaves_nothing_half_written(
    tiny_models, tmp_path, monkeypatch
):
    import openvino

    real_save = openvino.save_model

    def disk_full(model, path, *args, **kwargs):
        real_save(model, path, *args, **kwargs)  # the UNet's files are written, then:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(openvino, "save_model", disk_full)
    options = LoadOptions(device="cpu", backend="openvino", cache_dir=tmp_path)
    with pytest.raises(UnsupportedModel, match="No space left on device.*--backend torch"):
        load_model(describe_model(tiny_models["sd15"]["folder"]), options)
    assert [p.name for p in (tmp_path / "openvino").iterdir() if p.suffix != ".lock"] == []


LOAD = """
import json, sys
from pathlib import Path
from sfumato.catalog.cards import describe_model
from sfumato.engine.loader import LoadOptions, load_model
options = LoadOptions(device="cpu", backend="openvino", cache_dir=Path(sys.argv[2]))
model = load_model(describe_model(Path(sys.argv[1])), options)
compiled = model.backend.compiled
print(json.dumps([compiled.converted_s is not None, str(compiled.folder)]))
"""


def test_two_processes_loading_at_once_convert_once(tiny_models, tmp_path):
    # two processes (say, two servers on one data folder): one converts, the other waits for
    # it and reads its result instead of converting too and replacing the folder under it
    model = str(tiny_models["sd15"]["folder"])
    loads = [
        subprocess.Popen([sys.executable, "-c", LOAD, model, str(tmp_path)], stdout=PIPE, text=True)
        for _ in range(2)
    ]
    results = [json.loads(load.communicate()[0].splitlines()[-1]) for load in loads]
    assert sorted(converted for converted, _ in results) == [False, True]
    assert results[0][1] == results[1][1]
    assert (
        load_model(
            describe_model(Path(model)),
            LoadOptions(device="cpu", backend="openvino", cache_dir=tmp_path),
        ).backend.compiled.converted_s
        is None
    )


def _holds_pytorch_unet(model) -> bool:
    return any(p.device.type != "meta" for p in model.pipe.unet.parameters())


def _holds_pytorch_decoder(model) -> bool:
    return any(p.device.type != "meta" for p in model.pipe.vae.decoder.parameters())


def test_loras_run_on_pytorchs_weights(demo_pair):
    torch_model, ov_model = demo_pair
    # converted, PyTorch's UNet and VAE decoder are let go: they would double their memory
    assert not _holds_pytorch_unet(ov_model) and _holds_pytorch_unet(torch_model)
    assert not _holds_pytorch_decoder(ov_model) and _holds_pytorch_decoder(torch_model)
    lora = [LoraSpec(LORA, "demo-white-background", 0.9)]
    calls, decodes = ov_model.backend.compiled.unet.calls, ov_model.backend.compiled.decoder.calls
    with_lora = generate(ov_model, _settings(ov_model), loras=lora)[0]
    assert ov_model.backend.compiled.unet.calls == calls  # OpenVINO's network has no LoRA in it
    assert ov_model.backend.compiled.decoder.calls == decodes + 1  # LoRAs leave the VAE alone
    same = generate(torch_model, _settings(torch_model), loras=lora)[0]
    no_lora = generate(torch_model, _settings(torch_model))[0]
    # its UNet was read from disk again for the request, as loaded: the picture is PyTorch's
    # to within the decoder's rounding on OpenVINO (86 dB and more measured in f32; in bf16
    # it rounds more, as in the test above), and the LoRA took effect (about 5 dB)
    assert _psnr(np.asarray(with_lora), np.asarray(same)) >= 35
    assert _psnr(np.asarray(with_lora), np.asarray(no_lora)) < 30
    assert not _holds_pytorch_unet(ov_model)  # and let go after it
    # and the next plain request is on OpenVINO again
    generate(ov_model, _settings(ov_model))
    assert ov_model.backend.compiled.unet.calls == calls + 12


def test_deep_cache_runs_on_openvino_and_draws_what_pytorch_draws(demo_pair):
    torch_model, ov_model = demo_pair
    ov_model.backend.compiled.shallow = Counting(ov_model.backend.compiled.shallow)
    calls = ov_model.backend.compiled.unet.calls
    deep = generate(ov_model, _settings(ov_model, deep_cache=2))[0]
    # 12 steps: the first 3 whole, then every other one, and the last: 4 on kept features
    assert (
        ov_model.backend.compiled.unet.calls == calls + 8
        and ov_model.backend.compiled.shallow.calls == 4
    )
    assert not _holds_pytorch_unet(ov_model)  # PyTorch's UNet was not read for it
    same = generate(torch_model, _settings(torch_model, deep_cache=2))[0]
    assert _psnr(np.asarray(deep), np.asarray(same)) >= 32  # measured 49-53 dB
    dense = generate(ov_model, _settings(ov_model))[0]
    assert _psnr(np.asarray(deep), np.asarray(dense)) < 60  # the shortcut was taken


def test_a_model_file_gone_since_loading_is_a_sentence_for_a_lora(tiny_models, tmp_path):
    single, options = _own_copy(tiny_models, tmp_path)
    model = load_model(inspect_model(single), options)
    lora = [LoraSpec(kohya_sd15_lora(tmp_path / "style.safetensors", model.pipe.unet), "style", 1)]
    single.unlink()
    with pytest.raises(UnsupportedModel, match="Could not read model.safetensors again"):
        generate(model, _settings(model, width=64, height=64), loras=lora)
    # plain requests do not need the file
    assert generate(model, _settings(model, width=64, height=64))[0].size == (64, 64)


@pytest.mark.parametrize("kind", ["unet", "lora"])
def test_a_lightning_model_reads_its_lightning_unet_again_for_pytorch(kind, tiny_models, tmp_path):
    lora = [LoraSpec(peft_sdxl_lora(tmp_path / "style.safetensors"), "style", 1.0)]
    file = tmp_path / f"sdxl_lightning_4step_{kind}.safetensors"
    (_lightning_unet_file if kind == "unet" else _lightning_lora_file)(file)
    source = inspect_model(tiny_models["sdxl"]["single"], lightning=file)
    options = LoadOptions(device="cpu", config_dir=tiny_models["sdxl"]["config"], lightning=file)
    on_torch = load_model(source, options)
    on_openvino = load_model(source, replace(options, backend="openvino", cache_dir=tmp_path))
    assert not _holds_pytorch_unet(on_openvino)
    pictures = [
        np.asarray(generate(model, _settings(model, width=64, height=64), loras=lora)[0])
        for model in (on_torch, on_openvino)
    ]
    # the SDXL UNet from the single file, then the Lightning UNet or LoRA on it, as at load
    # (the VAE decode on OpenVINO: within rounding)
    assert _psnr(*pictures) >= 35
    assert not _holds_pytorch_unet(on_openvino)


def test_guidance_cutoff_image_to_image_and_inpainting_run_on_openvino(demo_pair):
    torch_model, ov_model = demo_pair
    for fields in ({"guidance_cutoff": 0.5}, {"strength": 0.6}, {"strength": 1.0}):
        inputs, picture, mask = None, Image.new("RGB", (64, 64), "yellow"), None
        if fields.get("strength") == 1.0:
            mask = Image.new("L", (64, 64), 0)
            mask.paste(255, (16, 16, 48, 48))
        if "strength" in fields:
            inputs = prepare(picture, mask, 64, 64)
            fields |= {"init_image": picture, "mask_image": mask}
        pictures = []
        for model in (torch_model, ov_model):
            pictures.append(np.asarray(generate(model, _settings(model, **fields), inputs)[0]))
        assert _psnr(*pictures) >= 30, fields


def test_a_server_counts_the_converted_copy_in_its_memory(tiny_models, openvino_cache):
    source = describe_model(tiny_models["sd15"]["folder"])
    options = LoadOptions(device="cpu", backend="openvino", cache_dir=openvino_cache)
    cache = ModelCache()
    model = cache.get(source, options)
    assert isinstance(model.backend.compiled, Compiled) and model.backend.compiled.bytes > 0
    assert cache.used_bytes == loaded_bytes(model) > loaded_bytes(load_model(source, device="cpu"))
    # and it made room for that much before loading: the estimate from the headers is close
    estimate = estimate_bytes(source.path, OpenVINOBackend(pick_dtype(torch.device("cpu"))))
    assert abs(estimate - loaded_bytes(model)) / loaded_bytes(model) < 0.02


def test_the_vae_decoder_is_compiled_for_the_size_it_decodes(tiny_models, openvino_cache):
    """Compiled for one shape, OpenVINO plans the decoder's working memory for it (less than
    the open network keeps: benchmarks/RESULTS.md); compiled once per size, not per call, and
    decoding what the open network decodes."""
    import openvino as ov

    source = describe_model(tiny_models["sd15"]["folder"])
    options = LoadOptions(device="cpu", backend="openvino", cache_dir=openvino_cache)
    model = load_model(source, options)
    decoder, channels = model.backend.compiled.decoder, model.pipe.vae.config.latent_channels
    generate(model, _settings(model, width=64, height=64))
    side = 64 // model.pipe.vae_scale_factor
    assert decoder.compiled_for == [((1, channels, side, side),)] and decoder.compilations == 1
    open_network = ov.Core().compile_model(model.backend.compiled.folder / "vae_decoder.xml", "CPU")
    random = np.random.default_rng(0)
    for shape in [(1, channels, side, side), (2, channels, 12, 8), (2, channels, 12, 8)]:
        latents = random.standard_normal(shape, dtype=np.float32)
        np.testing.assert_allclose(decoder([latents])[0], open_network([latents])[0], atol=1e-3)
        assert decoder.compiled_for == [(shape,)]  # one kept: the last
    assert decoder.compilations == 2


def test_the_unet_is_compiled_for_the_shapes_in_use(tiny_models, openvino_cache):
    """Compiled for each shape it is called at (faster than with its shapes open, and no
    kernels made at its first call: benchmarks/RESULTS.md), two kept (the guidance cutoff
    changes the batch mid-picture), the least recently used dropped for a third; drawing what
    the network with its shapes open draws."""
    source = describe_model(tiny_models["sd15"]["folder"])
    options = LoadOptions(device="cpu", backend="openvino", cache_dir=openvino_cache)
    model = load_model(source, options)
    unet = model.backend.compiled.unet
    assert unet.compiled_for == [] and unet.slots == 2  # nothing compiled before it is called
    shapes_open = load_model(source, replace(options, unet_shapes=0))
    assert not hasattr(shapes_open.backend.compiled.unet, "compiled_for")
    channels, text = model.pipe.unet.config.in_channels, model.pipe.text_encoder.config.hidden_size

    def shapes(batch: int, size: int) -> tuple:
        side = size // model.pipe.vae_scale_factor
        return ((batch, channels, side, side), (), (batch, 77, text))

    cutoff = {"width": 64, "height": 64, "guidance": 7.5, "guidance_cutoff": 0.5}
    for seed in (1, 2):  # the second picture compiles nothing
        fixed = np.asarray(generate(model, _settings(model, seed=seed, **cutoff))[0])
        assert unet.compiled_for == [shapes(2, 64), shapes(1, 64)] and unet.compilations == 2
        opened = np.asarray(generate(shapes_open, _settings(shapes_open, seed=seed, **cutoff))[0])
        assert _psnr(fixed, opened) >= 40
    generate(model, _settings(model, width=96, height=96, guidance=7.5))
    # the batch of 2 at 64 px was the least recently used (the cutoff's last steps ran 1)
    assert unet.compiled_for == [shapes(1, 64), shapes(2, 96)] and unet.compilations == 3


def test_a_server_without_room_for_two_unet_copies_keeps_its_shapes_open(
    tiny_models, openvino_cache
):
    """Each shape compiled holds its own copy of the UNet's weights: a memory for models with
    room for the model and one copy runs it with the shapes open rather than refusing it."""
    source = describe_model(tiny_models["sd15"]["folder"])
    options = LoadOptions(device="cpu", backend="openvino", cache_dir=openvino_cache)
    dtype = pick_dtype(torch.device("cpu"))
    fixed = estimate_bytes(source.path, OpenVINOBackend(dtype))
    shapes_open = estimate_bytes(source.path, OpenVINOBackend(dtype, unet_shapes=0))
    assert shapes_open < fixed
    cache = ModelCache(max_bytes=(shapes_open + fixed) // 2)
    model = cache.get(source, options)
    assert not hasattr(model.backend.compiled.unet, "compiled_for")
    assert cache.used_bytes == loaded_bytes(model) <= cache.max_bytes
    roomy = ModelCache(max_bytes=fixed * 2).get(source, options)
    assert roomy.backend.compiled.unet.slots == 2


def test_auto_is_openvino_on_the_cpu_and_pytorch_elsewhere(monkeypatch):
    monkeypatch.delenv("SFUMATO_BACKEND")
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert check_backend(None, cpu) == check_backend("auto", cpu) == "openvino"
    assert check_backend(None, cuda) == check_backend("auto", torch.device("mps")) == "torch"
    assert check_backend("torch", cpu) == "torch"
    monkeypatch.setenv("SFUMATO_BACKEND", "torch")
    assert check_backend(None, cpu) == "torch" and check_backend("openvino", cpu) == "openvino"
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "openvino" else real(name)
    )
    assert check_backend("auto", cpu) == "torch"  # without the package


def test_a_model_that_will_not_convert_runs_on_pytorch_by_default(
    tiny_models, tmp_path, monkeypatch, caplog
):
    import openvino

    def fails(*args, **kwargs):
        raise RuntimeError("Unsupported operation")

    real = openvino.convert_model
    monkeypatch.setattr(openvino, "convert_model", fails)
    monkeypatch.delenv("SFUMATO_BACKEND")
    source = describe_model(tiny_models["sd15"]["folder"])
    model = load_model(source, device="cpu", cache_dir=tmp_path)  # auto
    assert model.backend.name == "torch" and _holds_pytorch_unet(model)
    assert "Unsupported operation" in caplog.text and "Running it on PyTorch" in caplog.text
    assert generate(model, _settings(model, width=64, height=64))[0].size == (64, 64)
    # the next load does not try again (a failed trace costs time and memory at every load)
    caplog.clear()
    monkeypatch.setattr(openvino, "convert_model", lambda *a, **k: pytest.fail("tried again"))
    again = load_model(source, device="cpu", cache_dir=tmp_path)
    assert again.backend.name == "torch" and "Unsupported operation" in caplog.text
    # asked for by name, it is tried again, and its failure is an error that says what to do
    monkeypatch.setattr(openvino, "convert_model", fails)
    with pytest.raises(UnsupportedModel, match="Unsupported operation.*--backend torch"):
        load_model(source, device="cpu", cache_dir=tmp_path, backend="openvino")
    # once a conversion asked for by name succeeds, the default uses it again
    monkeypatch.setattr(openvino, "convert_model", real)
    load_model(source, device="cpu", cache_dir=tmp_path, backend="openvino")
    assert load_model(source, device="cpu", cache_dir=tmp_path).backend.name == "openvino"


def test_wrong_backends_are_refused_with_a_sentence(monkeypatch):
    with pytest.raises(InvalidRequest, match="Use one of: auto, torch, openvino"):
        check_backend("tensorrt", torch.device("cpu"))
    monkeypatch.setenv("SFUMATO_BACKEND", "cuda")
    with pytest.raises(InvalidRequest, match=r"'cuda' \(from SFUMATO_BACKEND\)"):
        check_backend(None, torch.device("cpu"))
    with pytest.raises(InvalidRequest, match="runs on the CPU, not cuda"):
        check_backend("openvino", torch.device("cuda"))
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "openvino" else real(name)
    )
    with pytest.raises(InvalidRequest, match="pip install openvino"):
        check_backend("openvino", torch.device("cpu"))
