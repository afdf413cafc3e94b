"""A1111's prompt syntax: emphasis weights, BREAK, and 75-token chunks for long prompts.

Prompts copied from model sites are written for AUTOMATIC1111's web UI, so they are read the
way it reads them:

- ``(word)`` multiplies the weight of ``word`` by 1.1, ``[word]`` divides it by 1.1, and
  ``(word:1.3)`` sets the factor; brackets nest and multiply. ``\\(`` and ``\\)`` are literal
  brackets. A bracket left open applies to the rest of the prompt; a stray closing one is text.
- ``BREAK`` (in capitals, on its own) starts a new 75-token chunk.
- Prompts longer than 75 tokens are cut into chunks of 75 (moved back to the last comma when it
  is near the end of a chunk, as A1111 does), each encoded on its own with CLIP's 77-token
  window and the results concatenated, so nothing is silently dropped.

No maintained library reads this syntax with A1111's arithmetic (compel has its own syntax and
weighting), so the parser is written here, from A1111's documented behaviour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROUND_UP = 1.1
SQUARE_DOWN = 1 / 1.1
CHUNK = 75  # tokens of text per chunk; with start and end tokens, CLIP's 77
COMMA_BACKTRACK = 20  # A1111's default "prompt word wrap length limit"
BREAK = "BREAK"

_TOKENS = re.compile(
    r"""
    \\[\\()\[\]]            # an escaped bracket or backslash
    | \\                    # a lone backslash
    | \(                    # opens emphasis
    | \[                    # opens de-emphasis
    | :\s*([+-]?[.\d]+)\s*\)  # a weight closing a round bracket: ":1.3)"
    | \)
    | \]
    | [^\\()\[\]:]+         # plain text
    | :                     # a colon that is not a weight
    """,
    re.VERBOSE,
)
_BREAK = re.compile(r"\s*\bBREAK\b\s*")
# each part bounded, so a prompt of unclosed "<lora:a:" costs linear time, not quadratic (an
# unbounded name was scanned to the prompt's end from every "<lora:"); a weight is a number
_LORA_TAG = re.compile(
    r"<(lora|lyco):([^:>]{1,255})(?::([+-]?(?:\d{1,8}(?:\.\d{0,8})?|\.\d{1,8})))?"
    r"(?::[^>]{0,128})?>",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Fragment:
    text: str
    weight: float  # the emphasis of this text; BREAK fragments have text "BREAK", weight -1

    @property
    def is_break(self) -> bool:
        return self.weight == -1


def parse(prompt: str) -> list[Fragment]:
    """The prompt as (text, weight) fragments, adjacent equal weights merged."""
    out: list[list] = []  # [text, weight] pairs
    round_open: list[int] = []  # where each open bracket's text starts in ``out``
    square_open: list[int] = []

    def scale(start: int, factor: float) -> None:
        for item in out[start:]:
            if item[0] is not BREAK:
                item[1] *= factor

    for match in _TOKENS.finditer(prompt):
        token, weight = match.group(0), match.group(1)
        if token.startswith("\\"):
            out.append([token[1:] or "\\", 1.0])
        elif token == "(":
            round_open.append(len(out))
        elif token == "[":
            square_open.append(len(out))
        elif weight is not None and round_open and _is_number(weight):
            scale(round_open.pop(), float(weight))
        elif weight is not None:  # "(a:1.2.3)": not a weight after all, so text
            out.append([token, 1.0])
        elif token.endswith(")") and round_open:
            scale(round_open.pop(), ROUND_UP)
        elif token == "]" and square_open:
            scale(square_open.pop(), SQUARE_DOWN)
        else:
            for i, part in enumerate(_BREAK.split(token)):
                if i:
                    out.append([BREAK, -1.0])  # this very string object marks a BREAK
                if part:
                    out.append([part, 1.0])
    for start in round_open:  # left open: they apply to the rest, as in A1111
        scale(start, ROUND_UP)
    for start in square_open:
        scale(start, SQUARE_DOWN)

    fragments: list[Fragment] = []
    for text, weight in out:
        if text is not BREAK and fragments and fragments[-1].weight == weight:
            fragments[-1] = Fragment(fragments[-1].text + text, weight)
        else:
            fragments.append(Fragment(text, weight))
    return fragments or [Fragment("", 1.0)]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:  # "(a:1.2.3)": not a weight after all
        return False
    return True


def extract_lora_tags(prompt: str) -> tuple[str, list[tuple[str, float]]]:
    """The prompt without its ``<lora:name:weight>`` tags, and the tags (weight 1 if left out).
    Tags are instructions to the UI, never text for the text encoder."""
    tags = [(m.group(2).strip(), float(m.group(3) or 1.0)) for m in _LORA_TAG.finditer(prompt)]
    return _LORA_TAG.sub("", prompt), tags


@dataclass
class Chunk:
    tokens: list[int]  # at most CHUNK text tokens, without start/end tokens
    weights: list[float]


def chunk(fragments: list[Fragment], tokenize, comma_token: int | None) -> list[Chunk]:
    """Token ids and weights in chunks of at most 75, as A1111 cuts them.

    ``tokenize(text)`` gives the ids of ``text`` without start and end tokens.
    """
    chunks: list[Chunk] = []
    current = Chunk([], [])
    last_comma = -1

    def close() -> None:
        nonlocal current, last_comma
        chunks.append(current)
        current, last_comma = Chunk([], []), -1

    for fragment in fragments:
        if fragment.is_break:
            close()
            continue
        for token in tokenize(fragment.text):
            if len(current.tokens) == CHUNK:
                # full: move the words after a nearby comma to the next chunk, keeping the
                # phrase whole, as A1111 does
                if last_comma != -1 and CHUNK - last_comma <= COMMA_BACKTRACK:
                    cut = last_comma + 1
                    rest = Chunk(current.tokens[cut:], current.weights[cut:])
                    current = Chunk(current.tokens[:cut], current.weights[:cut])
                    close()
                    current = rest
                else:
                    close()
            if token == comma_token:
                last_comma = len(current.tokens)
            current.tokens.append(token)
            current.weights.append(fragment.weight)
    if current.tokens or not chunks:
        close()
    return chunks
