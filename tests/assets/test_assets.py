"""The asset layer against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import time
import zipfile

import pytest

from tests.assets.asset_server import PAYLOAD, an_asset, leftovers
from tlwidgets import assets, notices
from tlwidgets.catalogue import Asset


def test_download_verifies_and_lands_in_cache(server, cache):
    server.files["/a.bin"] = PAYLOAD
    asset = an_asset(f"{server.url}/a.bin")
    with assets.registered_assets(asset):
        got = assets.resolve("test-asset")
        assert got.source == "download"
        assert got.path == cache / "misc/test.bin"
        assert got.path.read_bytes() == PAYLOAD
        # Second call: from the cache, no new request.
        again = assets.resolve("test-asset")
        assert again.source == "cache"
    assert server.hits == ["/a.bin"]
    assert leftovers(cache) == []


def test_checksum_mismatch_is_rejected_and_nothing_is_left(server, cache):
    server.files["/a.bin"] = PAYLOAD.replace(b"real", b"fake")
    with assets.registered_assets(an_asset(f"{server.url}/a.bin")), pytest.raises(assets.ChecksumError, match="checksum"):
        assets.fetch("test-asset")
    assert not (cache / "misc/test.bin").exists()
    assert leftovers(cache) == []


def test_wrong_size_is_rejected(server, cache):
    server.files["/a.bin"] = PAYLOAD[:-1]
    with assets.registered_assets(an_asset(f"{server.url}/a.bin")), pytest.raises(assets.ChecksumError, match="bytes"):
        assets.fetch("test-asset")
    assert not (cache / "misc/test.bin").exists()


def test_unresponsive_server_fails_fast_with_the_fetch_command(server, cache):
    with assets.registered_assets(an_asset(f"{server.url}/hang")):
        t0 = time.monotonic()
        with pytest.raises(assets.AssetNotFoundError) as err:
            assets.resolve("test-asset")
        assert time.monotonic() - t0 < 10
    msg = str(err.value)
    assert "test-asset" in msg and "python -m tlwidgets fetch test-asset" in msg
    assert not (cache / "misc/test.bin").exists()
    assert leftovers(cache) == []


def test_stalled_download_leaves_no_partial_file(server, cache):
    with assets.registered_assets(an_asset(f"{server.url}/stall")), pytest.raises(assets.AssetNotFoundError):
        assets.fetch("test-asset")
    assert not (cache / "misc/test.bin").exists()
    assert leftovers(cache) == []


def test_offline_missing_asset_fails_within_seconds(cache):
    # Nothing listens on port 9 (discard) of 127.0.0.1: the connection is refused.
    with assets.registered_assets(an_asset("http://127.0.0.1:9/a.bin")):
        t0 = time.monotonic()
        with pytest.raises(assets.AssetNotFoundError, match="fetch test-asset") as err:
            assets.resolve("test-asset")
        assert time.monotonic() - t0 < 10
    # said once: resolve passes fetch's message on rather than wrapping it in its own
    msg = str(err.value)
    assert msg.count("Download failed") == 1 and msg.count("is not available") == 1


def test_corrupted_cache_file_is_removed_and_refetched(server, cache):
    server.files["/a.bin"] = PAYLOAD
    with assets.registered_assets(an_asset(f"{server.url}/a.bin")):
        path = assets.fetch("test-asset").path
        path.write_bytes(b"x" * len(PAYLOAD))  # same size, wrong content
        with pytest.warns(UserWarning, match="checksum"):
            got = assets.resolve("test-asset")
        assert got.source == "download"
        assert path.read_bytes() == PAYLOAD
    assert server.hits == ["/a.bin", "/a.bin"]


def test_resolution_order_data_then_cache_then_download(server, cache, tmp_path, monkeypatch):
    server.files["/a.bin"] = PAYLOAD
    data1, data2 = tmp_path / "d1", tmp_path / "d2"
    for d in (data1, data2):
        (d / "misc").mkdir(parents=True)
    (data2 / "misc/test.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv("TLWIDGETS_DATA", f"{data1}{os.pathsep}{data2}")
    with assets.registered_assets(an_asset(f"{server.url}/a.bin")):
        assert assets.resolve("test-asset").path == data2 / "misc/test.bin"
        (data1 / "misc/test.bin").write_bytes(PAYLOAD)
        assert assets.resolve("test-asset").path == data1 / "misc/test.bin"
        # A wrong file in a data folder is reported and skipped, not deleted.
        (data1 / "misc/test.bin").write_bytes(b"y" * len(PAYLOAD))
        with pytest.warns(UserWarning, match="does not match"):
            assert assets.resolve("test-asset").path == data2 / "misc/test.bin"
        assert (data1 / "misc/test.bin").exists()
        monkeypatch.setenv("TLWIDGETS_DATA", "")
        assert assets.resolve("test-asset").source == "download"
        assert assets.resolve("test-asset").source == "cache"
    assert server.hits == ["/a.bin"]


def test_missing_data_folder_warns_but_works(server, cache, tmp_path, monkeypatch):
    server.files["/a.bin"] = PAYLOAD
    monkeypatch.setenv("TLWIDGETS_DATA", str(tmp_path / "no-such-folder"))
    with (assets.registered_assets(an_asset(f"{server.url}/a.bin")),
          pytest.warns(UserWarning, match="not a folder")):
        assert assets.resolve("test-asset").source == "download"


def test_unknown_id_lists_known_ids_closest_first():
    with pytest.raises(assets.UnknownAssetError) as err:
        assets.get_asset("hymenopter")
    msg = str(err.value)
    assert "Unknown asset id 'hymenopter'" in msg
    known = msg.split("closest first: ")[1]
    assert known.startswith("hymenoptera")
    assert "glove-6b-50d" in known


def test_zip_folder_asset_is_unpacked_atomically(server, cache):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("set/train/a/1.txt", "one")
        zf.writestr("set/val/a/2.txt", "two")
        zf.writestr("set/../evil.txt", "no")
    body = buf.getvalue()
    server.files["/set.zip"] = body
    asset = Asset(id="test-dir", title="Folder", path="images/set", url=f"{server.url}/set.zip",
                  licence="CC0", download_sha256=hashlib.sha256(body).hexdigest(),
                  archive="zip", member="set", is_dir=True, required=("train/a", "val/a"))
    with assets.registered_assets(asset):
        got = assets.resolve("test-dir")
        assert (got.path / "train/a/1.txt").read_text() == "one"
        assert not (cache / "images/evil.txt").exists()
        assert assets.resolve("test-dir").source == "cache"
    assert leftovers(cache) == []


def test_gzip_asset_is_decompressed(server, cache):
    body = gzip.compress(PAYLOAD)
    server.files["/v.gz"] = body
    asset = Asset(id="test-gz", title="Gz", path="vectors/v.txt", url=f"{server.url}/v.gz",
                  licence="CC0", download_md5=hashlib.md5(body).hexdigest(), archive="gzip")
    with assets.registered_assets(asset):
        assert assets.resolve("test-gz").path.read_bytes() == PAYLOAD


def test_standin_is_used_with_a_visible_notice(cache, tmp_path, monkeypatch):
    (tmp_path / "d/misc").mkdir(parents=True)
    (tmp_path / "d/misc/small.bin").write_bytes(b"small")
    monkeypatch.setenv("TLWIDGETS_DATA", str(tmp_path / "d"))
    small = Asset(id="test-small", title="Small", path="misc/small.bin", url=None, licence="CC0")
    big = an_asset("http://127.0.0.1:9/big.bin", standin="test-small",
                 standin_note="Fewer rows.")
    with assets.registered_assets(small, big):
        with pytest.warns(notices.Notice, match="Stand-in"):
            got = assets.resolve("test-asset")
        assert got.is_standin and got.path.read_bytes() == b"small"
        assert "Fewer rows." in got.notice and "fetch test-asset" in got.notice
        with pytest.raises(assets.AssetNotFoundError):
            assets.resolve("test-asset", standin=False)


def test_fixture_folder_matches_the_catalogue(shared_assets, monkeypatch):
    """Every fixture file verifies against the catalogue's checksums (same layout)."""
    monkeypatch.setenv("TLWIDGETS_DATA", str(shared_assets))
    for asset_id in ("mobilenet-0.25-224-no-top", "hymenoptera", "pneumoniamnist-balanced",
                     "glove-6b-50d-top20k", "ud-en-ewt-train", "ud-en-ewt-dev", "ud-en-ewt-test",
                     "uner-en-ewt-dev", "uner-en-ewt-test"):
        got = assets.resolve(asset_id, download=False, standin=False)
        assert got.source == "data", asset_id
        assert got.path.is_relative_to(shared_assets)


def test_installed_package_is_an_offline_source(cache):
    got = assets.resolve("glove-6b-50d", download=False, standin=False)
    assert got.source == "package"
    assert (got.path / "glove_6B_50d_emb.npy").is_file()


def test_packs_name_known_assets():
    for name in assets.PACKS:
        for asset_id in assets.pack(name):
            assert assets.get_asset(asset_id).url, f"{asset_id} in pack {name} has no source"
    with pytest.raises(assets.AssetError, match="Unknown pack"):
        assets.pack("everything")
