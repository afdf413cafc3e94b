"""The words a model knows, and a prompt read for one model: what the page suggests as the user
types and what ``/v1/prompts/tokenize`` and ``sfumato tokenize`` answer.

A model's or LoRA's keywords come from its card (``keywords``, word -> how often it was in the
training captions) and, for a LoRA trained with kohya's scripts, from the ``ss_tag_frequency``
in its header (every tag of every dataset, summed). Trigger words are the card's.
"""

from __future__ import annotations

from sfumato.catalog.hashes import HashCache
from sfumato.catalog.loras import check_lora_fits
from sfumato.catalog.scan import CHECKPOINT, LORA, Catalog, Entry
from sfumato.engine import tokens
from sfumato.engine.prompts import extract_lora_tags
from sfumato.engine.variations import has_variations
from sfumato.errors import ModelNotFound, SfumatoError

KIND_WORD = {CHECKPOINT: "model", LORA: "LoRA"}
MAX_KEYWORDS = 10_000  # a kohya LoRA may carry thousands of tags; an answer stays bounded


def find_entry(catalog: Catalog, name: str, kind: str, hashes: HashCache | None = None) -> Entry:
    """The model or LoRA a user means by ``name``; a sentence listing the installed ones when
    none is, one that names no folder of the server's when it is broken."""
    if len(name) > 255:
        raise ModelNotFound(f"No {KIND_WORD[kind]} has a name that long.")
    try:
        return catalog.resolve(name, kind, hashes)
    except ModelNotFound as e:
        broken = [x for x in catalog.of_kind(kind) if x.broken and name in (x.name, x.display)]
        if broken:
            raise ModelNotFound(f"{broken[0].display} cannot be used: {broken[0].broken}") from None
        raise ModelNotFound(e.message) from None


def keywords(entry: Entry, limit: int = 500) -> dict:
    """The entry's trigger words, and its keywords with their counts, most frequent first."""
    tags = entry.lora.tag_frequency if entry.lora else {}
    counts: dict[str, int] = dict(tags)
    source = ["training tags"] if tags else []
    # a card's own counts win over the header's (the scan copies the header's top tags into a
    # card that has none: those are not the card's)
    own = {w: n for w, n in entry.card.keywords.items() if isinstance(n, int) and tags.get(w) != n}
    if own:
        counts |= own
        source.insert(0, "card")
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    limit = max(0, min(limit, MAX_KEYWORDS))
    return {
        "name": entry.name,
        "kind": KIND_WORD.get(entry.kind, entry.kind),
        "family": entry.family,
        "trigger_words": list(entry.card.trigger_words),
        "keywords": [{"word": w, "count": n} for w, n in ranked[:limit]],
        "total": len(ranked),
        "source": " and ".join(source) or None,
    }


def lora_status(catalog: Catalog, name: str, weight: float, model: Entry | None) -> dict:
    """A ``<lora:...>`` tag: is the LoRA installed, and would the model take it."""
    row = {"name": name, "weight": weight, "installed": False, "problem": None, "trigger_words": []}
    try:
        entry = find_entry(catalog, name, LORA)
    except ModelNotFound as e:
        row["problem"] = e.message
        return row
    row["installed"] = True
    row["trigger_words"] = list(entry.card.trigger_words)
    if model is not None and model.source is not None and entry.lora is not None:
        try:
            check_lora_fits(name, entry.lora, model.display, model.source.family.architecture)
        except SfumatoError as e:
            row["problem"] = e.message
    return row


def read_for_model(
    catalog: Catalog, model: Entry | None, prompt: str, negative_prompt: str = ""
) -> dict:
    """Both prompts as the engine would encode them for ``model``, their LoRA tags checked."""
    tokenizer = tokens.tokenizer_for(model.path if model is not None else None)
    positive = tokens.read_prompt(prompt, tokenizer)
    negative = tokens.read_prompt(negative_prompt, tokenizer)
    tokens.pair(positive, negative)
    architecture = model.source.family.architecture if model and model.source else None
    answer = {
        "model": model.display if model is not None else None,
        "family": model.family if model is not None else None,
        "encoders": 2 if architecture == "sdxl" else 1,
        "chunk_size": tokens.CHUNK,
        "chunks_encoded": max(len(positive.chunks), len(negative.chunks)),
        "note": (
            "SDXL's two text encoders read the same chunks: one count serves both."
            if architecture == "sdxl"
            else None
        ),
        "prompt": positive.to_dict(),
        "negative_prompt": negative.to_dict(),
    }
    answer["prompt"]["loras"] = [
        lora_status(catalog, name, weight, model) for name, weight in positive.loras
    ]
    # conditioning.encode_prompts, given the text without its tags as generate.py gives it
    if architecture == "sdxl" and not extract_lora_tags(negative_prompt)[0]:
        answer["negative_prompt"]["notes"].append(
            "An empty negative prompt is zeros for SDXL (as diffusers does), not an encoded "
            "empty prompt."
        )
    if has_variations(prompt):  # the lead's dynamic prompts: each picture's prompt is a draw
        answer["prompt"]["notes"].append(
            "This is the template as written: with variations on, each picture's prompt is one "
            "of its choices (with wildcards filled in), read the same way."
        )
    if negative.loras:  # taken out of the text, and not applied: the engine reads the prompt's
        answer["negative_prompt"]["notes"].append(
            "LoRA tags in the negative prompt are taken out and not applied; put them in the "
            "prompt."
        )
    return answer
