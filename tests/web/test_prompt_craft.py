"""The prompt's helpers in a real browser: the live token counter and its view of the chunks,
keyword suggestions as the user types, and a LoRA's trigger words one click away."""

import os
from pathlib import Path

from sfumato.engine.tokens import read_prompt
from tests.api.test_prompts import kohya_lora_with_tags

SHOTS = os.environ.get("SFUMATO_TEST_SCREENSHOTS")  # a folder: the tests leave screenshots there


def _shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), clip=CLIP)


CLIP = {"x": 0, "y": 0, "width": 700, "height": 560}  # the prompt and what is under it


def _counter_shows(page, field: str, text: str) -> None:
    page.wait_for_function(
        f"document.querySelector('#{field}-tokens').textContent === {text!r}", timeout=10_000
    )


def test_the_counter_follows_the_prompt_as_a1111_counts(page):
    page.fill("#prompt", "a photorealistic (castle:1.3), [blurry]")
    _counter_shows(page, "prompt", "6/75")
    long = ", ".join(f"a lighthouse number {i}" for i in range(20))
    page.fill("#prompt", long)
    assert read_prompt(long).counter == "110/150 (2 x 75)"  # the first chunk counted full
    _counter_shows(page, "prompt", "110/150 (2 x 75)")
    page.fill("#negative", "blurry, ugly")
    _counter_shows(page, "negative", "3/75")

    page.fill("#prompt", "a photorealistic (castle:1.3), [blurry] BREAK at night")
    page.wait_for_function(
        "document.querySelectorAll('#prompt-token-view .token-chunk').length == 2"
    )
    page.click("#prompt-token-view summary")
    split = page.locator("#prompt-token-view .tok.split")
    assert split.first.text_content() == "photo·realistic"
    assert "split into 2 pieces" in split.first.get_attribute("title")
    up = page.locator("#prompt-token-view .tok.up").first
    assert up.text_content() == "castle1.3"  # the word, its weight raised after it
    assert page.locator("#prompt-token-view .tok.down").first.text_content().startswith("blurry")
    assert "after BREAK" in page.text_content("#prompt-token-view")
    _shot(page, "token-view")


def test_keywords_are_suggested_and_a_loras_trigger_words_inserted(page, served):
    models = served.data / "models"
    models.mkdir(exist_ok=True)
    if not (models / "white-tagged.safetensors").exists():
        kohya_lora_with_tags(models)
        (models / "white-tagged.sfumato.toml").write_text('trigger_words = ["whitebg style"]\n')
    page.reload()  # the page lists LoRAs when it starts
    page.wait_for_selector("#page-generate:not([hidden])")

    # the demo model's own words, most frequent first
    page.click("#prompt")
    page.keyboard.type("a bl")
    page.wait_for_selector("#keyword-suggestions:not([hidden])", timeout=10_000)
    words = page.locator("#keyword-suggestions .suggestion span:first-child").all_text_contents()
    assert words[:2] == ["black", "blue"]  # 32,907 and 29,850 in its captions
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert page.input_value("#prompt") == "a black, "
    assert page.is_hidden("#keyword-suggestions")

    # a LoRA added: its trigger words, one click into the prompt; its tags suggested too
    page.click("#advanced summary")
    page.select_option("#lora-pick", "white-tagged")
    page.click("#lora-add")
    chip = page.locator(".lora-row .trigger-words .chip", has_text="whitebg style")
    chip.click()
    assert page.input_value("#prompt") == "a black, whitebg style"
    page.click("#prompt")
    page.keyboard.press("End")
    page.keyboard.type(", white b")
    page.wait_for_selector("#keyword-suggestions:not([hidden])", timeout=10_000)
    first = page.locator("#keyword-suggestions .suggestion").first.text_content()
    assert first.startswith("white background")  # a training tag of the LoRA's
    if SHOTS:
        page.wait_for_timeout(800)  # the counter waits for a pause in the typing
        _shot(page, "keyword-suggestions")
    page.keyboard.press("Tab")
    assert page.input_value("#prompt") == "a black, whitebg style, white background, "
    expected = read_prompt(page.input_value("#prompt")).counter
    _counter_shows(page, "prompt", expected)
