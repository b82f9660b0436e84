"""Find, fetch and verify the course's assets (weights, vectors, data sets).

Resolution order for an asset id (see ``DESIGN.md``, "Assets"):

1. each folder in ``TLWIDGETS_DATA`` (colon-separated), in order;
2. the user cache (``TLWIDGETS_CACHE``, else ``$XDG_CACHE_HOME/tlwidgets``,
   else ``~/.cache/tlwidgets``);
3. an installed Python package that ships the same data (verified by checksum);
4. a download from the official source into the cache (bounded in time,
   written to a temporary file, verified, then renamed into place);
5. the stand-in the catalogue declares, if it is available locally, with a
   notice saying what the learner is looking at;
6. otherwise :class:`AssetError` naming the asset and the command that fetches it.

Every failure (network, disk, bad settings) is an :class:`AssetError` that
names the asset, the cause and the fix. Two processes fetching the same asset
take turns (a lock file per asset); what a killed download leaves in
``.partial/`` is found and removed by :mod:`tlwidgets.cache_housekeeping`
(and by later fetches, once stale); :mod:`tlwidgets.asset_checks` verifies
the copies found. Files and folders get the usual permissions of the umask, so
a prefetched cache can be shared.

Every folder uses the same relative layout, so a fixture folder, the cache and
a prefetched workshop machine are interchangeable.

Resolution and download stay in one module (about 700 lines) because they
share the error types, the memory of unreachable hosts and the
lock-then-locate-again step; splitting them would make the two import each other.
"""

from __future__ import annotations

import difflib
import errno
import gzip
import hashlib
import os
import shutil
import tempfile
import time
import urllib.parse
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tlwidgets.asset_checks import (
    CHUNK,
    content_ok,
    dir_complete,
    hash_file,
    memo,
    present,
    remove,
    write_sidecar,
)
from tlwidgets.cache_housekeeping import (
    CACHE_ENV,
    PARTIAL_DIR,
    asset_lock,
    cache_dir,
    cache_status,
    clear_leftovers,
    tagged_prefix,
)
from tlwidgets.catalogue import CATALOGUE, PACKS, Asset, PackageSource
from tlwidgets.downloads import DEADLINE_ENV, TIMEOUT_ENV, DownloadError, Limits, download, probe
from tlwidgets.notices import notice
from tlwidgets.system import atomic_write, usual_mode

__all__ = [
    "Asset",
    "AssetError",
    "AssetNotFoundError",
    "CacheError",
    "ChecksumError",
    "Resolved",
    "UnknownAssetError",
    "data_dirs",
    "fetch",
    "fetch_many",
    "fetch_pack",
    "get_asset",
    "locate",
    "registered",
    "reject",
    "resolve",
]

DATA_ENV = "TLWIDGETS_DATA"
OFFLINE_ENV = "TLWIDGETS_OFFLINE"
_SKIP_HOST_FOR = 60.0  # resolve() does not ask a host that did not answer for this long

Source = Literal["data", "cache", "package", "download", "standin"]


class AssetError(LookupError):
    """An asset could not be provided; the message says what to do.

    ``cause`` is the reason alone, in a few words (for notices), when known.
    """

    def __init__(self, message: str, *, cause: str | None = None):
        super().__init__(message)
        self.cause = cause


class UnknownAssetError(AssetError):
    """The asset id is not in the catalogue."""


class AssetNotFoundError(AssetError):
    """The asset is known but is neither present nor downloadable now."""


class ChecksumError(AssetError):
    """A file's content does not match the catalogue's checksum."""


class CacheError(AssetNotFoundError):
    """The cache folder cannot hold the asset (a file in its place, read-only, full)."""


@dataclass(frozen=True)
class Resolved:
    """Where an asset was found. ``os.fspath(resolved)`` gives its path."""

    asset: Asset
    path: Path
    source: Source
    notice: str | None = None

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def is_standin(self) -> bool:
        return self.source == "standin"


# --------------------------------------------------------------------------- locations


