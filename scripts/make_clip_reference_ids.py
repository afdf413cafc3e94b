"""Write tests/data/clip_reference_ids.json: token ids from OpenAI's reference CLIP tokenizer.

The reference is the pure-Python ``SimpleTokenizer`` that open-clip-torch ships (its
``tokenizer.py`` imports torch, ftfy and regex, not torchvision, so it runs without
installing open-clip-torch). Fetch it and its merges file as in build_clip_tokenizer.py, then:

    pip install ftfy
    python scripts/make_clip_reference_ids.py /tmp/oc/open_clip

The ids are stored up to the end-of-text token: padding differs between SD's two tokenizers
and is tested on its own. HTML entities are left out on purpose: the reference unescapes them,
the transformers tokenizer that SD tools (A1111, diffusers) use does not, and we side with them.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

PROMPTS = [
    "a photo of an astronaut riding a horse on mars",
    "A Red CIRCLE on a Blue Background",
    "masterpiece, best quality, (detailed:1.2), 8k, RAW photo!!!",
    "Café crème brûlée — naïve façade, déjà vu",
    "東京の夜景, neon lights, 写真",
    "emoji 🐱‍👤 and 🎨 palette",
    "  lots   of\twhitespace\n and newlines  ",
    "don't stop-believing: it's 3.14159 o'clock",
    "",
    " ".join(f"word{i}" for i in range(120)),  # longer than 77 tokens: truncated
]
OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "clip_reference_ids.json"
EOT = 49407


def main(open_clip_dir: str) -> None:
    folder = Path(open_clip_dir)
    spec = importlib.util.spec_from_file_location("reference_tokenizer", folder / "tokenizer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tokenizer = module.SimpleTokenizer(bpe_path=str(folder / "bpe_simple_vocab_16e6.txt.gz"))
    rows = []
    for prompt in PROMPTS:
        ids = tokenizer(prompt, context_length=77)[0].tolist()
        rows.append({"prompt": prompt, "ids": ids[: ids.index(EOT) + 1]})
    lines = ",\n".join(json.dumps(row, ensure_ascii=False) for row in rows)
    OUT.write_text(f"[\n{lines}\n]\n", encoding="utf-8")
    print(f"wrote {len(rows)} prompts to {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
