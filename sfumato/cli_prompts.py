"""``sfumato tokenize``: what the model reads of a prompt, chunk by chunk."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from sfumato.console import DataDirOption, ModelsDirOption, out, user_errors


def _style(word: dict) -> str:
    """A word as the listing shows it: pieces joined by '·' when split, its weight if not 1."""
    text = (
        "·".join(p.removesuffix("</w>") for p in word["pieces"]) if word["split"] else word["text"]
    )
    if word["cut"]:
        text += "|"
    return f"({text}:{word['weight']:.3g})" if word["weight"] != 1 else text


def _print_side(label: str, side: dict) -> None:
    out.print(f"[bold]{label}[/]: {side['counter']}", highlight=False)
    for i, chunk in enumerate(side["chunks"], 1):
        why = {"start": "", "BREAK": ", after BREAK", "comma": ", from the last comma"}
        why["full"] = ", the last one was full"
        out.print(f"  chunk {i} ({chunk['count']}/75{why[chunk['starts']]}):", highlight=False)
        out.print(
            "    " + " ".join(_style(w) for w in chunk["words"]), highlight=False, soft_wrap=True
        )
    if side["split_words"]:
        out.print("  split into pieces: " + ", ".join(side["split_words"]), highlight=False)
    for lora in side["loras"]:
        if "installed" in lora:
            state = "installed" if lora["installed"] else "not installed"
            line = f"  LoRA {lora['name']}:{lora['weight']:g} ({state})"
            if lora.get("problem"):
                line += f": {lora['problem']}"
            out.print(line, highlight=False)
    for note in side["notes"]:
        out.print(f"  {note}", highlight=False)


def tokenize(
    prompt: Annotated[str, typer.Argument(help="The prompt, in A1111's syntax.")],
    model: Annotated[
        str | None, typer.Option("-m", "--model", help="Name or path; default: as generate.")
    ] = None,
    negative: Annotated[str, typer.Option("-n", "--negative", help="The negative prompt.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    data_dir: DataDirOption = None,
    models_dir: ModelsDirOption = None,
) -> None:
    """What the model reads of a prompt: its 75-token chunks (BREAK and A1111's comma
    backtrack), the words the tokenizer splits, each word's weight, the LoRA tags. Words
    split into pieces show them joined by '·'; '|' marks a word a chunk ends inside."""
    with user_errors():
        from sfumato.catalog.hashes import HashCache
        from sfumato.catalog.scan import Catalog, Models, find_checkpoint
        from sfumato.catalog.vocabulary import read_for_model
        from sfumato.datadir import DataDir

        data = DataDir.resolve(data_dir)
        folders = data.model_dirs(models_dir)
        catalog = Catalog.scan(folders)
        path = find_checkpoint(model, Models(folders, HashCache(data.hashes), lambda: catalog))
        entry = catalog.entry_at(path) or Catalog.describe(path)
        answer = read_for_model(catalog, entry, prompt, negative)
        if as_json:
            out.print_json(json.dumps(answer))
            return
        out.print(f"Model: {answer['model']}", highlight=False)
        _print_side("Prompt", answer["prompt"])
        if negative:
            _print_side("Negative prompt", answer["negative_prompt"])
        if answer["note"]:
            out.print(answer["note"], highlight=False)
