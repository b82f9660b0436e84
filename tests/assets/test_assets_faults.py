"""The asset layer under real faults: broken servers, bad disks, killed and racing processes.

Every fault is produced for real: HTTP servers on 127.0.0.1 that cut bodies
short, reply in something other than HTTP, drip bytes or stall; a file where
the cache folder should be; read-only and full file systems (tmpfs mounts when
the tests run as root, who ignores file modes); ``kill -9`` of a fetching
process; two processes fetching the same folder at once.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.assets.asset_server import PAYLOAD, an_asset, leftovers, start_server
from tlwidgets import assets, cache_housekeeping, doctor, notices
from tlwidgets.catalogue import Asset

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_H5 = ROOT.parent / "shared" / "assets" / "models" / "mobilenet_2_5_224_tf_no_top.h5"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# --------------------------------------------------------------------------- servers


@contextmanager
def _raw_server(reply: bytes | None = None, drip: bytes | None = None):
    """A TCP server that answers every connection with ``reply`` (not HTTP) or drips ``drip``."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    stop = threading.Event()

    def serve():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            with conn:
                try:
                    conn.recv(4096)
                    if reply is not None:
                        conn.sendall(reply)
                    for byte in drip or b"":
                        if stop.is_set():
                            break
                        conn.sendall(bytes([byte]))
                        time.sleep(0.5)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        sock.close()


def _with_standin(tmp_path, monkeypatch, url: str) -> tuple[Asset, Asset]:
    """The test asset at ``url``, with a local stand-in in a data folder."""
    (tmp_path / "d/misc").mkdir(parents=True, exist_ok=True)
    (tmp_path / "d/misc/small.bin").write_bytes(b"small")
    monkeypatch.setenv("TLWIDGETS_DATA", str(tmp_path / "d"))
    small = Asset(id="test-small", title="Small", path="misc/small.bin", url=None, licence="CC0")
    return small, an_asset(url, standin="test-small", standin_note="Fewer rows.")


def _folder_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(20):
            zf.writestr(f"set/train/a/{i}.txt", f"train {i}" * 100)
            zf.writestr(f"set/val/a/{i}.txt", f"val {i}" * 100)
    return buf.getvalue()


def _folder_asset(url: str, body: bytes) -> Asset:
    return Asset(id="test-dir", title="Folder", path="images/set", url=url, licence="CC0",
                 download_sha256=hashlib.sha256(body).hexdigest(), archive="zip", member="set",
                 is_dir=True, required=("train/a", "val/a"))


