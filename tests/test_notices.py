"""The one notice channel: said once, as a Notice warning outside a kernel."""

from __future__ import annotations

import warnings

import pytest

from tlwidgets.notices import Notice, notice, reset


@pytest.fixture(autouse=True)
def _fresh():
    reset()
    yield
    reset()


def test_notice_is_a_user_warning_said_once():
    with pytest.warns(Notice, match="stand-in"):
        assert notice("A stand-in is used.") is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert notice("A stand-in is used.") is False
    assert issubclass(Notice, UserWarning)


def test_key_groups_different_texts():
    with pytest.warns(Notice):
        notice("Skipped 3 files in a/", key="skip:a")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert notice("Skipped 4 files in a/", key="skip:a") is False
    with pytest.warns(Notice):
        assert notice("Skipped 1 file in b/", key="skip:b") is True
