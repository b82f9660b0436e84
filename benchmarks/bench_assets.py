"""Asset resolution speed, and how fast a broken network is given up on.

- first (checksummed) look-up of the fixtures vs later look-ups in the same process;
- ``fetch`` of five assets on five hosts that accept connections but never answer
  (default 8 s timeout): the hosts are asked together, so the whole set fails in
  about one timeout, not five (the issue's target: within 10 s);
- a server dripping one byte every 0.5 s with a 2 s per-read timeout: stopped by
  the speed floor in about one timeout (it used to keep a fetch alive 100 s).
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

from tlwidgets import assets
from tlwidgets.catalogue import Asset

FIXTURE_IDS = ("mobilenet-0.25-224-no-top", "hymenoptera", "pneumoniamnist-balanced",
               "glove-6b-50d-top20k", "ud-en-ewt-train", "ud-en-ewt-dev", "ud-en-ewt-test",
               "uner-en-ewt-dev", "uner-en-ewt-test")


@contextmanager
def _silent_host():
    """Accepts connections (the kernel's backlog does) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


@contextmanager
def _dripping_host():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    stop = threading.Event()

    def serve():
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            while not stop.is_set():
                try:
                    conn.sendall(b"x")
                except OSError:
                    return
                time.sleep(0.5)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        sock.close()


def _fault_rows() -> list[dict]:
    saved = {k: os.environ.get(k) for k in ("TLWIDGETS_CACHE", "TLWIDGETS_DOWNLOAD_TIMEOUT",
                                            "TLWIDGETS_DOWNLOAD_DEADLINE")}
    rows = []
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        os.environ["TLWIDGETS_CACHE"] = str(Path(tmp) / "cache")
        for key in ("TLWIDGETS_DOWNLOAD_TIMEOUT", "TLWIDGETS_DOWNLOAD_DEADLINE"):
            os.environ.pop(key, None)
        urls = [stack.enter_context(_silent_host()) for _ in range(5)]
        silent = [Asset(id=f"bench-{i}", title=f"B{i}", path=f"misc/{i}.bin", url=f"{u}/{i}.bin",
                        licence="CC0") for i, u in enumerate(urls)]
        drip_url = stack.enter_context(_dripping_host())
        drip = Asset(id="bench-drip", title="Drip", path="misc/drip.bin", url=f"{drip_url}/d",
                     licence="CC0")
        try:
            with assets.registered_assets(*silent, drip):
                t0 = time.perf_counter()
                results = list(assets.fetch_many([a.id for a in silent]))
                pack_s = time.perf_counter() - t0
                failed = sum(isinstance(r, assets.AssetError) for _, r in results)
                t0 = time.perf_counter()
                with suppress(assets.AssetError):
                    assets.fetch("bench-drip", timeout=2)
                drip_s = time.perf_counter() - t0
        finally:
            assets._unreachable.clear()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    rows.append({"metric": f"5 assets, 5 silent hosts, 8 s timeout: all {failed} failed in",
                 "value": pack_s, "unit": "s", "target": "<= 10", "ok": pack_s <= 10})
    rows.append({"metric": "server dripping 1 byte / 0.5 s, 2 s timeout: given up after",
                 "value": drip_s, "unit": "s", "target": "<= 5", "ok": drip_s <= 5})
    return rows


def main(quick: bool = False) -> list[dict]:
    shared = Path(__file__).resolve().parents[2] / "shared" / "assets"
    os.environ.setdefault("TLWIDGETS_DATA", str(shared))
    assets._memo.clear()
    t0 = time.perf_counter()
    for asset_id in FIXTURE_IDS:
        assets.resolve(asset_id, download=False, standin=False)
    cold = time.perf_counter() - t0
    reps = 20 if quick else 200
    t0 = time.perf_counter()
    for _ in range(reps):
        for asset_id in FIXTURE_IDS:
            assets.resolve(asset_id, download=False, standin=False)
    warm = (time.perf_counter() - t0) / reps
    size = sum(f.stat().st_size for i in FIXTURE_IDS
               for f in [assets.locate(i).path] if f.is_file())
    return [
        {"metric": "first resolve of the fixtures (sha256 verified)", "value": cold * 1e3,
         "unit": "ms", "target": f"{size / 1e6:.0f} MB hashed"},
        {"metric": "later resolve of the fixtures (memoised)", "value": warm * 1e3, "unit": "ms"},
        {"metric": "speed-up of a later resolve", "value": cold / warm, "unit": "x",
         "target": ">= 10", "ok": cold / warm >= 10},
        *_fault_rows(),
    ]


if __name__ == "__main__":
    for row in main(quick=True):
        print(row)
