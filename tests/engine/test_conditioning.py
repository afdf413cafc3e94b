"""Prompt embeddings against diffusers' own encoder, and what weights and long prompts do."""

import pytest
import torch

from sfumato.engine.conditioning import encode_prompts
from tests.fixtures.tiny_models import tiny_sd15, tiny_sdxl

PHRASES = ["a red circle on a blue background"] * 25
LONG = ", ".join(PHRASES)  # 199 tokens: three chunks


@pytest.fixture(scope="module")
def sd15():
    pipe = tiny_sd15()
    # a trained CLIP's final layer norm has a bias, so its output has a mean to keep
    torch.nn.init.normal_(pipe.text_encoder.final_layer_norm.bias, 0.5, 0.1)
    return pipe


@pytest.fixture(scope="module")
def sdxl():
    return tiny_sdxl()


@torch.no_grad()
def test_plain_prompts_encode_exactly_as_diffusers_does(sd15, sdxl):
    ours = encode_prompts(sd15, "a red circle", "blurry")
    theirs, negative = sd15.encode_prompt("a red circle", "cpu", 1, True, "blurry")
    assert torch.equal(ours["prompt_embeds"], theirs)
    assert torch.equal(ours["negative_prompt_embeds"], negative)
    ours = encode_prompts(sdxl, "a red circle", "")
    theirs = sdxl.encode_prompt("a red circle", device="cpu", negative_prompt=None)
    for name, value in zip(
        ["prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds",
         "negative_pooled_prompt_embeds"], theirs, strict=True,
    ):  # fmt: skip
        assert torch.allclose(ours[name], value, atol=1e-6), name


@torch.no_grad()
def test_a_weight_scales_its_words_against_the_rest(sd15):
    plain = encode_prompts(sd15, "a red circle", "")["prompt_embeds"][0]
    heavy = encode_prompts(sd15, "a (red:1.5) circle", "")["prompt_embeds"][0]
    light = encode_prompts(sd15, "a (red:0.5) circle", "")["prompt_embeds"][0]
    red, circle = 2, 3  # positions after the start token
    ratio = lambda e: e[red].norm() / e[circle].norm()  # noqa: E731
    assert ratio(heavy) / ratio(plain) == pytest.approx(1.5, rel=1e-4)
    assert ratio(light) / ratio(plain) == pytest.approx(0.5, rel=1e-4)
    # A1111's rescaling keeps the mean of the whole embedding where it was
    assert heavy.mean().item() == pytest.approx(plain.mean().item(), rel=1e-4)


@torch.no_grad()
def test_a_200_token_prompt_is_encoded_whole(sd15, sdxl):
    embeds = encode_prompts(sd15, LONG, "")
    assert embeds["prompt_embeds"].shape[1] == 3 * 77
    # the negative prompt is padded to as many chunks, so guidance can compare them
    assert embeds["negative_prompt_embeds"].shape == embeds["prompt_embeds"].shape
    castle = ", ".join(PHRASES[:-1] + ["a red castle on a blue background"])
    changed = encode_prompts(sd15, castle, "")["prompt_embeds"]
    assert not torch.equal(changed[:, 154:], embeds["prompt_embeds"][:, 154:])  # the 3rd chunk
    assert torch.equal(changed[:, :77], embeds["prompt_embeds"][:, :77])
    xl = encode_prompts(sdxl, LONG, "")
    assert xl["prompt_embeds"].shape == (1, 3 * 77, 96)  # both encoders' features side by side
    assert xl["pooled_prompt_embeds"].shape == (1, 64)  # from the first chunk


@torch.no_grad()
def test_clip_skip_reads_an_earlier_layer(sd15):
    ids = sd15.tokenizer("a red circle", padding="max_length", max_length=77).input_ids
    hidden = sd15.text_encoder(torch.tensor([ids]), output_hidden_states=True).hidden_states
    expected = sd15.text_encoder.final_layer_norm(hidden[-2])
    skipped = encode_prompts(sd15, "a red circle", "", clip_skip=2)["prompt_embeds"]
    assert torch.allclose(skipped, expected, atol=1e-6)
    assert not torch.allclose(skipped, encode_prompts(sd15, "a red circle", "")["prompt_embeds"])
