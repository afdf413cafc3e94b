"""The server's model cache: switching among models that fit costs no load, the least recently
used goes first, and the memory budget is never exceeded."""

import shutil

import pytest
import torch

from sfumato.catalog.cards import describe_model
from sfumato.engine.backends import OpenVINOBackend, TorchBackend
from sfumato.engine.cache import ModelCache, estimate_bytes, loaded_bytes
from sfumato.engine.device import pick_dtype
from sfumato.engine.loader import LoadOptions
from sfumato.errors import OutOfMemory

OPTIONS = LoadOptions(device="cpu")


@pytest.fixture
def three(tiny_models, tmp_path):
    """Three copies of the tiny SD 1.5 model (three files to the cache), and one's size."""
    sources = []
    for name in ("a", "b", "c"):
        folder = tmp_path / name
        shutil.copytree(tiny_models["sd15"]["folder"], folder)
        sources.append(describe_model(folder))
    # in the dtype the CPU loads in by default (bf16 on CPUs with native bf16)
    cpu = torch.device("cpu")
    return sources, estimate_bytes(sources[0].path, TorchBackend(cpu, pick_dtype(cpu)))


def test_the_estimate_is_what_loading_takes(three):
    (source, *_), estimate = three
    model = ModelCache().get(source, OPTIONS)
    assert abs(loaded_bytes(model) - estimate) / estimate < 0.01


def test_switching_among_models_that_fit_loads_each_once(three):
    (a, b, c), size = three
    cache = ModelCache(max_bytes=int(size * 2.5))  # room for two
    first = cache.get(a, OPTIONS)
    cache.get(b, OPTIONS)
    assert cache.get(a, OPTIONS) is first and cache.loads == 2  # warm: no load
    cache.get(c, OPTIONS)  # evicts b, the least recently used
    assert cache.loads == 3 and cache.used_bytes <= cache.max_bytes
    assert cache.get(a, OPTIONS) is first and cache.loads == 3
    cache.get(b, OPTIONS)
    assert cache.loads == 4  # b was gone


def test_a_model_larger_than_the_budget_is_refused_with_a_sentence(three):
    (a, *_), size = three
    cache = ModelCache(max_bytes=size // 2)
    with pytest.raises(OutOfMemory, match="more than the server's memory for models"):
        cache.get(a, OPTIONS)
    assert cache.loads == 0


def test_without_a_budget_one_model_stays(three):
    (a, b, _), _ = three
    cache = ModelCache()
    first = cache.get(a, OPTIONS)
    cache.get(b, OPTIONS)
    assert cache.get(a, OPTIONS) is not first and cache.loads == 3


@pytest.mark.parametrize("arch", ["sd15", "sdxl"])
def test_a_single_file_and_its_folder_are_estimated_alike(tiny_models, arch):
    """The UNet and VAE decoder are told apart in both layouts: on OpenVINO the estimate adds
    a converted copy of those two alone, not of the text encoders."""
    dtype = torch.float32
    folder, single = tiny_models[arch]["folder"], tiny_models[arch]["single"]
    on_torch, on_openvino = TorchBackend(torch.device("cpu"), dtype), OpenVINOBackend(dtype)
    for backend in (on_torch, on_openvino):
        by_folder = estimate_bytes(folder, backend)
        assert abs(estimate_bytes(single, backend) - by_folder) / by_folder < 0.01
    plain, on_openvino = estimate_bytes(folder, on_torch), estimate_bytes(folder, on_openvino)
    assert plain < on_openvino < 2 * plain