@contextmanager
def _tmpfs(path: Path, size: str, *, read_only: bool = False):
    """Mount a small tmpfs at ``path`` (root only; others skip)."""
    if not IS_ROOT:
        pytest.skip("needs root to mount a small or read-only file system")
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _child(code: str, env: dict[str, str], *, timeout: float = 60) -> subprocess.Popen:
    """A Python process that runs ``code`` with this checkout first on its path."""
    full = {**os.environ, **env, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen([sys.executable, "-c", _REGISTER + textwrap.dedent(code)], env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


_REGISTER = """
import hashlib, sys
from tlwidgets import assets
from tlwidgets.catalogue import Asset
"""


# --------------------------------------------------------------------------- raw exceptions


def test_cache_that_is_a_file_gives_an_asset_error_and_the_standin(server, cache, tmp_path,
                                                                   monkeypatch):
    server.files["/a.bin"] = PAYLOAD
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("not a folder")
    small, big = _with_standin(tmp_path, monkeypatch, f"{server.url}/a.bin")
    with assets.registered_assets(small, big):
        with pytest.raises(assets.AssetError) as err:
            assets.fetch("test-asset")
        msg = str(err.value)
        assert "'test-asset'" in msg and "is a file, not a folder" in msg
        assert "TLWIDGETS_CACHE" in msg  # the fix
        with pytest.warns(notices.Notice, match="Stand-in"):
            got = assets.resolve("test-asset")
        assert got.is_standin and got.path.read_bytes() == b"small"
    assert server.hits == []  # nothing downloaded into nowhere


def test_cache_below_a_file_is_reported(server, cache, monkeypatch):
    cache.parent.mkdir(parents=True, exist_ok=True)
    (cache.parent / "blocker").write_text("x")
    monkeypatch.setenv("TLWIDGETS_CACHE", str(cache.parent / "blocker" / "cache"))
    server.files["/a.bin"] = PAYLOAD
    with assets.registered_assets(an_asset(f"{server.url}/a.bin")), \
            pytest.raises(assets.AssetError, match="blocker is a file"):
        assets.fetch("test-asset")
    status = cache_housekeeping.cache_status()
    assert not status.usable and "TLWIDGETS_CACHE" in status.fix


def test_read_only_cache_gives_an_asset_error(server, cache, tmp_path, monkeypatch):
    server.files["/a.bin"] = PAYLOAD
    small, big = _with_standin(tmp_path, monkeypatch, f"{server.url}/a.bin")
    if IS_ROOT:
        ctx = _tmpfs(cache, "1m", read_only=True)
    else:
        cache.mkdir()
        cache.chmod(0o555)
        ctx = _nullcontext(cache)
    with ctx, assets.registered_assets(small, big):
        with pytest.raises(assets.AssetError) as err:
            assets.fetch("test-asset")
        assert "not writable" in str(err.value) and "TLWIDGETS_CACHE" in str(err.value)
        with pytest.warns(notices.Notice, match="Stand-in"):
            assert assets.resolve("test-asset").is_standin
        report = doctor.diagnose(probe_tensorflow=False)
        assert not report.ready and "not writable" in report.cache_problem
        text = doctor.format_report(report)
        assert "Not ready: the cache is unusable" in text and "Ready:" not in text


@contextmanager
def _nullcontext(value):
    yield value


def test_full_disk_while_writing_gives_an_asset_error_and_leaves_nothing(server, cache):
    big = os.urandom(24 << 20)  # more than the 20 MB file system holds
    server.files["/big.bin"] = big
    asset = an_asset(f"{server.url}/big.bin", sha256=hashlib.sha256(big).hexdigest(),
                   file_size=len(big))
    with _tmpfs(cache, "20m"), assets.registered_assets(asset):
        with pytest.raises(assets.AssetError) as err:
            assets.fetch("test-asset", timeout=5)
        msg = str(err.value)
        assert "disk is full" in msg and "TLWIDGETS_CACHE" in msg and "'test-asset'" in msg
        assert leftovers(cache) == []
        assert not (cache / "misc/test.bin").exists()


def test_nearly_full_cache_is_reported_before_downloading(server, cache):
    server.files["/a.bin"] = PAYLOAD
    with _tmpfs(cache, "1m"), assets.registered_assets(an_asset(f"{server.url}/a.bin")):
        assert "is full" in cache_housekeeping.cache_status().problem
        with pytest.raises(assets.AssetError, match="is full"):
            assets.fetch("test-asset")
    assert server.hits == []


def test_chunked_body_cut_short_is_an_asset_error_and_the_standin_is_used(server, cache,
                                                                          tmp_path, monkeypatch):
    small, big = _with_standin(tmp_path, monkeypatch, f"{server.url}/chunked-cut")
    with assets.registered_assets(small, big):
        with pytest.raises(assets.AssetError) as err:
            assets.fetch("test-asset")
        assert "closed the connection" in str(err.value)
        assert "python -m tlwidgets fetch test-asset" in str(err.value)
        with pytest.warns(notices.Notice, match="Stand-in"):
            assert assets.resolve("test-asset").is_standin
    assert leftovers(cache) == []


def test_body_shorter_than_its_content_length_is_refused(server, cache):
    with assets.registered_assets(an_asset(f"{server.url}/short", sha256=None, file_size=None)), \
            pytest.raises(assets.AssetError, match="after 1000 of 28000 bytes"):
        assets.fetch("test-asset")
    assert not (cache / "misc/test.bin").exists() and leftovers(cache) == []


def test_non_http_reply_is_an_asset_error(cache):
    with _raw_server(reply=b"SSH-2.0-OpenSSH_9.6\r\n") as url, \
            assets.registered_assets(an_asset(f"{url}/a.bin")), \
            pytest.raises(assets.AssetError, match="did not reply in HTTP"):
        assets.fetch("test-asset")
    assert leftovers(cache) == []


@pytest.mark.parametrize("value", ["nan", "-1", "inf", "abc", "0"])
def test_bad_timeout_setting_is_an_asset_error_naming_it(server, cache, tmp_path, monkeypatch,
                                                         value):
    server.files["/a.bin"] = PAYLOAD
    small, big = _with_standin(tmp_path, monkeypatch, f"{server.url}/a.bin")
    monkeypatch.setenv("TLWIDGETS_DOWNLOAD_TIMEOUT", value)
    with assets.registered_assets(small, big):
        with pytest.raises(assets.AssetError) as err:
            assets.fetch("test-asset")
        msg = str(err.value)
        assert f"TLWIDGETS_DOWNLOAD_TIMEOUT={value!r}" in msg and "'test-asset'" in msg
        assert "unset" in msg  # the fix
        with pytest.warns(notices.Notice, match="Stand-in"):
            assert assets.resolve("test-asset").is_standin
    assert server.hits == []


def test_cli_goes_on_after_a_failure_and_exits_non_zero(server, cache):
    server.files["/good.bin"] = PAYLOAD
    code = f"""
    from tlwidgets.__main__ import main
    good = Asset(id="test-good", title="Good", path="misc/good.bin", url="{server.url}/good.bin",
                 licence="CC0", sha256=hashlib.sha256({PAYLOAD!r}).hexdigest())
    cut = Asset(id="test-cut", title="Cut", path="misc/cut.bin", url="{server.url}/chunked-cut",
                licence="CC0")
    with assets.registered_assets(good, cut):
        sys.exit(main(["fetch", "test-cut", "test-good", "--quiet"]))
    """
    proc = _child(code, {"TLWIDGETS_CACHE": str(cache), "TLWIDGETS_DATA": "",
                         "TLWIDGETS_OFFLINE": ""})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    assert "FAILED   test-cut" in err and "closed the connection" in err
    assert "ok       test-good" in out
    assert (cache / "misc/good.bin").read_bytes() == PAYLOAD


def test_doctor_json_reports_an_unusable_cache(tmp_path, shared_assets, monkeypatch):
    from tlwidgets.__main__ import report_json

    (tmp_path / "cache-file").write_text("x")
    monkeypatch.setenv("TLWIDGETS_CACHE", str(tmp_path / "cache-file"))
    monkeypatch.setenv("TLWIDGETS_DATA", str(shared_assets))
    report = json.loads(json.dumps(report_json(doctor.diagnose(probe_tensorflow=False))))
    assert report["ready"] is False
    assert report["cache"]["usable"] is False and "is a file" in report["cache"]["problem"]
    assert any("TLWIDGETS_CACHE" in fix for fix in report["fixes"])


# --------------------------------------------------------------------------- deadlines


def test_dripping_server_is_stopped_by_the_speed_floor(server, cache):
    # One byte every 0.5 s never trips a 2 s per-read timeout; the old code waited 100 s.
    with assets.registered_assets(an_asset(f"{server.url}/drip")):
        t0 = time.monotonic()
        with pytest.raises(assets.AssetError, match="stalled") as err:
            assets.fetch("test-asset", timeout=2)
        assert time.monotonic() - t0 < 6
    assert "test-asset" in str(err.value)
    assert leftovers(cache) == []


def test_dripping_headers_are_stopped_by_the_total_deadline(cache, monkeypatch):
    monkeypatch.setenv("TLWIDGETS_DOWNLOAD_DEADLINE", "3")
    with _raw_server(drip=b"HTTP/1.1 200 OK\r\nContent-Length: 28000\r\nX-Slow: " + b"x" * 100) as url, \
            assets.registered_assets(an_asset(f"{url}/a.bin")):
        t0 = time.monotonic()
        with pytest.raises(assets.AssetError, match="3 s deadline"):
            assets.fetch("test-asset", timeout=2)
        assert time.monotonic() - t0 < 6
    assert leftovers(cache) == []


def test_pack_with_no_host_answering_fails_within_one_timeout(cache):
    silent = [start_server(silent=True) for _ in range(5)]
    try:
        lines = ", ".join(
            f'Asset(id="test-{i}", title="T{i}", path="misc/{i}.bin", url="{s.url}/{i}.bin", '
            'licence="CC0")' for i, s in enumerate(silent))
        code = f"""
        from tlwidgets.__main__ import main
        with assets.registered_assets({lines}):
            sys.exit(main(["fetch", "--quiet"] + [f"test-{{i}}" for i in range(5)]))
        """
        t0 = time.monotonic()
        proc = _child(code, {"TLWIDGETS_CACHE": str(cache), "TLWIDGETS_DATA": "",
                             "TLWIDGETS_OFFLINE": "", "TLWIDGETS_DOWNLOAD_TIMEOUT": "2"})
        out, err = proc.communicate(timeout=60)
        elapsed = time.monotonic() - t0
    finally:
        for s in silent:
            s.shutdown()
            s.server_close()
    assert proc.returncode == 1
    assert err.count("FAILED   test-") == 5 and "did not answer" in err
    # hosts are asked together: about one 2 s timeout, not five (10 s)
    assert elapsed < 7, (elapsed, err)


def test_retry_after_a_stall_says_why_the_host_is_skipped_and_fetch_retries(server, cache):
    with assets.registered_assets(an_asset(f"{server.url}/hang")):
        with pytest.raises(assets.AssetError, match="did not answer"):
            assets.resolve("test-asset")
        t0 = time.monotonic()
        with pytest.raises(assets.AssetError) as err:
            assets.resolve("test-asset")
        assert time.monotonic() - t0 < 0.5  # not asked again ...
        msg = str(err.value)
        assert "not asked again" in msg and "asks it now" in msg  # ... and it says so
        assert server.hits == ["/hang"]
        with pytest.raises(assets.AssetError, match="did not answer"):
            assets.fetch("test-asset")  # an explicit fetch asks again
    assert server.hits == ["/hang", "/hang"]


# --------------------------------------------------------------------------- two processes


@pytest.mark.parametrize("lock", [True, False], ids=["lock-file", "no-fcntl"])
def test_two_processes_fetching_the_same_folder_both_succeed(server, cache, lock):
    """With a lock the second waits and takes the finished copy; without one (Windows,
    no fcntl) both download and the second accepts the complete folder it finds."""
    body = _folder_zip()
    server.files["/set.zip"] = body
    server.slow["/set.zip"] = 1.5
    no_lock = "" if lock else "import contextlib; assets.asset_lock = lambda r, a: contextlib.nullcontext()"
    code = f"""
    from tlwidgets.__main__ import main
    {no_lock}
    body_sha = "{hashlib.sha256(body).hexdigest()}"
    a = Asset(id="test-dir", title="Folder", path="images/set", url="{server.url}/set.zip",
              licence="CC0", download_sha256=body_sha, archive="zip", member="set", is_dir=True,
              required=("train/a", "val/a"))
    with assets.registered_assets(a):
        sys.exit(main(["fetch", "test-dir", "--quiet"]))
    """
    env = {"TLWIDGETS_CACHE": str(cache), "TLWIDGETS_DATA": "", "TLWIDGETS_OFFLINE": "",
           "TLWIDGETS_DOWNLOAD_TIMEOUT": "10"}
    procs = [_child(code, env) for _ in range(2)]
    results = [p.communicate(timeout=60) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert "ok       test-dir" in out and "Traceback" not in err
    assert len(list((cache / "images/set/train/a").iterdir())) == 20
    # with the lock the second waited, then took the finished copy: one download
    assert len(server.hits) == (1 if lock else 2)
    assert leftovers(cache) == []


# --------------------------------------------------------------------------- leftovers


def test_kill_9_leftover_is_reported_and_cleaned(server, cache):
    body = os.urandom(1 << 20)
    server.files["/big.bin"] = body
    server.files["/a.bin"] = PAYLOAD
    server.slow["/big.bin"] = 30  # half the file, then a long pause: time to kill it
    code = f"""
    a = Asset(id="test-asset", title="T", path="misc/test.bin", url="{server.url}/big.bin",
              licence="CC0")
    with assets.registered_assets(a):
        assets.fetch("test-asset", timeout=60)
    """
    proc = _child(code, {"TLWIDGETS_CACHE": str(cache), "TLWIDGETS_DATA": "",
                         "TLWIDGETS_OFFLINE": ""})
    deadline = time.monotonic() + 30
    while not [p for p in leftovers(cache) if p.stat().st_size > 0]:
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    live = cache_housekeeping.leftovers()
    assert len(live) == 1 and not live[0].stale  # its process is still writing it
    assert cache_housekeeping.clear_leftovers() == []
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    (left,) = cache_housekeeping.leftovers()
    assert left.stale and f"{proc.pid} is gone" in left.why and left.size > 0
    assert left.path.name.startswith("test.bin.")
    report = doctor.diagnose(probe_tensorflow=False)
    assert [item.path for item in report.leftovers] == [left.path]
    text = doctor.format_report(report)
    assert "Leftovers: 1" in text and str(left.path) in text
    assert any("tlwidgets clean" in fix for fix in report.fixes)
    # the next fetch cleans it up on its way
    with assets.registered_assets(an_asset(f"{server.url}/a.bin")):
        assets.fetch("test-asset")
    assert leftovers(cache) == []


def test_clean_keeps_what_is_recent_or_not_ours_and_removes_what_is_stale(cache, capsys):
    partial = cache / ".partial"
    partial.mkdir(parents=True)
    old = partial / "glove.6B.zip.abc123"  # untagged, untouched for two hours
    old.write_bytes(b"x" * 100)
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    recent = partial / "other.zip.def456"
    recent.write_bytes(b"y")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        live = partial / f"w.bin.{cache_housekeeping._host_tag()}-{sleeper.pid}.zz"
        live.write_bytes(b"z")
        os.utime(live, (time.time() - 60, time.time() - 60))
        found = {item.path.name: item for item in cache_housekeeping.leftovers()}
        assert found[old.name].stale and "untouched" in found[old.name].why
        assert not found[recent.name].stale and not found[live.name].stale
        from tlwidgets.__main__ import main

        assert main(["clean"]) == 0
        out = capsys.readouterr().out
        assert f"removed  {old}" in out and "1 removed, 2 kept" in out
        assert not old.exists() and recent.exists() and live.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    if IS_ROOT:  # another user's leftover is never removed, however old
        os.chown(recent, 65534, 65534)
        os.utime(recent, (time.time() - 7200, time.time() - 7200))
        (item,) = [i for i in cache_housekeeping.leftovers() if i.path == recent]
        assert not item.stale and "another user" in item.why


# --------------------------------------------------------------------------- umask


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_files_and_folders_follow_the_umask(server, cache, mask):
    body = _folder_zip()
    server.files["/set.zip"] = body
    server.files["/a.bin"] = PAYLOAD
    server.files["/v.gz"] = gz = gzip.compress(PAYLOAD)
    gz_asset = Asset(id="test-gz", title="Gz", path="vectors/v.txt", url=f"{server.url}/v.gz",
                     licence="CC0", download_md5=hashlib.md5(gz).hexdigest(), archive="gzip")
    old = os.umask(mask)
    try:
        with assets.registered_assets(an_asset(f"{server.url}/a.bin"),
                                      _folder_asset(f"{server.url}/set.zip", body), gz_asset):
            plain = assets.fetch("test-asset").path
            folder = assets.fetch("test-dir").path
            unzipped = assets.fetch("test-gz").path
    finally:
        os.umask(old)
    for f in (plain, unzipped, folder / "train/a/0.txt"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~mask, f
    for d in (folder, folder / "train"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o777 & ~mask, d


# --------------------------------------------------------------------------- Keras weights


def _h5_asset(url: str) -> Asset:
    return Asset(id="test-h5", title="Weights", path="models/w.h5", url=url, licence="CC0",
                 file_size=FIXTURE_H5.stat().st_size, content_check="keras-h5")


def test_same_size_junk_weights_in_the_cache_are_removed_and_refetched(server, cache):
    real = FIXTURE_H5.read_bytes()
    server.files["/w.h5"] = real
    with assets.registered_assets(_h5_asset(f"{server.url}/w.h5")):
        (cache / "models").mkdir(parents=True)
        (cache / "models/w.h5").write_bytes(b"\0" * len(real))  # right size, junk
        with pytest.warns(UserWarning, match="fails its checksum"):
            got = assets.resolve("test-h5")
        assert got.source == "download" and got.path.read_bytes() == real


def test_same_size_junk_weights_from_the_server_are_refused(server, cache):
    real = FIXTURE_H5.read_bytes()
    junk = bytearray(real)
    junk[4096:8192] = b"\0" * 4096  # HDF5 signature intact, structure broken
    server.files["/w.h5"] = bytes(junk)
    with assets.registered_assets(_h5_asset(f"{server.url}/w.h5")), \
            pytest.raises(assets.ChecksumError, match="not a valid keras-h5"):
        assets.fetch("test-h5")
    assert not (cache / "models/w.h5").exists() and leftovers(cache) == []


def test_weights_that_do_not_load_are_removed_from_the_cache(cache, monkeypatch):
    # A real Keras weights file, but for another network: its checks pass, Keras refuses it.
    from tlwidgets.backbones import load_backbone
    from tlwidgets.catalogue import CATALOGUE

    monkeypatch.setenv("TLWIDGETS_OFFLINE", "1")
    v2 = CATALOGUE["mobilenet-v2-1.0-128-no-top"]
    wrong = Asset(**{**v2.__dict__, "file_size": FIXTURE_H5.stat().st_size, "standin": None})
    target = cache / v2.path
    target.parent.mkdir(parents=True)
    target.write_bytes(FIXTURE_H5.read_bytes())
    with assets.registered_assets(wrong):
        assert assets.resolve(wrong.id).source == "cache"
        with pytest.raises(assets.AssetError) as err:
            load_backbone("mobilenet_v2", input_size=128)
    msg = str(err.value)
    assert "could not be loaded" in msg and "removed from the cache" in msg
    assert "python -m tlwidgets fetch mobilenet-v2-1.0-128-no-top" in msg
    assert not target.exists()


# --------------------------------------------------------------------------- notices, catalogue


def test_standin_notice_is_said_once_through_the_notice_channel(cache, tmp_path, monkeypatch):
    small, big = _with_standin(tmp_path, monkeypatch, "http://127.0.0.1:9/big.bin")
    with assets.registered_assets(small, big), pytest.warns(notices.Notice) as said:
        assets.resolve("test-asset")
        assets.resolve("test-asset")
    assert len([w for w in said if "Stand-in" in str(w.message)]) == 1


def test_cats_and_dogs_filtered_stands_in_with_the_fixture(shared_assets, monkeypatch):
    monkeypatch.setenv("TLWIDGETS_DATA", str(shared_assets))
    notices.reset()
    official = assets.get_asset("cats-and-dogs-filtered")
    assert official.url.endswith("/cats_and_dogs_filtered.zip")
    assert official.download_size == 68_606_236 and official.standin == "cats-vs-dogs"
    standin = assets.get_asset("cats-vs-dogs").title
    with pytest.warns(notices.Notice, match=re.escape(standin)):  # said by title, not id
        got = assets.resolve("cats-and-dogs-filtered", download=False)
    assert got.is_standin and got.path == shared_assets / "images/cats_vs_dogs"
    assert (got.path / "train/cats").is_dir() and (got.path / "test/dogs").is_dir()
