"""The server's front door for LoRAs users have: a kind the engine cannot apply is answered at
once, with the engine's sentence, before the request queues."""

from tests.api.conftest import make_server, server  # noqa: F401 (fixtures)
from tests.fixtures.lora_files import kohya_lora
from tests.fixtures.tiny_models import tiny_sd15


def test_a_loha_named_in_a_request_is_answered_with_a_sentence_before_it_queues(
    server,  # noqa: F811
    tmp_path,
):
    pipe = tiny_sd15()
    folder = tmp_path / "models" / "Lora"
    folder.mkdir(parents=True)
    kohya_lora(folder / "tiny_loha.safetensors", pipe.unet, [pipe.text_encoder], algo="loha")
    body = {"prompt": "a red circle <lora:tiny_loha:0.8>"}  # as A1111 users write it
    answer = server.post("/v1/generations", json=body)
    assert answer.status_code == 400, answer.text
    message = answer.json()["error"]["message"]
    assert "The LoRA tiny_loha is a LyCORIS LoHa file, which sfumato cannot apply yet" in message
    assert "LoCon" in message
    assert server.get("/v1/generations").json()["generations"] == []  # nothing queued
