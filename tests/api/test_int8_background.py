"""``sfumato serve --int8-in-background`` (jobs/int8_switch.py): after the warm-up the default
model's UNet is quantized and tried in a process of its own while the server takes jobs; the
server switches to it where it wins, the card keeps the figures, a restart switches from the
card, and a stop ends the trial."""

from __future__ import annotations

import time

import pytest

from sfumato.catalog.cards import read_card, write_card
from sfumato.engine.conversions import converted_folder, is_converted
from sfumato.engine.device import INT8, cpu_has_int8_units, cpu_name
from sfumato.engine.loader import LoadOptions
from sfumato.jobs import int8_switch
from sfumato.metadata.files import read_sfumato_data
from sfumato.studio import Studio, StudioConfig
from tests.api.test_warm_up import tiny_installed  # noqa: F401  (a fixture)

pytestmark = pytest.mark.skipif(
    not cpu_has_int8_units(), reason="this CPU has no int8 dot products (VNNI or AMX)"
)


@pytest.fixture
def on_openvino(tmp_path) -> LoadOptions:
    """OpenVINO, with one conversion cache for every server of a test (each its own data)."""
    return LoadOptions(backend="openvino", cache_dir=tmp_path / "cache")


def int8_of(server, until=("switched", "kept the default", "failed", "off"), timeout=300):
    """/v1/health's int8 trial, once its status is one of ``until``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        trial = server.client.get("/v1/health").json()["int8"]
        if trial["status"] in until:
            return trial
        time.sleep(0.1)
    raise AssertionError(f"the int8 trial did not end: {trial}")


def backend_of(server, tmp_path, job: dict) -> str:
    assert job["status"] == "succeeded", job
    path = tmp_path / f"{job['id']}.png"
    path.write_bytes(server.get(job["images"][0]["url"]).content)
    return read_sfumato_data(path)["model"]["backend"]


def test_the_default_model_is_tried_in_int8_and_switched_to_where_it_wins(
    make_server,
    tiny_installed,  # noqa: F811
    on_openvino,
    tmp_path,
    monkeypatch,
):
    # a tiny network's calls are too short for int8 to win on time: that guard is eased
    # here, and its own test is the one below
    monkeypatch.setattr(int8_switch, "MAX_CALL_RATIO", 100.0)
    server = make_server(warm_up=True, int8_in_background=True, load=on_openvino)
    assert server.client.get("/v1/health").json()["int8"]["status"] == "waiting for the warm-up"
    # jobs run on the default backend while the trial runs
    assert backend_of(server, tmp_path, server.generate()) == "openvino"
    trial = int8_of(server)
    assert trial["status"] == "switched" and trial["model"] == "tiny", trial
    figures = trial["figures"]
    assert figures["switched"] and figures["psnr_db"] >= int8_switch.MIN_PSNR_DB
    assert figures["unet_call_s"] > 0 and figures["default_unet_call_s"] > 0
    assert figures["quantize_s"] >= 0 and figures["peak_gib"] > 0
    assert figures["cpu"] == cpu_name()
    # the card keeps them, beside what it said before
    card = read_card(tiny_installed)
    assert card.extra["int8"] == figures and card.defaults["width"] == 64
    # from now on the model's jobs run in int8, read from the conversion cache
    assert backend_of(server, tmp_path, server.generate()) == "openvino int8"

    # a restart on the same CPU switches at once, from the card: no trial again
    again = make_server(warm_up=True, int8_in_background=True, load=on_openvino)
    trial = int8_of(again)
    assert trial["status"] == "switched" and trial["figures"] == figures
    assert backend_of(again, tmp_path, again.generate()) == "openvino int8"

    # tried again (the card's record removed) where the pictures must be closer than int8's
    # are: the trial reads the quantized network from the cache, and keeps the default
    del card.extra["int8"]
    write_card(tiny_installed, card)
    monkeypatch.setattr(int8_switch, "MIN_PSNR_DB", 99.0)
    strict = make_server(warm_up=True, int8_in_background=True, load=on_openvino)
    trial = int8_of(strict)
    assert trial["status"] == "kept the default", trial
    assert "dB from the default's" in trial["message"] and trial["figures"]["quantize_s"] is None
    assert read_card(tiny_installed).extra["int8"]["switched"] is False
    assert backend_of(strict, tmp_path, strict.generate()) == "openvino"


def test_int8_is_kept_off_where_it_would_not_win(
    make_server,
    tiny_installed,  # noqa: F811
    on_openvino,
    monkeypatch,
):
    assert make_server().client.get("/v1/health").json()["int8"]["status"] == "off"
    monkeypatch.setattr(int8_switch, "cpu_has_int8_units", lambda: False)
    server = make_server(warm_up=True, int8_in_background=True, load=on_openvino)
    trial = int8_of(server, timeout=120)
    assert trial["status"] == "off" and "VNNI or AMX" in trial["message"], trial
    on_torch = make_server(warm_up=True, int8_in_background=True, load=LoadOptions(backend="torch"))
    trial = int8_of(on_torch, timeout=120)
    assert trial["status"] == "off" and "PyTorch" in trial["message"], trial
    assert read_card(tiny_installed).extra.get("int8") is None  # nothing tried, nothing kept


def test_a_scaled_out_server_tries_nothing_in_its_api_process(tmp_path, monkeypatch):
    monkeypatch.delenv("SFUMATO_WARM_UP")
    studio = Studio(
        StudioConfig(
            data_dir=tmp_path, broker_url="redis://127.0.0.1:6379/15", int8_in_background=True
        )
    )
    trial = studio.int8.view()
    assert trial["status"] == "off" and "follows the warm-up" in trial["message"]


def test_stopping_the_server_ends_the_trial(make_server, tiny_installed, on_openvino):  # noqa: F811
    server = make_server(warm_up=True, int8_in_background=True, load=on_openvino)
    int8_of(server, until=("quantizing",), timeout=120)
    child = server.studio.int8._child
    deadline = time.monotonic() + 30
    while child is None and time.monotonic() < deadline:  # the status comes just before it
        time.sleep(0.05)
        child = server.studio.int8._child
    server.client.__exit__(None, None, None)  # the server stops
    assert child.wait(timeout=30) is not None
    cache = server.studio.config.load.cache_dir
    assert not is_converted(converted_folder(cache, tiny_installed, None, INT8))
    assert read_card(tiny_installed).extra.get("int8") is None
