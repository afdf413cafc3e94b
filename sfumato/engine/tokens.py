"""What the text encoder reads of a prompt: its 75-token chunks, the words behind the tokens,
and each token's weight, exactly as ``conditioning`` encodes it.

Nothing here re-implements the engine: the chunks are ``conditioning._chunks``'s own (the
prompt without its ``<lora:...>`` tags, ``prompts.parse``, then ``prompts.chunk`` with the
model's tokenizer and its comma token), and the words are read back from those very token ids.
CLIP's byte-pair pieces end a word with ``</w>``, so the pieces up to one that ends so are one
word as the tokenizer split it (punctuation is a word of its own). A word of several pieces is
one the model does not know whole.

No weights are loaded: the tokenizer is the one the engine gives the model (sfumato's shipped
CLIP tokenizer, or a diffusers folder's own), so a reading takes milliseconds. SDXL's two
text encoders read the same chunks (``conditioning`` cuts them with the first tokenizer and
both encode them), so one count serves both.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from sfumato.engine import conditioning, prompts
from sfumato.engine.tokenizers import clip_tokenizer

CHUNK = prompts.CHUNK
_END = "</w>"
_load_lock = threading.Lock()


def tokenizer_for(model_path: Path | None = None):
    """The tokenizer the engine gives the model at ``model_path`` (see ``loader._tokenizers``):
    a diffusers folder's own when it brings one, else the shipped CLIP tokenizer."""
    if model_path is not None and (Path(model_path) / "tokenizer").is_dir():
        folder = Path(model_path) / "tokenizer"
        return _folder_tokenizer(str(folder), folder.stat().st_mtime_ns)
    return clip_tokenizer()


@lru_cache(maxsize=8)
def _folder_tokenizer(folder: str, _mtime: int):
    from transformers import CLIPTokenizer

    with _load_lock:
        return CLIPTokenizer.from_pretrained(folder, local_files_only=True)


@dataclass
class Word:
    text: str  # as the tokenizer reads it: lower case, spaces normalised
    ids: list[int]
    pieces: list[str]  # the byte-pair pieces, as the vocabulary spells them ("</w>": word end)
    weight: float  # every piece of a word has its weight: a word never spans two fragments
    cut: bool = False  # its pieces are in two chunks: the chunk ended inside it

    @property
    def split(self) -> bool:
        """The tokenizer cut it into several pieces: the model does not know it whole."""
        return len(self.ids) > 1

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "ids": self.ids,
            "pieces": self.pieces,
            "weight": round(self.weight, 4),
            "split": self.split,
            "cut": self.cut,
        }


@dataclass
class ReadChunk:
    ids: list[int]  # the text tokens the encoder reads, without its start and end tokens
    weights: list[float]
    starts: str  # why it starts: "start", "BREAK", "comma" (A1111's backtrack) or "full"
    words: list[Word] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "count": len(self.ids),
            "starts": self.starts,
            "ids": self.ids,
            "weights": [round(w, 4) for w in self.weights],
            "words": [w.to_dict() for w in self.words],
        }


