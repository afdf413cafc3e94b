"""The backend interface: chosen once from the load options, asked by the engine for each
request (which networks run where, what the pictures' metadata says) and by the cache for
memory. A backend is one class: a new one needs nothing else of the engine."""

import contextlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from sfumato.engine.backends import OpenVINOBackend, TorchBackend, choose_backend
from sfumato.engine.generate import generate
from sfumato.engine.loader import LoadOptions
from sfumato.engine.loras import LoraSpec
from sfumato.engine.request import GenerationRequest, resolve

CPU = torch.device("cpu")
LORA = [LoraSpec(Path("style.safetensors"), "style", 1.0)]


def test_the_options_choose_the_backend_once(monkeypatch):
    monkeypatch.delenv("SFUMATO_BACKEND")
    chosen = choose_backend(LoadOptions(device="cpu", backend="torch"), CPU)
    assert isinstance(chosen, TorchBackend) and chosen.device == CPU
    by_default = choose_backend(LoadOptions(device="cpu", cache_dir=Path("c")), CPU)
    assert isinstance(by_default, OpenVINOBackend) and by_default.by_default
    assert by_default.cache_dir == Path("c") and not by_default.quantized
    # asked for by name, or in int8: a model it cannot convert fails its load instead
    named = choose_backend(LoadOptions(backend="openvino", dtype="fp32"), CPU)
    assert not named.by_default and named.dtype == torch.float32
    int8 = choose_backend(LoadOptions(dtype="int8"), CPU)
    assert int8.quantized and not int8.by_default and int8.dtype != "int8"


def test_what_the_pictures_say_ran_them():
    assert TorchBackend(CPU, torch.float32).name_for(LORA) == "torch"
    on_openvino = OpenVINOBackend(torch.float32)
    assert on_openvino.name_for([]) == "openvino"
    assert on_openvino.name_for(LORA) == "torch"  # LoRAs run on PyTorch's UNet
    assert OpenVINOBackend(torch.float32, quantized=True).name_for([]) == "openvino int8"


class Counting(TorchBackend):
    """A backend of its own: PyTorch, counting the UNet calls a request routes through it."""

    name = "counting"
    calls = 0

    @contextlib.contextmanager
    def running(self, pipe, loras, cache):
        unet = pipe.unet

        def forward(*args, **kwargs):
            self.calls += 1
            return type(unet).forward(unet, *args, **kwargs)

        unet.forward = forward
        try:
            yield
        finally:
            del unet.forward


def test_a_new_backend_is_one_class(loaded):
    model = loaded["sd15"]
    settings, _ = resolve(
        GenerationRequest("a red circle", width=64, height=64, steps=3, seed=1),
        model.source.family,
    )
    ours = replace(model, backend=Counting(CPU, model.dtype), variants={})
    picture = np.asarray(generate(ours, settings)[0])
    assert np.array_equal(picture, np.asarray(generate(model, settings)[0]))
    assert ours.backend.calls == 3  # a call a step (the prompt and the negative batched)
    assert ours.backend.name_for([]) == "counting"
