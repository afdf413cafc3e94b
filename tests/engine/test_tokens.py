"""A prompt's reading is what the engine encodes: the same chunks, ids and weights as
``conditioning`` hands the text encoders, for prompts that exercise every rule."""

import pytest

from sfumato.engine import conditioning, prompts, tokens
from sfumato.engine.tokenizers import PAD_OPEN_CLIP, clip_tokenizer

LONG = ", ".join(f"a photorealistic lighthouse number {i}" for i in range(40))
# 74 tokens of single-token words, then a comma near the end: A1111's backtrack moves the
# phrase after the last comma into the next chunk
NEAR_COMMA = " ".join(["red"] * 70) + ", blue green yellow purple orange white black"
PROMPTS = [
    "",
    "a red circle",
    "masterpiece, (best quality:1.3), [blurry], ((castle)), (a:1.2.3), \\(literal\\)",
    LONG,
    "a castle BREAK at night BREAK BREAK in fog",
    "BREAK a castle",
    NEAR_COMMA,
    " ".join(["photorealistic"] * 40),  # a chunk ends inside a word
    "(" + " ".join(["red"] * 80) + ", (blue:1.5) [green]",  # left open
    "a castle, pixel art <lora:pixelart_v2:0.8> <lora:other>",
    "héllo 猫 😀, ÉLAN vital",
]


def engine_chunks(prompt: str, tokenizer) -> list[prompts.Chunk]:
    """What ``generate`` encodes: the prompt without its LoRA tags, cut by conditioning."""
    return conditioning._chunks(prompts.extract_lora_tags(prompt)[0], tokenizer)


@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.parametrize("pad", ["sd", "open_clip"])
def test_chunks_ids_and_weights_are_the_engines(prompt, pad):
    tokenizer = clip_tokenizer() if pad == "sd" else clip_tokenizer(pad_token=PAD_OPEN_CLIP)
    reading = tokens.read_prompt(prompt, tokenizer)
    expected = engine_chunks(prompt, tokenizer)
    assert [c.ids for c in reading.chunks] == [c.tokens for c in expected]
    assert [c.weights for c in reading.chunks] == [c.weights for c in expected]
    # the words hold exactly the chunk's tokens, in order, each with its tokens' weight
    for chunk in reading.chunks:
        assert [i for w in chunk.words for i in w.ids] == chunk.ids
        weights = [w.weight for w in chunk.words for _ in w.ids]
        assert weights == chunk.weights


def test_the_rules_are_reported():
    near = tokens.read_prompt(NEAR_COMMA)
    assert [c.starts for c in near.chunks] == ["start", "comma"]
    assert len(near.chunks[0].ids) == 71  # up to and with the comma
    assert [w.text for w in near.chunks[1].words][:2] == ["blue", "green"]
    assert near.counter == "82/150 (2 x 75)"  # A1111 counts the first chunk full (75 + 7)

    broken = tokens.read_prompt("a castle BREAK at night BREAK BREAK in fog")
    assert [c.starts for c in broken.chunks] == ["start", "BREAK", "BREAK", "BREAK"]
    assert [len(c.ids) for c in broken.chunks] == [2, 2, 0, 2]

    long = tokens.read_prompt(LONG)
    assert len(long.chunks) > 2 and long.text_tokens > 200
    assert any("Nothing is dropped" in n for n in long.notes())
    assert "photorealistic" in long.split_words()

    cut = tokens.read_prompt(" ".join(["photorealistic"] * 40))
    assert cut.chunks[1].starts == "full" and cut.cut_words == ["photorealistic"]
    assert cut.chunks[0].words[-1].cut and cut.chunks[1].words[0].cut

    weighted = tokens.read_prompt("(best quality:1.3), [blurry] cat")
    by_word = {w.text: w.weight for w in weighted.chunks[0].words}
    assert by_word["best"] == by_word["quality"] == 1.3
    assert by_word["blurry"] == pytest.approx(1 / 1.1) and by_word["cat"] == 1.0

    tagged = tokens.read_prompt("a castle <lora:pixel:0.8>")
    assert tagged.loras == [("pixel", 0.8)]
    assert [w.text for w in tagged.chunks[0].words] == ["a", "castle"]
    assert tokens.read_prompt("a red circle").counter == "3/75"


def test_the_shorter_side_is_padded_as_guidance_needs():
    prompt, negative = tokens.read_prompt(LONG), tokens.read_prompt("blurry")
    tokens.pair(prompt, negative)
    assert negative.empty_chunks_added == len(prompt.chunks) - 1
    assert prompt.empty_chunks_added == 0
    assert any("empty chunk" in n for n in negative.notes())


def test_a_diffusers_folder_brings_its_own_tokenizer(tmp_path):
    clip_tokenizer().save_pretrained(tmp_path / "tokenizer")
    own = tokens.tokenizer_for(tmp_path)
    assert own is not clip_tokenizer() and own is tokens.tokenizer_for(tmp_path)  # cached
    assert tokens.tokenizer_for(None) is clip_tokenizer()
    assert tokens.tokenizer_for(tmp_path / "nothing") is clip_tokenizer()
