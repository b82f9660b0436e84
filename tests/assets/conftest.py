"""Fixtures of the asset tests: a real HTTP server and an empty cache folder."""

from __future__ import annotations

import pytest

from tests.assets.asset_server import start_server
from tlwidgets import assets, notices


@pytest.fixture
def server():
    httpd = start_server()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("TLWIDGETS_CACHE", str(path))
    monkeypatch.setenv("TLWIDGETS_DATA", "")
    monkeypatch.delenv("TLWIDGETS_OFFLINE", raising=False)
    monkeypatch.setenv("TLWIDGETS_DOWNLOAD_TIMEOUT", "1")
    monkeypatch.delenv("TLWIDGETS_DOWNLOAD_DEADLINE", raising=False)
    assets._unreachable.clear()
    notices.reset()
    yield path
    assets._unreachable.clear()
