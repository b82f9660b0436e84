"""The README's first command: `make lab` answers on its port, with the token on."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_make_lab_serves_the_course_with_a_token(tmp_path):
    port = _free_port()
    env = {**os.environ, "HOME": str(tmp_path), "PORT": str(port)}
    log = tmp_path / "lab.log"
    with log.open("w") as out:
        proc = subprocess.Popen(["make", "-s", "lab"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        token = None
        deadline = time.monotonic() + 120
        while token is None and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            m = re.search(rf"http://127\.0\.0\.1:{port}/lab\?token=([0-9a-f]+)", log.read_text())
            token = m.group(1) if m else None
            time.sleep(0.5)
        assert token, f"no URL with a token in the output:\n{log.read_text()}"
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/api/contents?token={token}", timeout=10) as r:
            names = {item["name"] for item in json.load(r)["content"]}
        assert "00_start_here.ipynb" in names  # it serves the course folder
        try:
            urllib.request.urlopen(f"{base}/api/contents", timeout=10)
            raise AssertionError("the server answered without a token")
        except urllib.error.HTTPError as err:
            assert err.code == 403
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
