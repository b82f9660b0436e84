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

Every folder uses the same relative layout, so a fixture folder, the cache and
a prefetched workshop machine are interchangeable.
"""

from __future__ import annotations

import difflib
import gzip
import hashlib
import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from tlwidgets.catalogue import CATALOGUE, PACKS, Asset, PackageSource
from tlwidgets.system import atomic_write

__all__ = [
    "Asset",
    "AssetError",
    "AssetNotFoundError",
    "ChecksumError",
    "Resolved",
    "UnknownAssetError",
    "cache_dir",
    "data_dirs",
    "fetch",
    "fetch_pack",
    "get_asset",
    "locate",
    "registered",
    "resolve",
]

DATA_ENV = "TLWIDGETS_DATA"
CACHE_ENV = "TLWIDGETS_CACHE"
OFFLINE_ENV = "TLWIDGETS_OFFLINE"
TIMEOUT_ENV = "TLWIDGETS_DOWNLOAD_TIMEOUT"
DEFAULT_TIMEOUT = 8.0
_CHUNK = 1 << 20
_SIDECAR_SUFFIX = ".tlwidgets-verified.json"
_PARTIAL_DIR = ".partial"

Source = Literal["data", "cache", "package", "download", "standin"]


class AssetError(LookupError):
    """An asset could not be provided; the message says what to do."""


class UnknownAssetError(AssetError):
    """The asset id is not in the catalogue."""


class AssetNotFoundError(AssetError):
    """The asset is known but is neither present nor downloadable now."""


class ChecksumError(AssetError):
    """A file's content does not match the catalogue's checksum."""


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
        if path.is_dir():
            found.append(path)
        elif warn:
            warnings.warn(
                f"{DATA_ENV} names {str(path)!r}, which is not a folder; it is ignored. "
                f"Fix {DATA_ENV} or create the folder.",
                stacklevel=3,
            )
    return found


def cache_dir() -> Path:
    """The user cache folder (not created here)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tlwidgets"


def _timeout() -> float:
    try:
        return float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


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


# --------------------------------------------------------------------------- verification

_memo: dict[tuple[str, int, int], bool] = {}