def data_dirs(*, warn: bool = True) -> list[Path]:
    """Folders named in ``TLWIDGETS_DATA`` that exist (missing ones are warned about)."""
    found = []
    for part in os.environ.get(DATA_ENV, "").split(os.pathsep):
        if not part.strip():
            continue
        path = Path(part).expanduser()
        try:
            usable = path.is_dir()
        except OSError:  # e.g. inside a folder we may not enter
            usable = False
        if usable:
            found.append(path)
        elif warn:
            warnings.warn(
                f"{DATA_ENV} names {str(path)!r}, which is not a folder; it is ignored. "
                f"Fix {DATA_ENV} or create the folder.",
                stacklevel=3,
            )
    return found


def _offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").lower() in {"1", "true", "yes"}


# --------------------------------------------------------------------------- catalogue


def registered() -> dict[str, Asset]:
    """A copy of the catalogue: asset id -> :class:`Asset`."""
    return dict(CATALOGUE)


def get_asset(asset_id: str | Asset) -> Asset:
    """Look an asset up by id; unknown ids raise with the known ids, closest first."""
    if isinstance(asset_id, Asset):
        return asset_id
    try:
        return CATALOGUE[asset_id]
    except KeyError:
        close = difflib.get_close_matches(str(asset_id), CATALOGUE, n=len(CATALOGUE), cutoff=0)
        raise UnknownAssetError(
            f"Unknown asset id {asset_id!r}. Known ids, closest first: {', '.join(close)}."
        ) from None


@contextmanager
def registered_assets(*assets: Asset) -> Iterator[None]:
    """Temporarily add assets to the catalogue (for tests and course extensions)."""
    saved = dict(CATALOGUE)
    CATALOGUE.update({a.id: a for a in assets})
    try:
        yield
    finally:
        CATALOGUE.clear()
        CATALOGUE.update(saved)


def _check(path: Path, asset: Asset) -> bool | None:
    """:func:`present`, with an unreadable file reported and treated as absent."""
    try:
        return present(path, asset)
    except OSError as exc:
        warnings.warn(
            f"Cannot read {path} for {asset.id!r} ({exc.strerror or exc}); it is ignored. "
            f"Make it readable (chmod a+r) or set {DATA_ENV}/{CACHE_ENV} to a folder you can read.",
            stacklevel=4,
        )
        return None


# --------------------------------------------------------------------------- resolution


def locate(asset_id: str | Asset) -> Resolved | None:
    """Find an asset locally (data folders, cache, installed package), or ``None``.

    A data-folder file with the wrong checksum is reported and skipped; a cached
    one is removed, so that it is re-fetched, never used.
    """
    asset = get_asset(asset_id)
    for folder in data_dirs():
        path = folder / asset.path
        state = _check(path, asset)
        if state:
            return Resolved(asset, path, "data")
        if state is False:
            warnings.warn(
                f"{path} does not match the catalogue entry for {asset.id!r} "
                "(size, checksum or format); it is ignored.",
                stacklevel=2,
            )
    path = cache_dir() / asset.path
    state = _check(path, asset)
    if state:
        return Resolved(asset, path, "cache")
    if state is False:
        warnings.warn(
            f"Cached {path} is incomplete or fails its checksum; removing it so it is re-fetched.",
            stacklevel=2,
        )
        remove(path)
    if asset.package is not None and (pkg := _from_package(asset.package)) is not None:
        return Resolved(asset, pkg, "package")
    return None


