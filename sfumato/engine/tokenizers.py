"""The CLIP BPE tokenizer, shipped with the package so that no model load reaches a hub."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from transformers import CLIPTokenizer

TOKENIZER_DIR = Path(__file__).parent / "configs" / "clip_tokenizer"
# SD 1.5's tokenizer (and SDXL's first) pads with the end-of-text token; SDXL's second
# tokenizer, taken from OpenCLIP, pads with "!" (id 0). Same vocabulary otherwise.
PAD_SD = "<|endoftext|>"
PAD_OPEN_CLIP = "!"


@cache
def clip_tokenizer(pad_token: str = PAD_SD) -> CLIPTokenizer:
    """A CLIP tokenizer (49,408 tokens, 77-token context) built from the shipped files."""
    return CLIPTokenizer.from_pretrained(TOKENIZER_DIR, pad_token=pad_token, local_files_only=True)
