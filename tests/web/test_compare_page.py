"""The Compare view in a real browser against a real server: the axes chosen, the number of
pictures and the time they will take said before anything starts, a mistake said at once,
the grid made as one job and shown, every cell drawn as its axes say."""

from __future__ import annotations

import os

from PIL import Image

from sfumato.demo.analyze import analyze
from sfumato.grid import Layout, parse_axis


def test_choose_axes_see_the_count_then_make_the_grid(page, tmp_path):
    page.click("nav a[data-page=compare]")
    page.wait_for_selector("#page-compare:not([hidden])")
    page.fill("#compare-prompt", "a red circle on a white background")
    page.fill("#compare-seed", "4")
    page.fill("#compare-steps", "10")
    page.select_option("#compare-x-name", "prompt")
    page.fill("#compare-x-values", "red,green,blue")
    page.select_option("#compare-y-name", "prompt")
    page.fill("#compare-y-values", "white,black")
    page.wait_for_function(
        "document.querySelector('#compare-summary').textContent.startsWith('6 pictures')"
    )
    summary = page.text_content("#compare-summary")
    assert "seed 4" in summary and ("about" in summary or "first picture" in summary)

    # a mistake is said before anything starts, and the button waits
    page.fill("#compare-x-values", "blue,green")
    page.wait_for_function("document.querySelector('#compare-error').textContent !== ''")
    assert "does not hold" in page.text_content("#compare-error")
    assert page.is_disabled("#compare-start")
    page.fill("#compare-x-values", "red,green,blue")
    page.wait_for_function("!document.querySelector('#compare-start').disabled")

    page.click("#compare-start")
    page.wait_for_selector("#compare-grid", timeout=120_000)
    if os.environ.get("SFUMATO_TEST_SCREENSHOTS"):  # for a person to look at
        page.screenshot(
            path=os.environ["SFUMATO_TEST_SCREENSHOTS"] + "/compare.png", full_page=True
        )
    source = page.get_attribute("#compare-grid", "src")
    grid = tmp_path / "grid.png"
    grid.write_bytes(page.request.get(source).body())
    sheet = Image.open(grid).convert("RGB")
    at = Layout.of(
        [parse_axis("prompt=red,green,blue"), parse_axis("prompt=white,black")], (64, 64)
    )
    for i, colour in enumerate(("red", "green", "blue")):
        for j, background in enumerate(("white", "black")):
            x0, y0 = at.origin(i, j, 0)
            drawn = analyze(sheet.crop((x0, y0, x0 + 64, y0 + 64)))
            assert (drawn.colour, drawn.background) == (colour, background), (i, j, drawn)
