"""Rebuild the CLIP BPE tokenizer files that sfumato ships, from OpenAI's merges file.

No hub download is possible here, so the tokenizer is rebuilt from the
``bpe_simple_vocab_16e6.txt.gz`` file that open-clip-torch ships:

    pip download --no-deps -d /tmp/oc open-clip-torch
    unzip -o /tmp/oc/open_clip_torch-*.whl open_clip/bpe_simple_vocab_16e6.txt.gz -d /tmp/oc
    python scripts/build_clip_tokenizer.py /tmp/oc/open_clip/bpe_simple_vocab_16e6.txt.gz

The vocabulary is built the way CLIP's reference tokenizer builds it: the 256 byte symbols,
the same with the end-of-word marker, one token per merge, then the two special tokens,
49,408 tokens in all. The result is written as ``vocab.json``, ``merges.txt`` and
``tokenizer_config.json``: a folder transformers' CLIPTokenizer loads with ``from_pretrained``.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "sfumato" / "engine" / "configs" / "clip_tokenizer"
N_MERGES = 49152 - 256 - 2  # CLIP keeps the first 48,894 merges of the file


def byte_symbols() -> list[str]:
    """The printable stand-ins of the 256 byte values, in CLIP's vocabulary order.

    That order is the printable bytes first, then the rest (mapped above U+0100), not byte order.
    """
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return [chr(c) for c in codes]


def main(bpe_gz: str) -> None:
    with gzip.open(bpe_gz, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = [tuple(line.split()) for line in lines[1 : N_MERGES + 1]]
    symbols = byte_symbols()
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408, len(vocab)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "vocab.json").write_text(
        json.dumps({tok: i for i, tok in enumerate(vocab)}, ensure_ascii=False), encoding="utf-8"
    )
    (OUT / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n", encoding="utf-8"
    )
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "do_lower_case": True,
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
    }
    (OUT / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    print(f"wrote {len(vocab)} tokens and {len(merges)} merges to {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