def resolve(
    asset_id: str | Asset,
    *,
    download: bool | None = None,
    standin: bool = True,
    progress: bool = False,
    notify: bool = True,
) -> Resolved:
    """Return a usable local copy of an asset, following the resolution order.

    ``download=None`` downloads unless ``TLWIDGETS_OFFLINE`` is set. With
    ``standin=True`` a declared stand-in is used when the real asset cannot be
    had; its notice is said once (``notify=False``: only returned in
    ``Resolved.notice``, for callers that say it themselves).
    """
    asset = get_asset(asset_id)
    found = locate(asset)
    if found is not None:
        return found
    if download is None:
        download = not _offline()
    failure = None
    if download and asset.url:
        try:
            return _fetch(asset, force=False, progress=progress, retry=False)
        except AssetError as exc:
            failure = exc
    if standin and asset.standin:
        sub = locate(asset.standin)
        if sub is not None:
            cause = getattr(failure, "cause", None)
            why = f" ({cause})" if cause else ""
            text = (
                f"Stand-in: {asset.title} is not available here{why}, so "
                f"{sub.asset.title} is used instead. {asset.standin_note} "
                f"Run `{fetch_command(asset)}` for the real thing."
            ).replace("  ", " ")
            if notify:
                notice(text, key=f"standin:{asset.id}")
            return Resolved(asset, sub.path, "standin", text)
    if isinstance(failure, AssetNotFoundError):
        raise failure  # fetch already said where it looked, why it failed and what to do
    raise AssetNotFoundError(_missing_message(asset, failure)) from failure


def fetch_command(asset: Asset | str) -> str:
    asset = get_asset(asset)
    return f"python -m tlwidgets fetch {asset.id}"


def _missing_message(asset: Asset, failure: Exception | str | None) -> str:
    where = [str(d) for d in data_dirs(warn=False)] + [str(cache_dir())]
    lines = [f"Asset {asset.id!r} ({asset.title}) is not available."]
    lines.append(f"Looked for {asset.path!r} in: {', '.join(where)}.")
    if failure is not None:
        lines.append(f"Download failed: {str(failure).rstrip('.')}.")
    if asset.url:
        lines.append(
            f"Fetch it on a machine with network access: `{fetch_command(asset)}` "
            f"(or a whole pack: `python -m tlwidgets fetch --pack workshop`), or set "
            f"{DATA_ENV} to a folder that holds {asset.path!r}."
        )
    else:
        lines.append(
            f"It has no download of its own ({asset.note or 'a trimmed fixture'}); "
            f"set {DATA_ENV} to a folder that holds {asset.path!r}."
        )
    return " ".join(lines)


def _from_package(source: PackageSource) -> Path | None:
    try:
        import importlib.util

        spec = importlib.util.find_spec(source.module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations))) / source.subdir
    try:
        for name, sha in source.files.items():
            f = root / name
            if not f.is_file():
                return None
            key = (str(f), f.stat().st_size, f.stat().st_mtime_ns)
            if key not in memo:
                memo[key] = hash_file(f, "sha256") == sha
            if not memo[key]:
                warnings.warn(f"{f} fails its checksum; the package copy is not used.",
                              stacklevel=3)
                return None
    except OSError:
        return None
    return root


def reject(resolved: Resolved, why: str) -> AssetError:
    """An error for a file that passed its checks but failed to load.

    A cached copy is removed (so that the next fetch downloads it again); a copy
    in a data folder is left alone and named.
    """
    asset, path = resolved.asset, resolved.path
    if resolved.source in ("cache", "download"):
        remove(path)
        memo.clear()
        action = f"it was removed from the cache; run `{fetch_command(asset)}` to download it again"
    else:
        action = (f"replace it (`{fetch_command(asset)}` downloads a verified copy into the cache) "
                  f"or remove it from {DATA_ENV}")
    return ChecksumError(f"{path} ({asset.id!r}) could not be loaded: {why}. Fix: {action}.")


# --------------------------------------------------------------------------- download

_unreachable: dict[str, tuple[float, str]] = {}  # host -> (when, why) it did not answer


def fetch(
    asset_id: str | Asset,
    *,
    force: bool = False,
    timeout: float | None = None,
    deadline: float | None = None,
    progress: bool = False,
) -> Resolved:
    """Download an asset into the cache (unless present), verify it, return it.

    The download goes to a temporary file in the cache's ``.partial`` folder and
    is moved into place only once complete and verified: no partial file is
    ever used. ``timeout`` bounds each connect and read (default
    ``TLWIDGETS_DOWNLOAD_TIMEOUT`` or 8 s), ``deadline`` the whole download
    (default ``TLWIDGETS_DOWNLOAD_DEADLINE`` or 100 kB/s plus 30 s). Every
    failure raises :class:`AssetError` with the cause and the fix.
    """
    asset = get_asset(asset_id)
    if not force:
        found = locate(asset)
        if found is not None:
            return found
    return _fetch(asset, force=force, timeout=timeout, deadline=deadline, progress=progress,
                  retry=True)


