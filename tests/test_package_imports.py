"""The package top: cheap to import, the main objects reachable from it."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import tlwidgets


def test_importing_tlwidgets_does_not_import_tensorflow_or_the_widgets():
    code = ("import sys, tlwidgets, tlwidgets.featurize, tlwidgets.images; "
            "heavy = [m for m in ('tensorflow', 'keras', 'gensim', 'ipywidgets', 'anywidget') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", sorted(tlwidgets._LAZY))
def test_each_top_level_name_is_the_object_of_its_module(name):
    module = importlib.import_module(tlwidgets._LAZY[name])
    assert getattr(tlwidgets, name) is getattr(module, name)
    assert name in dir(tlwidgets) and name in tlwidgets.__all__


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Featurizer'"):
        tlwidgets.Featurizer  # noqa: B018
