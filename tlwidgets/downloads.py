"""Bounded HTTP downloads: a per-read timeout, a total deadline, a speed floor.

``urllib``'s ``timeout`` bounds each socket operation only, so a server that
sends one byte every half second keeps a download alive for ever. Here:

- every connect and read waits at most ``Limits.timeout`` seconds;
- a watchdog shuts the connection down at ``Limits.deadline`` (total seconds);
- a transfer that brings fewer than ``MIN_RATE`` bytes/s over a
  ``timeout``-long window is stopped as stalled.

Failures of the network side raise :class:`DownloadError`, worded for a
learner; errors writing ``out`` (a full or read-only disk) pass through
unchanged, so that the caller can say what to fix on the local side.
:mod:`tlwidgets.assets` uses this for every download.
"""

from __future__ import annotations

import contextlib
import http.client
import math
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO

__all__ = ["DEADLINE_ENV", "TIMEOUT_ENV", "DownloadError", "Limits", "download", "probe"]

TIMEOUT_ENV = "TLWIDGETS_DOWNLOAD_TIMEOUT"
DEADLINE_ENV = "TLWIDGETS_DOWNLOAD_DEADLINE"
DEFAULT_TIMEOUT = 8.0
MIN_RATE = 1024  # bytes/s; slower than this over a timeout-long window is a stall
_PLANNED_RATE = 100_000  # bytes/s used to size the default total deadline
_MAX_SECONDS = 7 * 24 * 3600
_BLOCK = 1 << 16
_AGENT = {"User-Agent": "tlwidgets"}


class DownloadError(Exception):
    """The network side of a download failed.

    ``answered`` is False when the host never replied (no route, refused, no
    answer in time): only then is it worth skipping the host for a while.
    """

    def __init__(self, message: str, *, answered: bool):
        super().__init__(message)
        self.answered = answered


@dataclass(frozen=True)
class Limits:
    """``timeout``: seconds per connect or read; ``deadline``: seconds in all."""

    timeout: float
    deadline: float

    @classmethod
    def from_env(cls, expected_size: int | None = None, *, timeout: float | None = None,
                 deadline: float | None = None) -> Limits:
        """Limits from arguments, else ``TLWIDGETS_DOWNLOAD_{TIMEOUT,DEADLINE}``, else defaults.

        The default deadline allows 100 kB/s plus 30 s (10 minutes when the size
        is unknown). Bad values raise ``ValueError`` saying what to set.
        """
        t = _seconds(TIMEOUT_ENV, timeout, DEFAULT_TIMEOUT)
        planned = 600.0 if expected_size is None else 30 + expected_size / _PLANNED_RATE
        d = _seconds(DEADLINE_ENV, deadline, max(planned, 2 * t))
        return cls(t, d)


def _seconds(env: str, given: float | None, default: float) -> float:
    if given is not None:
        raw, where = given, f"{env.split('_')[-1].lower()}={given!r}"
    else:
        raw = os.environ.get(env, "").strip()
        if not raw:
            return default
        where = f"{env}={raw!r}"
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= _MAX_SECONDS):
        raise ValueError(
            f"{where} is not a number of seconds between 0 and {_MAX_SECONDS} "
            f"(a week); set it to e.g. {default:g}, or unset {env} for the default."
        )
    return value