def _fetch(asset: Asset, *, force: bool, progress: bool, retry: bool,
           timeout: float | None = None, deadline: float | None = None) -> Resolved:
    if not asset.url:
        raise AssetNotFoundError(_missing_message(asset, None))
    try:
        limits = Limits.from_env(asset.download_size, timeout=timeout, deadline=deadline)
    except ValueError as exc:
        raise AssetNotFoundError(
            f"Asset {asset.id!r} was not fetched: {exc} ({TIMEOUT_ENV} bounds each read, "
            f"{DEADLINE_ENV} the whole download.)", cause=str(exc).split(";")[0]
        ) from None
    host = urllib.parse.urlsplit(asset.url).netloc
    if retry:
        _unreachable.pop(host, None)
    elif host in _unreachable:
        when, why = _unreachable[host]
        age = time.monotonic() - when
        if age < _SKIP_HOST_FOR:
            raise AssetNotFoundError(_missing_message(asset, (
                f"{host} was not asked again: it did not answer {age:.0f} s ago ({why}); "
                f"it is asked again after {_SKIP_HOST_FOR - age:.0f} s more, and "
                f"`tlwidgets.assets.fetch({asset.id!r})` asks it now")),
                cause=f"{host} did not answer {age:.0f} s ago")
    status = cache_status()
    if not status.usable:
        raise CacheError(
            f"Asset {asset.id!r} ({asset.title}) cannot be fetched: the cache is unusable: "
            f"{status.problem}. Fix: {status.fix}; then run `{fetch_command(asset)}`.",
            cause=f"the cache is unusable: {status.problem}")
    root = status.path
    try:
        with asset_lock(root, asset):
            if not force and (found := locate(asset)) is not None:
                return found  # another process fetched it while we waited
            return _download_into(asset, root, limits, force=force, progress=progress)
    except AssetError:
        raise
    except DownloadError as exc:
        if not exc.answered:
            _unreachable[host] = (time.monotonic(), str(exc))
            exc = DownloadError(f"{exc}; other assets from {host} are not tried for "
                                f"{_SKIP_HOST_FOR:.0f} s in this session", answered=False)
        raise AssetNotFoundError(_missing_message(asset, exc),
                                 cause=str(exc).split(";")[0]) from None
    except OSError as exc:
        raise _local_failure(asset, exc) from exc
    except (zipfile.BadZipFile, gzip.BadGzipFile, EOFError, zipfile.LargeZipFile) as exc:
        raise ChecksumError(
            f"Download of {asset.id!r} is not a readable {asset.archive} archive ({exc}); it was "
            f"discarded. Run `{fetch_command(asset)}` again; if it persists the source changed."
        ) from exc
    except Exception as exc:  # a last resort: no raw exception reaches the learner
        raise AssetNotFoundError(
            f"Asset {asset.id!r} could not be fetched: unexpected {type(exc).__name__}: {exc}. "
            f"Run `{fetch_command(asset)}` again; if it persists, report it with this message."
        ) from exc


def _local_failure(asset: Asset, exc: OSError) -> CacheError:
    where = exc.filename or cache_dir()
    size = asset.download_size or asset.file_size
    need = f" (it needs {size / 1e6:.0f} MB)" if size else ""
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        cause = f"the disk is full while writing {where}"
        fix = f"free some space{need} or set {CACHE_ENV} to a folder on another disk"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        cause = f"cannot write {where} ({exc.strerror})"
        fix = f"set {CACHE_ENV} to a writable folder (export {CACHE_ENV}=$HOME/tlwidgets-cache)"
    elif exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        cause = f"a file is in the way at {where} ({exc.strerror})"
        fix = f"remove it or set {CACHE_ENV} to another folder"
    else:
        cause = f"{type(exc).__name__} while writing {where}: {exc.strerror or exc}"
        fix = f"check the disk, or set {CACHE_ENV} to another folder"
    return CacheError(f"Asset {asset.id!r} ({asset.title}) could not be stored in the cache: "
                      f"{cause}. Fix: {fix}; then run `{fetch_command(asset)}`.", cause=cause)