def _hash_file(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _expected_digest(asset: Asset) -> tuple[str, str] | None:
    if asset.sha256:
        return "sha256", asset.sha256
    if asset.md5:
        return "md5", asset.md5
    return None


def _file_matches(path: Path, asset: Asset) -> bool:
    """Whether an (unarchived) file matches the catalogue's size and checksum."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in _memo:
        return _memo[key]
    ok = True
    if asset.file_size is not None and st.st_size != asset.file_size:
        ok = False
    elif digest := _expected_digest(asset):
        sidecar = _sidecar(path)
        if _sidecar_says(sidecar, st, digest):
            ok = True
        else:
            ok = _hash_file(path, digest[0]) == digest[1]
    _memo[key] = ok
    return ok


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + _SIDECAR_SUFFIX)


def _sidecar_says(sidecar: Path, st: os.stat_result, digest: tuple[str, str]) -> bool:
    try:
        info = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return False
    return (
        info.get(digest[0]) == digest[1]
        and info.get("size") == st.st_size
        and info.get("mtime_ns") == st.st_mtime_ns
    )


def _write_sidecar(path: Path, asset: Asset) -> None:
    digest = _expected_digest(asset)
    if digest is None or not path.is_file():
        return
    st = path.stat()
    info = {digest[0]: digest[1], "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    _atomic_write_text(_sidecar(path), json.dumps(info))


def _dir_complete(path: Path, asset: Asset) -> bool:
    return path.is_dir() and all((path / member).exists() for member in asset.required)


def _present(path: Path, asset: Asset) -> bool | None:
    """True if usable, False if present but wrong, None if absent."""
    if asset.is_dir:
        if not path.exists():
            return None
        return _dir_complete(path, asset)
    if not path.is_file():
        return None
    return _file_matches(path, asset)


# --------------------------------------------------------------------------- resolution


def locate(asset_id: str | Asset) -> Resolved | None:
    """Find an asset locally (data folders, cache, installed package), or ``None``.

    A data-folder file with the wrong checksum is reported and skipped; a cached
    one is removed, so that it is re-fetched, never used.
    """
    asset = get_asset(asset_id)
    for folder in data_dirs():
        path = folder / asset.path
        state = _present(path, asset)
        if state:
            return Resolved(asset, path, "data")
        if state is False:
            warnings.warn(
                f"{path} does not match the catalogue entry for {asset.id!r} "
                "(size or checksum); it is ignored.",
                stacklevel=2,
            )
    path = cache_dir() / asset.path
    state = _present(path, asset)
    if state:
        return Resolved(asset, path, "cache")
    if state is False:
        warnings.warn(
            f"Cached {path} is incomplete or fails its checksum; removing it so it is re-fetched.",
            stacklevel=2,
        )
        _remove(path)
    if asset.package is not None and (pkg := _from_package(asset.package)) is not None:
        return Resolved(asset, pkg, "package")
    return None


def resolve(
    asset_id: str | Asset,
    *,
    download: bool | None = None,
    standin: bool = True,
    progress: bool = False,
) -> Resolved:
    """Return a usable local copy of an asset, following the resolution order.

    ``download=None`` downloads unless ``TLWIDGETS_OFFLINE`` is set. With
    ``standin=True`` a declared stand-in is used (with a notice) when the real
    asset cannot be had.
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
            return fetch(asset, progress=progress)
        except AssetError as exc:
            failure = exc
    if standin and asset.standin:
        sub = locate(asset.standin)
        if sub is not None:
            notice = (
                f"Stand-in: {asset.id!r} ({asset.title}) is not available here, so "
                f"{sub.asset.id!r} ({sub.asset.title}) is used instead. {asset.standin_note} "
                f"Run `{fetch_command(asset)}` for the real thing."
            ).replace("  ", " ")
            warnings.warn(notice, stacklevel=2)
            return Resolved(asset, sub.path, "standin", notice)
    if isinstance(failure, AssetNotFoundError):
        raise failure  # fetch already said where it looked, why it failed and what to do
    raise AssetNotFoundError(_missing_message(asset, failure)) from failure


def fetch_command(asset: Asset | str) -> str:
    asset = get_asset(asset)
    return f"python -m tlwidgets fetch {asset.id}"


def _missing_message(asset: Asset, failure: Exception | None) -> str:
    where = [str(d) for d in data_dirs(warn=False)] + [str(cache_dir())]
    lines = [f"Asset {asset.id!r} ({asset.title}) is not available."]
    lines.append(f"Looked for {asset.path!r} in: {', '.join(where)}.")
    if failure is not None:
        lines.append(f"Download failed: {failure}")
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
    for name, sha in source.files.items():
        f = root / name
        if not f.is_file():
            return None
        key = (str(f), f.stat().st_size, f.stat().st_mtime_ns)
        if key not in _memo:
            _memo[key] = _hash_file(f, "sha256") == sha
        if not _memo[key]:
            warnings.warn(f"{f} fails its checksum; the package copy is not used.", stacklevel=3)
            return None
    return root


# --------------------------------------------------------------------------- download

_unreachable: dict[str, float] = {}


def fetch(
    asset_id: str | Asset,
    *,
    force: bool = False,
    timeout: float | None = None,
    progress: bool = False,
) -> Resolved:
    """Download an asset into the cache (unless present), verify it, return it.

    The download goes to a temporary file beside the destination and is renamed
    into place only once complete and verified: no partial file is ever left in
    the cache. Network stalls fail after ``timeout`` seconds.
    """
    asset = get_asset(asset_id)
    if not force:
        found = locate(asset)
        if found is not None:
            return found
    if not asset.url:
        raise AssetNotFoundError(_missing_message(asset, None))
    timeout = _timeout() if timeout is None else timeout
    host = urllib.parse.urlsplit(asset.url).netloc
    if time.monotonic() - _unreachable.get(host, -1e9) < 60:
        raise AssetNotFoundError(
            _missing_message(asset, OSError(f"{host} was unreachable moments ago"))
        )
    target = cache_dir() / asset.path
    partial = cache_dir() / _PARTIAL_DIR
    partial.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=Path(asset.path).name + ".", dir=partial)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digests = _download(asset, out, timeout, progress)
        _check_download(asset, tmp, digests)
        target.parent.mkdir(parents=True, exist_ok=True)
        if force and target.exists():
            _remove(target)
        _install(asset, tmp, target, partial)
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        offline = isinstance(exc, urllib.error.URLError | TimeoutError | ConnectionError)
        if offline and not isinstance(exc, urllib.error.HTTPError):
            _unreachable[host] = time.monotonic()
        raise AssetNotFoundError(_missing_message(asset, exc)) from exc
    finally:
        tmp.unlink(missing_ok=True)
    _write_sidecar(target, asset)
    return Resolved(asset, target, "download")


