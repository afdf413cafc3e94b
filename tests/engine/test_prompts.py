"""A1111's prompt syntax, case by case as its wiki documents it."""

import pytest

from sfumato.engine.prompts import CHUNK, Fragment, chunk, extract_lora_tags, parse


def weights(prompt):
    return [(f.text, round(f.weight, 4)) for f in parse(prompt)]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a red circle", [("a red circle", 1.0)]),
        ("a (red:1.3) circle", [("a ", 1.0), ("red", 1.3), (" circle", 1.0)]),
        ("a (red) circle", [("a ", 1.0), ("red", 1.1), (" circle", 1.0)]),
        ("((red))", [("red", 1.21)]),
        ("[red]", [("red", 0.9091)]),
        ("[[red]]", [("red", 0.8264)]),
        ("(a (b) [c])", [("a ", 1.1), ("b", 1.21), (" ", 1.1), ("c", 1.0)]),
        ("(red blue:0.5)", [("red blue", 0.5)]),
        ("( red : 1.5 )", [(" red ", 1.5)]),
        ("(a (b:2))", [("a ", 1.1), ("b", 2.2)]),
        (r"a \(b\) c", [("a (b) c", 1.0)]),
        (r"\[x\] \\", [("[x] \\", 1.0)]),
        ("open (a b", [("open ", 1.0), ("a b", 1.1)]),  # left open: applies to the rest
        ("stray ) x ]", [("stray ) x ]", 1.0)]),  # closing nothing: plain text
        ("time: 10:30", [("time: 10:30", 1.0)]),
        ("(a:1.2.3)", [("a:1.2.3)", 1.1)]),  # not a number: text, bracket still open
        ("", [("", 1.0)]),
    ],
)
def test_emphasis(prompt, expected):
    assert weights(prompt) == expected


def test_break_splits_only_as_a_word():
    assert weights("a cat BREAK a dog") == [("a cat", 1.0), ("BREAK", -1), ("a dog", 1.0)]
    assert parse("a BREAK b")[1].is_break
    assert weights("BREAKfast, break") == [("BREAKfast, break", 1.0)]
    assert weights("(a BREAK b:1.5)") == [("a", 1.5), ("BREAK", -1), ("b", 1.5)]


def test_lora_tags_leave_the_prompt():
    text, tags = extract_lora_tags("a cat <lora:pixel_v2:0.8>, <LORA:ink> <lyco:x:-0.5:0.2>")
    assert tags == [("pixel_v2", 0.8), ("ink", 1.0), ("x", -0.5)]
    assert "<" not in text and text.startswith("a cat")


def _words(text):
    return [int(w) for w in text.split()]


def test_long_prompts_are_cut_into_chunks_of_75():
    fragments = [Fragment(" ".join(str(i) for i in range(200)), 1.0)]
    chunks = chunk(fragments, _words, comma_token=-1)
    assert [len(c.tokens) for c in chunks] == [75, 75, 50]
    assert [t for c in chunks for t in c.tokens] == list(range(200))  # nothing dropped


def test_a_full_chunk_breaks_at_a_nearby_comma():
    comma = 999
    tokens = [*range(70), comma, *range(100, 110)]  # the comma is the 71st token
    chunks = chunk([Fragment(" ".join(map(str, tokens)), 1.0)], _words, comma_token=comma)
    assert chunks[0].tokens == [*range(70), comma]
    assert chunks[1].tokens == list(range(100, 110))


def test_break_starts_a_new_chunk_and_weights_follow_their_tokens():
    chunks = chunk([Fragment("1 2", 1.0), Fragment("BREAK", -1), Fragment("3", 1.5)], _words, None)
    assert [(c.tokens, c.weights) for c in chunks] == [([1, 2], [1.0, 1.0]), ([3], [1.5])]
    assert len(chunk([Fragment("", 1.0)], _words, None)) == 1
    assert CHUNK == 75


def test_malformed_lora_tags_neither_crash_nor_hang():
    import time

    # "<lora:x:.>" raised ValueError (a 500 on the API); a weight that is no number reads as 1
    assert extract_lora_tags("a <lora:x:.>") == ("a ", [("x", 1.0)])
    assert extract_lora_tags("b <lora:x:-.5:te=1>") == ("b ", [("x", -0.5)])
    # unclosed tags were scanned to the prompt's end from each one: 160,000 characters took
    # 70 s; bounded parts make it linear (a guard against a hang, not a speed figure)
    started = time.monotonic()
    assert extract_lora_tags("<lora:a:" * 20_000)[1] == []
    assert time.monotonic() - started < 5