@dataclass
class Reading:
    """One prompt as the engine encodes it."""

    chunks: list[ReadChunk]
    loras: list[tuple[str, float]]  # <lora:name:weight> tags, taken out of the text
    cut_words: list[str] = field(default_factory=list)  # words a chunk's end falls inside
    empty_chunks_added: int = 0  # to match the other side's count (see ``pair``)

    @property
    def text_tokens(self) -> int:
        return sum(len(c.ids) for c in self.chunks)

    @property
    def count(self) -> int:
        """A1111's count: every chunk but the last as full (its padding is read too)."""
        return CHUNK * (len(self.chunks) - 1) + len(self.chunks[-1].ids)

    @property
    def counter(self) -> str:
        """``37/75``, or ``80/150 (2 x 75)`` for a prompt in two chunks: A1111's count over
        its chunks' room, and the number of chunks."""
        n = len(self.chunks)
        room = f"{self.count}/{CHUNK * n}"
        return room if n == 1 else f"{room} ({n} x {CHUNK})"

    def split_words(self) -> list[str]:
        split = (w.text for c in self.chunks for w in c.words if w.split and not w.cut)
        return list(dict.fromkeys([*split, *self.cut_words]))

    def notes(self) -> list[str]:
        """What happens to the prompt on its way to the encoder, one sentence each."""
        out = []
        if self.loras:
            out.append(
                "The <lora:...> tags are instructions, not text: they are taken out before "
                "the prompt is encoded."
            )
        if len(self.chunks) > 1:
            out.append(
                f"Nothing is dropped: past {CHUNK} tokens the prompt goes on in another chunk, "
                f"each encoded on its own ({len(self.chunks)} chunks)."
            )
        if self.cut_words:
            out.append(
                "A chunk ends inside " + ", ".join(dict.fromkeys(self.cut_words)) + ": its "
                "pieces are read in two chunks (a comma within 20 tokens of the end would have "
                "moved the whole phrase to the next one)."
            )
        if self.empty_chunks_added:
            out.append(
                f"{self.empty_chunks_added} empty chunk(s) added to match the other prompt's "
                "count: guidance compares the two chunk by chunk."
            )
        return out

    def to_dict(self) -> dict:
        return {
            "counter": self.counter,
            "count": self.count,
            "text_tokens": self.text_tokens,
            "chunks": [c.to_dict() for c in self.chunks],
            "split_words": self.split_words(),
            "cut_words": self.cut_words,
            "loras": [{"name": name, "weight": weight} for name, weight in self.loras],
            "empty_chunks_added": self.empty_chunks_added,
            "notes": self.notes(),
        }


def read_prompt(prompt: str, tokenizer=None) -> Reading:
    """``prompt`` as ``conditioning.encode_prompts`` encodes it, chunk by chunk."""
    tokenizer = tokenizer or clip_tokenizer()
    text, loras = prompts.extract_lora_tags(prompt)  # as generate.py hands it on
    engine_chunks = conditioning._chunks(text, tokenizer)  # the engine's own cut, not a copy
    breaks = _break_positions(text, tokenizer) if prompts.BREAK in text else []
    pieces = tokenizer.convert_ids_to_tokens([t for c in engine_chunks for t in c.tokens])
    chunks, start, piece_at = [], 0, 0
    for i, chunk in enumerate(engine_chunks):
        if i == 0:
            starts = "start"
        elif start in breaks:
            breaks.remove(start)
            starts = prompts.BREAK
        else:  # cut when the chunk was full: at its last comma if it was near, else at 75
            starts = "full" if len(engine_chunks[i - 1].tokens) == CHUNK else "comma"
        read = ReadChunk(list(chunk.tokens), list(chunk.weights), starts)
        read.words = _words(tokenizer, chunk, pieces[piece_at : piece_at + len(chunk.tokens)])
        chunks.append(read)
        start += len(chunk.tokens)
        piece_at += len(chunk.tokens)
    cut_words = []
    for before, after in zip(chunks, chunks[1:], strict=False):
        if before.words and after.words and not before.words[-1].pieces[-1].endswith(_END):
            head, tail = before.words[-1], after.words[0]
            head.cut = tail.cut = True
            cut_words.append(head.text + tail.text)
    return Reading(chunks, loras, cut_words)


def pair(prompt: Reading, negative: Reading) -> None:
    """Note the empty chunks the engine adds to the shorter side, so both have as many."""
    n = max(len(prompt.chunks), len(negative.chunks))
    for side in (prompt, negative):
        side.empty_chunks_added = n - len(side.chunks)


def _break_positions(text: str, tokenizer) -> list[int]:
    """Where (in tokens from the start) each BREAK falls; several may fall at one place."""
    tokenize = conditioning._tokenize(tokenizer)
    positions, at = [], 0
    for fragment in prompts.parse(text):
        if fragment.is_break:
            positions.append(at)
        else:
            at += len(tokenize(fragment.text))
    return positions


def _words(tokenizer, chunk: prompts.Chunk, pieces: list[str]) -> list[Word]:
    words: list[Word] = []
    current: Word | None = None
    for token, weight, piece in zip(chunk.tokens, chunk.weights, pieces, strict=True):
        if current is None:
            current = Word("", [], [], weight)
            words.append(current)
        current.ids.append(token)
        current.pieces.append(piece)
        if piece.endswith(_END):
            current = None
    for word, text in zip(words, tokenizer.batch_decode([w.ids for w in words]), strict=True):
        word.text = text.strip()
    return words
