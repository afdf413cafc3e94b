"""Prompt craft over HTTP: what the model reads of a prompt, and the words a model or LoRA
knows, on a real app with the demo model and a real kohya LoRA with its training tags."""

import json
import shutil
import time
from pathlib import Path

import pytest
from safetensors import safe_open
from safetensors.torch import save_file

from sfumato.engine import conditioning, prompts
from sfumato.engine.parameters import MAX_PROMPT_CHARS
from sfumato.engine.tokenizers import clip_tokenizer

DATA = Path(__file__).resolve().parents[1] / "data"
DEMO_LORA = DATA / "demo-white-background.safetensors"
TAGS = {
    "10_white": {"white background": 40, "red circle": 12, "a": 30},
    "5_plain": {"white background": 10, "plain": 7},
}


def kohya_lora_with_tags(folder: Path, name: str = "white-tagged") -> Path:
    """The demo LoRA's own weights under kohya's header, with ``ss_tag_frequency`` as
    sd-scripts writes it (one count table per dataset folder)."""
    with safe_open(DEMO_LORA, "pt") as f:
        tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
        metadata = dict(f.metadata() or {})
    metadata |= {
        "ss_output_name": name,
        "ss_network_module": "networks.lora",
        "ss_tag_frequency": json.dumps(TAGS),
    }
    path = folder / f"{name}.safetensors"
    save_file(tensors, path, metadata=metadata)
    return path