def _download_into(asset: Asset, root: Path, limits: Limits, *, force: bool,
                   progress: bool) -> Resolved:
    target = root / asset.path
    partial = root / PARTIAL_DIR
    partial.mkdir(parents=True, exist_ok=True)
    clear_leftovers()  # what killed fetches left behind, once stale
    prefix = tagged_prefix(Path(asset.path).name)
    fd, tmp_name = tempfile.mkstemp(prefix=prefix, dir=partial)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digests = _download(asset, out, limits, progress)
            out.flush()
            os.fsync(out.fileno())
        _check_download(asset, tmp, digests)
        target.parent.mkdir(parents=True, exist_ok=True)
        if force and target.exists():
            remove(target)
        _install(asset, tmp, target, partial, prefix)
    finally:
        tmp.unlink(missing_ok=True)
    write_sidecar(target, asset)
    return Resolved(asset, target, "download")


def _download(asset: Asset, out, limits: Limits, progress: bool) -> dict[str, str]:
    hashes = {"sha256": hashlib.sha256(), "md5": hashlib.md5()}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=asset.download_size, unit="B", unit_scale=True, desc=asset.id)

    def on_block(block: bytes) -> None:
        for h in hashes.values():
            h.update(block)
        if bar is not None:
            bar.update(len(block))

    try:
        download(asset.url, out, limits, on_block)
    finally:
        if bar is not None:
            bar.close()
    return {name: h.hexdigest() for name, h in hashes.items()}


def _check_download(asset: Asset, tmp: Path, digests: dict[str, str]) -> None:
    size = tmp.stat().st_size
    expected_size = asset.download_size
    if expected_size is not None and size != expected_size:
        raise ChecksumError(
            f"Download of {asset.id!r} has {size} bytes, expected {expected_size}; "
            f"it was discarded. Run `{fetch_command(asset)}` again; if it persists the "
            "source changed."
        )
    checks = [("sha256", asset.download_sha256), ("md5", asset.download_md5)]
    for algo, expected in checks:
        if expected and digests[algo] != expected:
            raise ChecksumError(
                f"Download of {asset.id!r} fails its {algo} checksum "
                f"(got {digests[algo]}, expected {expected}); it was discarded. "
                f"Run `{fetch_command(asset)}` again; if it persists the source changed."
            )
    if asset.archive is None and not content_ok(tmp, asset):
        raise ChecksumError(
            f"Download of {asset.id!r} is not a valid {asset.content_check} file; it was "
            f"discarded. Run `{fetch_command(asset)}` again; if it persists the source changed."
        )


def _install(asset: Asset, tmp: Path, target: Path, partial: Path, prefix: str) -> None:
    """Move a verified download into place, unpacking it if the catalogue says so."""
    if asset.archive is None:
        usual_mode(tmp)
        os.replace(tmp, target)
        return
    if asset.archive == "gzip":
        with gzip.open(tmp, "rb") as src, atomic_write(target, tmp_dir=partial,
                                                        prefix=prefix) as dst:
            shutil.copyfileobj(src, dst, CHUNK)
        return
    with zipfile.ZipFile(tmp) as zf:
        if asset.is_dir:
            staging = Path(tempfile.mkdtemp(prefix=prefix, dir=partial))
            try:
                usual_mode(staging, folder=True)
                _unzip_folder(zf, asset, staging)
                if not dir_complete(staging, asset):
                    raise ChecksumError(
                        f"Archive for {asset.id!r} lacks {asset.required}; it was discarded."
                    )
                try:
                    os.replace(staging, target)
                except OSError:
                    if not dir_complete(target, asset):
                        raise
                    # another process (without a lock: no fcntl) finished first: keep its copy
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        else:
            with zf.open(asset.member) as src, atomic_write(target, tmp_dir=partial,
                                                             prefix=prefix) as dst:
                shutil.copyfileobj(src, dst, CHUNK)


