"""Notebook 04b in JupyterLab: its coverage table renders, with no stderr and no error.

04b has no widget; the browser runs a copy in the smoke profile up to the OOV table
(section 2), the first thing a learner reads the numbers from. The later sections
(continuation, few labels, exercises) are the notebook test's.
"""

from __future__ import annotations

import nbformat

from tests.browser.notebook_copies import notebook_up_to

NAME = "04b_up_to_coverage.ipynb"


def test_coverage_table_renders_clean(lab, lab_server):
    notebook_up_to(lab_server.root, "04b_french_legal.ipynb", "oov.oov_report(", NAME)
    cells = nbformat.read(lab_server.root / NAME, as_version=4).cells
    assert "display(HTML(" in cells[-1].source, "the coverage table cell was not found"
    lab.open(NAME)
    lab.run_all(timeout=300)
    page = lab.page
    table = page.locator(".jp-OutputArea-output[data-mime-type='text/html'] table",
                         has_text="token coverage").first
    table.wait_for()
    assert lab.screenshot_outputs("04b-run-all")
    lab.assert_clean()
    header = table.locator("th").all_inner_texts()
    assert header[1:] == ["Livre IV / French", "GSD / French", "Livre IV / GloVe", "GSD / GloVe"]
    # every cell of the table is a number a reader can read: a rounded share or a count
    cells = table.locator("td").all_inner_texts()
    assert any(c.endswith("%") for c in cells) and not any("e-" in c for c in cells)
    # English vectors on French text: the printed warning says so before any number
    out = page.locator(".jp-OutputArea-output", has_text="Livre IV / GloVe: Language mismatch")
    assert out.count() == 1
