"""Dynamic prompts: one template, many prompts. ``{red|green|blue} circle``, weighted options
(``{0.8::red|0.2::blue}``), several at once (``{2$$a|b|c}``), and wildcards: ``__colour__``
is a line of ``colour.txt`` in the data folder's ``wildcards/`` (sub-folders: ``__animals/cat__``).

The syntax is the ``dynamicprompts`` library's, the one A1111's and ComfyUI's Dynamic
Prompts extensions run, so templates people share work unchanged. Two ways to use it:

- ``random`` (the default): picture *i* of a batch gets its own draw, made from its own seed
  (``seed + i``), so any one picture is made again alone from its seed and the template;
- ``all``: every combination once, one picture each (the batch is their number);
- ``off``: braces and underscores are text, as without the extension.

Everything else in a prompt (weights, ``BREAK``, ``<lora:...>`` tags) passes through.
"""

from __future__ import annotations

import re
from pathlib import Path

from sfumato.errors import InvalidRequest

RANDOM, ALL, OFF = "random", "all", "off"
MODES = (RANDOM, ALL, OFF)
MAX_COMBINATIONS = 16  # one picture each: the batch's limit
_SYNTAX = re.compile(r"[{}]|__[\w./\\-]+__")
_WILDCARD = re.compile(r"__([\w./\\-]+?)__")


def has_variations(prompt: str) -> bool:
    return bool(_SYNTAX.search(prompt))


def check_mode(mode: str | None) -> str:
    mode = (mode or RANDOM).lower()
    if mode not in MODES:
        raise InvalidRequest(f"variations is one of {', '.join(MODES)}; got {mode[:30]!r}.")
    return mode


def expand(
    template: str, mode: str, count: int, seed: int, wildcards: Path | None = None
) -> list[str]:
    """The prompts ``template`` becomes: ``count`` draws (``random``, draw *i* from ``seed +
    i``), or every combination (``all``, however many: at most ``MAX_COMBINATIONS``)."""
    from dynamicprompts.generators import CombinatorialPromptGenerator, RandomPromptGenerator
    from dynamicprompts.wildcards import WildcardManager

    manager = WildcardManager(wildcards if wildcards and wildcards.is_dir() else None)
    _check_wildcards(template, manager, wildcards)
    try:
        if mode == ALL:
            prompts = CombinatorialPromptGenerator(manager).generate(
                template, max_prompts=MAX_COMBINATIONS + 1
            )
        else:
            prompts = [
                RandomPromptGenerator(wildcard_manager=manager, seed=seed + i).generate(
                    template, 1
                )[0]
                for i in range(count)
            ]
    except Exception as e:  # noqa: BLE001 (pyparsing's errors, and the library's own)
        raise InvalidRequest(
            f"The prompt's variations cannot be read: {str(e).splitlines()[0][:200]}. Write "
            "choices as {red|green|blue}; for braces as text, set variations to off."
        ) from None
    if mode == ALL and len(prompts) > MAX_COMBINATIONS:
        raise InvalidRequest(
            f"The prompt has more than {MAX_COMBINATIONS} combinations, one picture each: "
            "offer fewer choices, or use random variations."
        )
    return prompts


def _check_wildcards(template: str, manager, folder: Path | None) -> None:
    """A wildcard with no file is refused with the ones there are (the library would leave
    ``__name__`` in the prompt, as text)."""
    known = set(manager.get_collection_names()) if folder and folder.is_dir() else set()
    for name in _WILDCARD.findall(template):
        if name.replace("\\", "/") not in known:
            listed = ", ".join(f"__{n}__" for n in sorted(known)) or "none yet"
            where = folder or "the data folder's wildcards/"
            raise InvalidRequest(
                f"There is no wildcard __{name}__: add {name}.txt (one choice a line) to "
                f"{where}. Wildcards: {listed}."
            )