def _unzip_folder(zf: zipfile.ZipFile, asset: Asset, staging: Path) -> None:
    prefix = asset.member.rstrip("/") + "/"
    for info in zf.infolist():
        if not info.filename.startswith(prefix) or info.is_dir():
            continue
        rel = Path(info.filename[len(prefix):])
        if rel.is_absolute() or ".." in rel.parts or rel.name.startswith("."):
            continue
        dest = staging / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(info) as src, dest.open("wb") as dst:
            shutil.copyfileobj(src, dst, CHUNK)


# --------------------------------------------------------------------------- packs


def pack(name: str) -> tuple[str, ...]:
    """Asset ids in a named pack (``mini``, ``workshop``)."""
    try:
        return PACKS[name]
    except KeyError:
        raise AssetError(f"Unknown pack {name!r}; known packs: {', '.join(PACKS)}.") from None


def fetch_many(ids: Iterable[str], *, force: bool = False,
               progress: bool = False) -> Iterator[tuple[str, Resolved | AssetError]]:
    """Fetch several assets; yield ``(id, Resolved or AssetError)`` for each, in order.

    Hosts are asked once, in parallel, before anything is downloaded: when none
    answers, every asset fails within one timeout instead of one per host.
    """
    ids = list(dict.fromkeys(ids))
    todo: dict[str, Asset] = {}
    for asset_id in ids:
        try:
            asset = get_asset(asset_id)
            if force or locate(asset) is None:
                todo[asset_id] = asset
        except AssetError:
            pass
    urls = [a.url for a in todo.values() if a.url]
    hosts = {urllib.parse.urlsplit(u).netloc for u in urls}
    silent: dict[str, str] = {}
    if len(hosts) > 1:
        with suppress(ValueError):  # a bad timeout setting: each fetch below says so
            silent = probe(urls, Limits.from_env().timeout)
    for host in hosts:
        _unreachable.pop(host, None)
    for host, why in silent.items():
        _unreachable[host] = (time.monotonic(), why)
    for asset_id in ids:
        try:
            asset = get_asset(asset_id)
            host = urllib.parse.urlsplit(asset.url or "").netloc
            if asset_id in todo and host in silent:
                raise AssetNotFoundError(_missing_message(
                    asset, f"{silent[host]} (all hosts were asked first, together)"),
                    cause=silent[host])
            got = None if asset_id in todo else locate(asset)
            yield asset_id, got or _fetch(asset, force=force, progress=progress, retry=False)
        except AssetError as exc:
            yield asset_id, exc


def fetch_pack(name: str, *, progress: bool = False) -> list[Resolved]:
    """Fetch every asset of a pack; raises once at the end, listing what failed."""
    done, failed = [], []
    for asset_id, got in fetch_many(pack(name), progress=progress):
        if isinstance(got, AssetError):
            failed.append(f"- {asset_id}: {got}")
        else:
            done.append(got)
    if failed:
        raise AssetNotFoundError(
            f"Pack {name!r}: {len(done)} of {len(done) + len(failed)} assets ready; failed:\n"
            + "\n".join(failed)
        )
    return done


@dataclass
class AssetStatus:
    """One row of the doctor's asset table."""

    asset: Asset
    state: Literal["present", "package", "standin", "missing"]
    path: Path | None = None
    fix: str | None = None
    detail: str = field(default="")


def survey(ids: Iterable[str] | None = None) -> list[AssetStatus]:
    """What is present, what would be a stand-in, what is missing (never downloads)."""
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for asset_id in ids if ids is not None else CATALOGUE:
            asset = get_asset(asset_id)
            found = locate(asset)
            if found is not None:
                state = "package" if found.source == "package" else "present"
                rows.append(AssetStatus(asset, state, found.path, detail=found.source))
                continue
            sub = locate(asset.standin) if asset.standin else None
            fix = fetch_command(asset) if asset.url else f"set {DATA_ENV} to a folder with {asset.path}"
            if sub is not None:
                rows.append(AssetStatus(asset, "standin", sub.path, fix, f"stand-in {sub.asset.id}"))
            else:
                rows.append(AssetStatus(asset, "missing", None, fix))
    return rows
