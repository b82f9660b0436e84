"""Notebook 04 in JupyterLab: the explorer and OOV widgets render, and clicks reach the kernel."""

from __future__ import annotations

import re


def test_embedding_widgets_round_trip(lab):
    lab.open("04_word_embeddings.ipynb")
    lab.run_all(timeout=400)
    page = lab.page
    assert lab.eval("profile") == "smoke"
    assert lab.screenshot_outputs("04-run-all")
    lab.assert_clean()

    explorer = page.locator(".tlw-emb-explorer").first
    explorer.scroll_into_view_if_needed()
    # the first word is a domain word: no general vector, eight domain neighbours
    assert explorer.locator("table.tlw-emb-general", has_text="not in the vocabulary").count() == 1
    assert explorer.locator("table.tlw-emb-domain tr").count() == 8
    assert explorer.locator("figure.tlw-emb-map img").count() == 1

    # neighbours of a word typed in the browser, in both spaces
    word = explorer.locator(".tlw-emb-word input")
    word.fill("function")
    word.press("Enter")
    explorer.locator(".tlw-emb-neighbours").click()
    explorer.locator("table.tlw-emb-general tr").nth(7).wait_for()
    assert lab.eval("explorer.word") == "function"
    assert int(lab.eval("len(explorer.neighbours_domain)")) == 8

    # an analogy solved by a click
    explorer.locator(".tlw-emb-solve").click()
    explorer.locator(".tlw-emb-analogy", has_text="queen").wait_for()
    assert "queen" in lab.eval("explorer.analogy_result")
    lab.screenshot(explorer, "04-explorer-after-analogy")

    # the OOV widget on pasted text
    oov = page.locator(".tlw-oov").first
    oov.scroll_into_view_if_needed()
    assert not oov.locator(".tlw-oov-text textarea").is_visible()  # only for pasted text
    oov.locator(".tlw-oov-choice select").select_option("pasted text")
    oov.locator(".tlw-oov-text textarea").fill("The flarpish zorbs call __init__ twice.")
    oov.locator(".tlw-oov-run").click()
    oov.locator(".tlw-oov-output", has_text="flarpish").wait_for()
    assert lab.eval("oov_widget.source") == "pasted text"
    assert re.fullmatch(r"0\.\d+", lab.eval("round(oov_widget.unk_share, 3)"))
    lab.screenshot(oov, "04-oov-after-paste")
    lab.assert_clean()