@pytest.fixture
def served(make_server, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    kohya_lora_with_tags(models)
    shutil.copy(DEMO_LORA, models)
    (models / "white-tagged.sfumato.toml").write_text('trigger_words = ["whitebg style"]\n')
    return make_server(run_worker=False)


def test_a_prompt_is_read_as_the_engine_encodes_it(served):
    prompt = "masterpiece, (photorealistic castle:1.3) BREAK at night <lora:white-tagged:0.7>"
    answer = served.post(
        "/v1/prompts/tokenize", json={"prompt": prompt, "negative_prompt": "blurry, [ugly]"}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] and body["encoders"] == 1 and body["note"] is None
    read = body["prompt"]
    expected = conditioning._chunks(prompts.extract_lora_tags(prompt)[0], clip_tokenizer())
    assert [c["ids"] for c in read["chunks"]] == [c.tokens for c in expected]
    assert [c["weights"] for c in read["chunks"]] == [
        [round(w, 4) for w in c.weights] for c in expected
    ]
    assert [c["starts"] for c in read["chunks"]] == ["start", "BREAK"]
    assert read["counter"] == "77/150 (2 x 75)"
    assert read["split_words"] == ["photorealistic"]
    words = {w["text"]: w for w in read["chunks"][0]["words"]}
    assert words["castle"]["weight"] == 1.3 and words["photorealistic"]["split"]
    assert words["photorealistic"]["pieces"] == ["photo", "realistic</w>"]
    (lora,) = read["loras"]
    assert lora == {
        "name": "white-tagged",
        "weight": 0.7,
        "installed": True,
        "problem": None,
        "trigger_words": ["whitebg style"],
    }
    negative = body["negative_prompt"]
    assert negative["counter"] == "3/75" and negative["empty_chunks_added"] == 1
    assert body["chunks_encoded"] == 2


def test_missing_loras_and_models_are_said_in_a_sentence(served):
    answer = served.post("/v1/prompts/tokenize", json={"prompt": "a cat <lora:nothing_here>"})
    (lora,) = answer.json()["prompt"]["loras"]
    assert not lora["installed"] and "No LoRA named 'nothing_here'" in lora["problem"]
    assert "white-tagged" in lora["problem"]  # the sentence lists what is installed

    unknown = served.post("/v1/prompts/tokenize", json={"prompt": "a", "model": "no-such-model"})
    assert unknown.status_code == 404
    message = unknown.json()["error"]["message"]
    assert "No model named 'no-such-model'" in message and "sfumato-demo" in message.lower()
    assert str(served.studio.data.root) not in message  # no folder of the server's

    folder = served.studio.config.models_dirs[0]
    (folder / "broken.safetensors").write_bytes(b"not a model at all")
    broken = served.post("/v1/prompts/tokenize", json={"prompt": "a", "model": "broken"})
    assert broken.status_code == 404
    assert "broken cannot be used" in broken.json()["error"]["message"]
    assert str(folder) not in broken.json()["error"]["message"]


def test_a_template_is_read_as_written_and_says_so(served):
    body = served.post("/v1/prompts/tokenize", json={"prompt": "a {red|blue} circle"}).json()
    assert any("template as written" in note for note in body["prompt"]["notes"])
    plain = served.post("/v1/prompts/tokenize", json={"prompt": "a red circle"}).json()
    assert not any("template" in note for note in plain["prompt"]["notes"])


def test_long_prompts_are_bounded_and_answered_in_milliseconds(served):
    long = ", ".join(f"a photorealistic lighthouse number {i}" for i in range(300))[
        :MAX_PROMPT_CHARS
    ]
    start = time.perf_counter()
    answer = served.post("/v1/prompts/tokenize", json={"prompt": long, "negative_prompt": long})
    assert answer.status_code == 200 and time.perf_counter() - start < 2
    body = answer.json()
    assert len(body["prompt"]["chunks"]) > 10
    assert any("Nothing is dropped" in note for note in body["prompt"]["notes"])
    too_long = served.post("/v1/prompts/tokenize", json={"prompt": "a" * (MAX_PROMPT_CHARS + 1)})
    assert too_long.status_code == 422
    unknown_field = served.post("/v1/prompts/tokenize", json={"prompt": "a", "steps": 4})
    assert unknown_field.status_code == 422


def test_a_loras_training_tags_most_frequent_first(served):
    answer = served.get("/v1/loras/white-tagged/keywords")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["kind"] == "LoRA" and body["trigger_words"] == ["whitebg style"]
    assert body["keywords"][:3] == [
        {"word": "white background", "count": 50},  # summed over both datasets
        {"word": "a", "count": 30},
        {"word": "red circle", "count": 12},
    ]
    assert body["total"] == 4 and body["source"] == "training tags"
    assert served.get("/v1/loras/white-tagged/keywords?limit=1").json()["keywords"] == [
        {"word": "white background", "count": 50}
    ]
    plain = served.get("/v1/loras/demo-white-background/keywords").json()
    assert plain["keywords"] == [] and plain["source"] is None  # its header has no tags


def test_a_models_keywords_come_from_its_card(served):
    body = served.get("/v1/models/sfumato-demo/keywords?limit=5").json()
    counts = [k["count"] for k in body["keywords"]]
    assert len(counts) == 5 and counts == sorted(counts, reverse=True)
    assert body["keywords"][0]["word"] == "a" and body["total"] > 5


def test_unknown_names_and_hostile_input(served):
    missing = served.get("/v1/models/nothing/keywords")
    assert missing.status_code == 404
    assert "No model named 'nothing'" in missing.json()["error"]["message"]
    assert "No LoRA named" in served.get("/v1/loras/nothing/keywords").json()["error"]["message"]
    assert served.get("/v1/models/" + "x" * 300 + "/keywords").status_code == 422
    assert served.get("/v1/loras/white-tagged/keywords?limit=-1").status_code == 422
    assert served.get("/v1/loras/white-tagged/keywords?limit=99999").status_code == 422
    # a LoRA is not a model, nor the other way round
    assert served.get("/v1/models/white-tagged/keywords").status_code == 404
    # the same for everyone: another user sees the server's models, nothing of ann's
    bob = served.user("bob")
    assert served.get("/v1/loras/white-tagged/keywords", bob).json()["total"] == 4


def test_signing_in_is_needed(served):
    assert served.client.post("/v1/prompts/tokenize", json={"prompt": "a"}).status_code == 401
    assert served.client.get("/v1/models/sfumato-demo/keywords").status_code == 401
