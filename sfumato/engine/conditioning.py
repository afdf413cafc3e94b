"""Prompt embeddings the way A1111 makes them: weights, BREAK, long prompts, clip skip.

Each 75-token chunk (see ``prompts``) is encoded in CLIP's 77-token window as
``[start] tokens [end] [pad]...``, its hidden states are multiplied by the token weights and
rescaled to their original mean (A1111's "Original" emphasis), and the chunks are concatenated.
SDXL runs both text encoders on the same chunks, joins their features, and takes the pooled
embedding from the first chunk. Graphs (``sampling.encode``) weigh tokens as ComfyUI does
instead: each weighted token's features moved away from the empty prompt's by its weight,
``empty + (features - empty) * weight``, with no mean restored. The prompt and the negative
prompt are padded to the same number of chunks with empty ones, since guidance compares them
token for token.
"""

from __future__ import annotations

import torch

from sfumato.engine import prompts


def _tokenize(tokenizer):
    def run(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False, truncation=False).input_ids

    return run


def _window(tokenizer, chunk: prompts.Chunk) -> tuple[list[int], list[float]]:
    pad = prompts.CHUNK - len(chunk.tokens)
    ids = [tokenizer.bos_token_id, *chunk.tokens, tokenizer.eos_token_id]
    ids += [tokenizer.pad_token_id] * pad
    return ids, [1.0, *chunk.weights, 1.0] + [1.0] * pad


def _hidden(encoder, ids: torch.Tensor, clip_skip: int, penultimate: bool) -> tuple:
    """(hidden states, pooled output or None) after skipping the last ``clip_skip - 1`` layers.

    SD 1.5 reads the last layer through the final layer norm (A1111 applies the norm after a
    skip too); SDXL reads the penultimate layer without it, and skips from there.
    """
    out = encoder(ids, output_hidden_states=True)
    pooled = getattr(out, "text_embeds", None)
    if penultimate:
        return out.hidden_states[-(clip_skip + 1)], pooled
    if clip_skip <= 1:
        return out.last_hidden_state, pooled
    hidden = out.hidden_states[-clip_skip]
    return getattr(encoder, "text_model", encoder).final_layer_norm(hidden), pooled


def _emphasis(hidden: torch.Tensor, weights: list[float]) -> torch.Tensor:
    if all(w == 1.0 for w in weights):
        return hidden
    w = torch.tensor(weights, dtype=hidden.dtype, device=hidden.device)[None, :, None]
    original_mean = hidden.float().mean()
    weighted = hidden * w
    new_mean = weighted.float().mean()
    if new_mean.abs() < 1e-6 * hidden.float().abs().mean():  # no mean to keep
        return weighted
    return weighted * (original_mean / new_mean).to(hidden.dtype)


def _towards_empty(hidden: torch.Tensor, empty: torch.Tensor, weights: list[float]):
    """ComfyUI's emphasis: each token's features scaled away from the empty prompt's."""
    if all(w == 1.0 for w in weights):
        return hidden
    w = torch.tensor(weights, dtype=hidden.dtype, device=hidden.device)[None, :, None]
    return empty + (hidden - empty) * w


def _chunks(text: str, tokenizer) -> list[prompts.Chunk]:
    comma = tokenizer.convert_tokens_to_ids(",</w>")
    return prompts.chunk(prompts.parse(text), _tokenize(tokenizer), comma)


def _encode(pipe, chunks: list[prompts.Chunk], clip_skip: int, sdxl: bool, emphasis: str = "a1111"):
    pairs = [(pipe.tokenizer, pipe.text_encoder)]
    if sdxl:
        pairs.append((pipe.tokenizer_2, pipe.text_encoder_2))
    device = pipe.text_encoder.device
    per_chunk, pooled, empty = [], None, {}
    for i, chunk in enumerate(chunks):
        features = []
        for tokenizer, encoder in pairs:
            ids, weights = _window(tokenizer, chunk)
            hidden, pool = _hidden(encoder, torch.tensor([ids], device=device), clip_skip, sdxl)
            if emphasis == "comfy":
                if tokenizer not in empty and any(w != 1.0 for w in weights):
                    blank = torch.tensor([_window(tokenizer, prompts.Chunk([], []))[0]])
                    empty[tokenizer] = _hidden(encoder, blank.to(device), clip_skip, sdxl)[0]
                features.append(_towards_empty(hidden, empty.get(tokenizer), weights))
            else:
                features.append(_emphasis(hidden, weights))
            if i == 0 and pool is not None:
                pooled = pool
        per_chunk.append(torch.cat(features, dim=-1))
    return per_chunk, pooled


def encode_prompts(pipe, prompt: str, negative: str, clip_skip: int = 1) -> dict:
    """Keyword arguments for the diffusers pipeline call in place of the prompt strings."""
    sdxl = hasattr(pipe, "text_encoder_2")
    positive_chunks = _chunks(prompt, pipe.tokenizer)
    negative_chunks = _chunks(negative, pipe.tokenizer)
    empty = prompts.Chunk([], [])
    n = max(len(positive_chunks), len(negative_chunks))
    positive_chunks += [empty] * (n - len(positive_chunks))
    negative_chunks += [empty] * (n - len(negative_chunks))
    positive, pooled = _encode(pipe, positive_chunks, clip_skip, sdxl)
    kwargs = {"prompt_embeds": torch.cat(positive, dim=1)}
    if sdxl and not negative and pipe.config.get("force_zeros_for_empty_prompt", False):
        # what diffusers does for SDXL with no negative prompt: zeros, not an encoded ""
        kwargs["negative_prompt_embeds"] = torch.zeros_like(kwargs["prompt_embeds"])
        kwargs["negative_pooled_prompt_embeds"] = torch.zeros_like(pooled)
    else:
        negative_embeds, negative_pooled = _encode(pipe, negative_chunks, clip_skip, sdxl)
        kwargs["negative_prompt_embeds"] = torch.cat(negative_embeds, dim=1)
        if sdxl:
            kwargs["negative_pooled_prompt_embeds"] = negative_pooled
    if sdxl:
        kwargs["pooled_prompt_embeds"] = pooled
    return kwargs


def encode_prompt(pipe, text: str, clip_skip: int = 1, emphasis: str = "a1111"):
    """One prompt alone: (token features, SDXL's pooled embedding or None). ``emphasis``:
    ``a1111`` (weights, then the mean restored) or ``comfy`` (towards the empty prompt)."""
    sdxl = hasattr(pipe, "text_encoder_2")
    chunks = _chunks(text, pipe.tokenizer)
    features, pooled = _encode(pipe, chunks, clip_skip, sdxl, emphasis)
    return torch.cat(features, dim=1), pooled