class _Watchdog:
    """Shuts the registered sockets down once ``seconds`` have passed."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.append(sock)
            if self.expired:
                self._shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._socks:
                self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _opener(watch: _Watchdog) -> urllib.request.OpenerDirector:
    """An opener whose connections the watchdog can cut (redirects included)."""

    class Conn(http.client.HTTPConnection):
        def connect(self):
            super().connect()
            watch.add(self.sock)

    class TLSConn(http.client.HTTPSConnection):
        def connect(self):
            super().connect()
            watch.add(self.sock)

    class Plain(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(Conn, req)

    class TLS(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(TLSConn, req, context=self._context)

    return urllib.request.build_opener(Plain, TLS)


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc


def _open(url: str, limits: Limits, watch: _Watchdog, method: str = "GET"):
    host = _host(url)
    request = urllib.request.Request(url, headers=_AGENT, method=method)
    try:
        return _opener(watch).open(request, timeout=limits.timeout)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{host} answered HTTP {exc.code} {exc.reason} for {url}",
                            answered=True) from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        if watch.expired:
            raise DownloadError(f"{host} did not answer within the {limits.deadline:g} s "
                                "deadline", answered=False) from exc
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, http.client.RemoteDisconnected):
            raise DownloadError(f"{host} closed the connection without a reply",
                                answered=True) from exc
        if isinstance(reason, http.client.BadStatusLine):
            raise DownloadError(f"{host} did not reply in HTTP (got {str(reason)[:60]!r}); "
                                "is the URL or a proxy wrong?", answered=True) from exc
        if isinstance(reason, http.client.HTTPException):
            raise DownloadError(f"{host} sent a broken HTTP reply ({type(reason).__name__}: "
                                f"{reason})", answered=True) from exc
        if isinstance(reason, TimeoutError | socket.timeout):
            raise DownloadError(f"{host} did not answer within {limits.timeout:g} s",
                                answered=False) from exc
        raise DownloadError(f"could not reach {host} ({reason})", answered=False) from exc


def download(url: str, out: BinaryIO, limits: Limits,
             on_block: Callable[[bytes], None] | None = None) -> int:
    """Stream ``url`` into ``out`` within ``limits``; return the number of bytes."""
    host = _host(url)
    total = 0
    with _Watchdog(limits.deadline) as watch:
        response = _open(url, limits, watch)
        with response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            window_start, window_bytes = time.monotonic(), 0
            window = max(limits.timeout, 1.0)
            while True:
                try:
                    block = response.read1(_BLOCK)
                except (OSError, http.client.HTTPException, ValueError) as exc:
                    if watch.expired:
                        break
                    if isinstance(exc, http.client.IncompleteRead):
                        raise DownloadError(
                            f"{host} closed the connection after {total + len(exc.partial)} "
                            "bytes, before the end of the file", answered=True) from exc
                    if isinstance(exc, TimeoutError | socket.timeout):
                        raise DownloadError(
                            f"the download from {host} stalled: no data for "
                            f"{limits.timeout:g} s after {total} bytes", answered=True) from exc
                    raise DownloadError(f"the download from {host} broke off after {total} "
                                        f"bytes ({exc})", answered=True) from exc
                if not block:
                    break
                out.write(block)  # disk errors (full, read-only) pass through as OSError
                total += len(block)
                if on_block is not None:
                    on_block(block)
                now = time.monotonic()
                window_bytes += len(block)
                if now - window_start >= window:
                    if window_bytes < MIN_RATE * (now - window_start):
                        raise DownloadError(
                            f"the download from {host} stalled: {window_bytes} bytes in "
                            f"{now - window_start:.0f} s (slower than {MIN_RATE} bytes/s)",
                            answered=True)
                    window_start, window_bytes = now, 0
        if watch.expired:
            raise DownloadError(f"the download from {host} did not finish within the "
                                f"{limits.deadline:g} s deadline ({total} bytes arrived); "
                                f"set {DEADLINE_ENV} higher on a slow network", answered=True)
    if expected is not None and total != expected:
        raise DownloadError(f"{host} closed the connection after {total} of {expected} bytes",
                            answered=True)
    return total


def probe(urls: Iterable[str], timeout: float) -> dict[str, str]:
    """Ask each host once, in parallel; return ``{host: why}`` for those that did not answer.

    Any HTTP reply counts as an answer (even an error status): the point is to
    find hosts that cannot be reached at all, within one ``timeout`` in total.
    """
    by_host = {_host(u): u for u in urls}
    limits = Limits(timeout, timeout)

    def ask(url: str) -> str | None:
        try:
            with _Watchdog(timeout) as watch, _open(url, limits, watch, method="HEAD"):
                return None
        except DownloadError as exc:
            return None if exc.answered else str(exc)
        except Exception:  # anything else: let the download itself report it
            return None

    if not by_host:
        return {}
    answers: dict[str, str | None] = {}

    def run(host: str, url: str) -> None:
        answers[host] = ask(url)

    # Daemon threads, waited for at most ``timeout`` in all: a name lookup that hangs
    # (which no socket timeout bounds) neither delays the answer nor the exit.
    threads = [threading.Thread(target=run, args=item, daemon=True) for item in by_host.items()]
    for thread in threads:
        thread.start()
    end = time.monotonic() + timeout + 0.5
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    silent = {}
    for host in by_host:
        if host not in answers:  # still waiting (a name lookup, a handshake)
            silent[host] = f"{host} did not answer within {timeout:g} s"
        elif answers[host] is not None:
            silent[host] = answers[host]
    return silent
