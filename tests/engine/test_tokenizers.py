import json
from pathlib import Path

import pytest

from sfumato.engine.tokenizers import PAD_OPEN_CLIP, clip_tokenizer

REFERENCE = json.loads((Path(__file__).parents[1] / "data" / "clip_reference_ids.json").read_text())
BOS, EOS = 49406, 49407


def test_vocabulary_is_clips():
    tokenizer = clip_tokenizer()
    assert len(tokenizer) == 49408
    assert tokenizer.convert_tokens_to_ids(["<|startoftext|>", "<|endoftext|>"]) == [BOS, EOS]


@pytest.mark.parametrize("case", REFERENCE, ids=[c["prompt"][:24] for c in REFERENCE])
def test_ids_match_openai_reference_tokenizer(case):
    ids = clip_tokenizer()(case["prompt"], max_length=77, truncation=True).input_ids
    assert ids == case["ids"]


def test_long_prompt_is_cut_at_77_tokens_with_end_token():
    ids = clip_tokenizer()(" ".join(["cat"] * 200), max_length=77, truncation=True).input_ids
    assert len(ids) == 77 and ids[0] == BOS and ids[-1] == EOS


def test_sd_and_sdxl_second_tokenizer_pad_differently():
    prompt = "a red circle"
    sd = clip_tokenizer()(prompt, padding="max_length", max_length=77).input_ids
    xl2 = clip_tokenizer(pad_token=PAD_OPEN_CLIP)(
        prompt, padding="max_length", max_length=77
    ).input_ids
    assert sd[:5] == xl2[:5] == [BOS, 320, 736, 7117, EOS]
    assert set(sd[5:]) == {EOS}  # SD 1.5 pads with the end-of-text token
    assert set(xl2[5:]) == {0}  # OpenCLIP pads with "!" (id 0)
