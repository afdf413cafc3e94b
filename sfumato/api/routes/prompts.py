"""Prompt craft: what the model reads of a prompt (its chunks, words and weights), and the
words a model or LoRA knows (keywords with their counts, trigger words).

The tokenizer is the shipped CLIP one (no weights are read), so a reading answers in
milliseconds and the page calls it as the user types; prompts are bounded as generations'
are. Models are the server's, the same for every user: nothing here is anyone's own.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from sfumato.api.deps import ReadUser, StudioDep
from sfumato.api.schemas import Public
from sfumato.catalog.scan import CHECKPOINT, LORA
from sfumato.catalog.vocabulary import MAX_KEYWORDS, find_entry, keywords, read_for_model
from sfumato.engine.parameters import MAX_PROMPT_CHARS
from sfumato.jobs.submit import checkpoint_path

router = APIRouter(prefix="/v1", tags=["prompts"])


class TokenizeInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field("", max_length=MAX_PROMPT_CHARS)
    negative_prompt: str = Field("", max_length=MAX_PROMPT_CHARS)
    model: str | None = Field(
        None, max_length=255, description="Name, lineage@version or hash; default: yours."
    )


class WordPublic(Public):
    text: str
    ids: list[int]
    pieces: list[str] = Field(description="CLIP's byte-pair pieces; '</w>' ends a word.")
    weight: float
    split: bool = Field(description="The tokenizer cut the word into several pieces.")
    cut: bool = Field(description="A chunk ends inside this word.")


class ChunkPublic(Public):
    count: int = Field(description="Text tokens in this chunk, at most 75.")
    starts: str = Field(description="start, BREAK, comma (A1111's backtrack) or full.")
    ids: list[int]
    weights: list[float]
    words: list[WordPublic]


class LoraTag(Public):
    name: str
    weight: float
    installed: bool | None = None
    problem: str | None = None
    trigger_words: list[str] = []


class PromptReading(Public):
    counter: str = Field(description="As A1111 shows it: 37/75, or 80/150 (2 x 75).")
    count: int = Field(description="A1111's count: every chunk but the last counted full.")
    text_tokens: int
    chunks: list[ChunkPublic]
    split_words: list[str]
    cut_words: list[str]
    loras: list[LoraTag]
    empty_chunks_added: int
    notes: list[str]


class TokenizeAnswer(Public):
    model: str | None
    family: str | None
    encoders: int
    chunk_size: int
    chunks_encoded: int
    note: str | None
    prompt: PromptReading
    negative_prompt: PromptReading


class Keyword(Public):
    word: str
    count: int


class KeywordList(Public):
    name: str
    kind: str
    family: str | None
    trigger_words: list[str]
    keywords: list[Keyword]
    total: int
    source: str | None


@router.post(
    "/prompts/tokenize",
    response_model=TokenizeAnswer,
    summary="What the model reads of a prompt: chunks, words, weights, LoRA tags",
)
def tokenize(body: TokenizeInput, user: ReadUser, studio: StudioDep):
    """Cut as the engine cuts it: 75-token chunks, `BREAK`, A1111's comma backtrack, the
    `(word:1.3)` / `[word]` weights, `<lora:...>` tags taken out (and checked)."""
    catalog = studio.catalog()
    if body.model is not None:  # its sentence names no folder of the server's, even if broken
        model = find_entry(catalog, body.model, CHECKPOINT, studio.models().hashes)
    else:  # yours, else the server's default, else the catalog's own choice
        model = catalog.entry_at(checkpoint_path(studio, user, None))
    return read_for_model(catalog, model, body.prompt, body.negative_prompt)


Limit = Annotated[int, Query(ge=0, le=MAX_KEYWORDS, description="At most this many keywords.")]
Name = Annotated[str, Path(max_length=255)]


@router.get(
    "/models/{name}/keywords",
    response_model=KeywordList,
    summary="The words a model knows, most frequent first, and its trigger words",
)
def model_keywords(name: Name, user: ReadUser, studio: StudioDep, limit: Limit = 500):
    return keywords(find_entry(studio.catalog(), name, CHECKPOINT), limit)


@router.get(
    "/loras/{name}/keywords",
    response_model=KeywordList,
    summary="A LoRA's training tags with their counts, most frequent first, and trigger words",
)
def lora_keywords(name: Name, user: ReadUser, studio: StudioDep, limit: Limit = 500):
    return keywords(find_entry(studio.catalog(), name, LORA), limit)
