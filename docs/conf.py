"""Sphinx configuration of the course site (``make site``; see docs/README.md)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
# The repository (lessons, notebooks, tools, tlwidgets): beside docs/, unless a copy of
# docs/ is built elsewhere (tests/test_site.py does, to leave the checkout alone).
ROOT = Path(os.environ.get("TLWIDGETS_SITE_ROOT", DOCS.parent)).resolve()
sys.path[:0] = [str(ROOT), str(DOCS / "_ext")]

project = "Transfer learning, hands on"
author = "The tlwidgets authors"
copyright = "the tlwidgets authors, Apache-2.0"  # noqa: A001  (Sphinx's name)

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "course_site",
]

# --- The course's links: one setting for the GitHub org/repo -------------------------
course_repository = os.environ.get("TLWIDGETS_SITE_REPO", "tlwidgets/tlwidgets")
course_branch = "main"
# The hub that nbgitpuller links open (a workshop sets its own: TLWIDGETS_HUB_URL).
course_hub_url = os.environ.get("TLWIDGETS_HUB_URL", "https://hub.example.org")
# Notebooks to render: executed ones (`make site` runs them in the quick profile into
# build/executed) or, when TLWIDGETS_SITE_NOTEBOOKS is not set, the stored ones.
course_notebooks = os.environ.get("TLWIDGETS_SITE_NOTEBOOKS", str(ROOT / "notebooks"))
course_results = os.environ.get("TLWIDGETS_COURSE_RESULTS",
                                str(ROOT / "benchmarks" / "results" / "course.json"))
course_node_ram_gb = float(os.environ.get("TLWIDGETS_NODE_RAM_GB", "64"))

# --- Sources --------------------------------------------------------------------------
exclude_patterns = ["_build", "_generated", "README.md", "**/.ipynb_checkpoints",
                    "notebooks/*.records.json"]
templates_path = ["_templates"]
nb_execution_mode = "off"  # never run anything while building: outputs come with the notebooks
nb_output_stderr = "remove"
nb_ipywidgets_js = {}  # no widget JavaScript from a CDN; widgets need a kernel anyway
myst_enable_extensions = ["colon_fence", "deflist", "substitution"]
myst_substitutions = {
    "hub_values": f"[`deploy/jupyterhub/`](https://github.com/{course_repository}/tree/"
                  f"{course_branch}/deploy/jupyterhub)",
}
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]  # lessons start sections at ## after the notebook title

# --- API reference --------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
# ignore-module-all: a package documents what it defines, not what it re-exports (each
# object is documented once, in its own module).
autodoc_default_options = {"members": True, "show-inheritance": True, "ignore-module-all": True}
autodoc_inherit_docstrings = False  # Keras' and scikit-learn's docstrings are theirs to render
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_google_docstring = False
napoleon_numpy_docstring = True  # the package's docstrings use numpydoc sections

# --- HTML: offline (no CDN; MathJax only on a page with math, and the lessons have none) ---
html_theme = "furo"
html_title = project
html_static_path = []
html_permalinks_icon = "#"
html_copy_source = False
