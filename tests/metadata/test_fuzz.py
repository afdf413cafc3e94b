"""A bounded fuzz run of the metadata reader (hypothesis, a few hundred examples, derandomized
so that every run is the same): arbitrary text in ``parameters``, arbitrary JSON (NaN and
infinities included) in sfumato's, ComfyUI's and InvokeAI's chunks. The reader must answer
with a GenerationInfo that serialises as strict JSON, or with NoGenerationData or
InvalidRequest; nothing else."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfumato.errors import InvalidRequest, NoGenerationData
from sfumato.metadata.read import GenerationInfo, read_info_bytes
from tests.metadata.test_hostile import png

EXAMPLES = 300
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=200)
NUMBERS = st.integers() | st.floats() | st.sampled_from([2**64, -(2**63) - 1, 10**30])
JSON = st.recursive(
    st.none() | st.booleans() | NUMBERS | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)
KEYS = st.sampled_from(["Steps", "CFG scale", "Seed", "Size", "Sampler", "Model", "Lora hashes"])
SETTING = st.tuples(KEYS | TEXT, TEXT | NUMBERS.map(str) | TEXT.map(json.dumps))
A1111 = st.tuples(TEXT, st.lists(SETTING, max_size=8)).map(
    lambda t: t[0] + "\n" + ", ".join(f"{k}: {v}" for k, v in t[1])
)
NODE = st.fixed_dictionaries(
    {"inputs": st.dictionaries(
        st.sampled_from(["steps", "cfg", "sampler_name", "seed", "denoise", "model", "positive",
                         "latent_image", "text", "width", "lora_name"]) | TEXT,
        JSON | st.tuples(st.sampled_from(["1", "2", "3"]), st.integers(0, 2)).map(list),
        max_size=8,
    ) | JSON}
)  # fmt: skip
GRAPH = st.dictionaries(st.sampled_from(["1", "2", "3"]) | TEXT, NODE | JSON, max_size=4)
SFUMATO = st.fixed_dictionaries(
    {"settings": st.dictionaries(
        st.sampled_from(["prompt", "seed", "steps", "guidance", "loras", "width", "strength",
                         "family"]) | TEXT, JSON, max_size=8)},
    optional={"model": JSON, "generator": JSON},
)  # fmt: skip


def itxt(key: str, value: str) -> tuple[bytes, bytes]:
    return b"iTXt", key.encode() + b"\0\0\0\0\0" + value.encode()


CHUNKS = st.lists(
    st.one_of(
        st.tuples(st.just("parameters"), TEXT | A1111),
        st.tuples(st.just("sfumato"), (SFUMATO | JSON).map(json.dumps)),
        st.tuples(st.sampled_from(["prompt", "workflow"]), (GRAPH | JSON).map(json.dumps)),
        st.tuples(st.just("invokeai_metadata"), JSON.map(json.dumps)),
    ),
    max_size=4,
)
seen = {"examples": 0, "answers": 0}


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(CHUNKS)
def test_the_reader_answers_any_metadata_with_strict_json_or_a_sentence(chunks):
    seen["examples"] += 1
    try:
        info = read_info_bytes(png(*(itxt(key, value) for key, value in chunks)))
    except (NoGenerationData, InvalidRequest):
        return
    seen["answers"] += 1
    assert isinstance(info, GenerationInfo)
    json.dumps(info.to_dict(), allow_nan=False)


def test_the_fuzz_run_reached_the_parsers():
    # (runs after the fuzz test in this file): some examples were read into answers
    assert seen["examples"] >= EXAMPLES and seen["answers"] > EXAMPLES // 10, seen
