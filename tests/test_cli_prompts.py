"""``sfumato tokenize``: the chunks, counts, split words and weights, for the demo model and an
SDXL one (whose two encoders share the count)."""

import json

from typer.testing import CliRunner

from sfumato.cli import app
from sfumato.engine import conditioning
from sfumato.engine.tokenizers import clip_tokenizer


def run(*args):
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output
    return result


def test_it_prints_the_chunks_as_a1111_counts_them():
    prompt = "masterpiece, (photorealistic castle:1.3), [blurry] BREAK at night <lora:pix:0.8>"
    result = run("tokenize", prompt, "-n", "ugly")
    assert result.exit_code == 0, result.output
    assert "Prompt: 77/150 (2 x 75)" in result.output  # A1111's count: the first chunk full
    assert "chunk 2 (2/75, after BREAK)" in result.output
    assert "(photo·realistic:1.3) (castle:1.3)" in result.output
    assert "(blurry:0.909)" in result.output
    assert "split into pieces: photorealistic" in result.output
    assert "LoRA pix:0.8 (not installed): No LoRA named 'pix'" in result.output
    assert "Negative prompt: 1/75" in result.output and "1 empty chunk(s) added" in result.output


def test_json_holds_the_engines_chunks_and_sdxl_says_its_encoders_share_them(tiny_models):
    prompt = ", ".join(f"a photorealistic lighthouse number {i}" for i in range(30))
    sdxl = str(tiny_models["sdxl"]["single"])
    result = run("tokenize", prompt, "--model", sdxl, "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["encoders"] == 2 and "two text encoders" in answer["note"]
    assert any("zeros for SDXL" in n for n in answer["negative_prompt"]["notes"])
    expected = conditioning._chunks(prompt, clip_tokenizer())
    assert [c["ids"] for c in answer["prompt"]["chunks"]] == [c.tokens for c in expected]
    assert [c["starts"] for c in answer["prompt"]["chunks"]][1:] == ["comma"] * (len(expected) - 1)


def test_an_unknown_model_is_a_sentence_listing_the_installed_ones():
    result = run("tokenize", "a cat", "-m", "no-such-model")
    assert result.exit_code == 1
    assert "No model named 'no-such-model'" in result.output and "sfumato-demo" in result.output