def _download(asset: Asset, out, timeout: float, progress: bool) -> dict[str, str]:
    request = urllib.request.Request(asset.url, headers={"User-Agent": "tlwidgets"})
    hashes = {"sha256": hashlib.sha256(), "md5": hashlib.md5()}
    with urllib.request.urlopen(request, timeout=timeout) as response:
        total = response.headers.get("Content-Length")
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=int(total) if total else None, unit="B", unit_scale=True,
                       desc=asset.id)
        try:
            while block := response.read(_CHUNK):
                out.write(block)
                for h in hashes.values():
                    h.update(block)
                if bar is not None:
                    bar.update(len(block))
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
            "it was discarded. Try again; if it persists the source changed."
        )
    checks = [("sha256", asset.download_sha256), ("md5", asset.download_md5)]
    for algo, expected in checks:
        if expected and digests[algo] != expected:
            raise ChecksumError(
                f"Download of {asset.id!r} fails its {algo} checksum "
                f"(got {digests[algo]}, expected {expected}); it was discarded."
            )


def _install(asset: Asset, tmp: Path, target: Path, partial: Path) -> None:
    """Move a verified download into place, unpacking it if the catalogue says so."""
    if asset.archive is None:
        os.replace(tmp, target)
        return
    if asset.archive == "gzip":
        with gzip.open(tmp, "rb") as src, atomic_write(target) as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
        return
    with zipfile.ZipFile(tmp) as zf:
        if asset.is_dir:
            staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=partial))
            try:
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
                        shutil.copyfileobj(src, dst, _CHUNK)
                if not _dir_complete(staging, asset):
                    raise ChecksumError(
                        f"Archive for {asset.id!r} lacks {asset.required}; it was discarded."
                    )
                os.replace(staging, target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        else:
            with zf.open(asset.member) as src, atomic_write(target) as dst:
                shutil.copyfileobj(src, dst, _CHUNK)


def _atomic_write_text(target: Path, text: str) -> None:
    with atomic_write(target) as fh:
        fh.write(text.encode())


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    _sidecar(path).unlink(missing_ok=True)


# --------------------------------------------------------------------------- packs


def pack(name: str) -> tuple[str, ...]:
    """Asset ids in a named pack (``mini``, ``workshop``)."""
    try:
        return PACKS[name]
    except KeyError:
        raise AssetError(f"Unknown pack {name!r}; known packs: {', '.join(PACKS)}.") from None


def fetch_pack(name: str, *, progress: bool = False) -> list[Resolved]:
    """Fetch every asset of a pack; raises once at the end, listing what failed."""
    done, failed = [], []
    for asset_id in pack(name):
        try:
            done.append(fetch(asset_id, progress=progress))
        except AssetError as exc:
            failed.append(f"- {asset_id}: {exc}")
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


def with_url(asset: Asset, url: str, **changes) -> Asset:
    """A copy of ``asset`` served from another URL (mirrors, tests)."""
    return replace(asset, url=url, **changes)
