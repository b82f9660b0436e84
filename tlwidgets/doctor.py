"""Is this kernel ready for the course? Versions, device, memory, assets, cache, fixes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tlwidgets import cache_housekeeping
from tlwidgets.assets import PACKS, AssetStatus, UnknownAssetError, data_dirs, get_asset, survey
from tlwidgets.cache_housekeeping import CacheStatus, Leftover, cache_dir
from tlwidgets.device import DeviceInfo, device_info

_MIN_RAM = 1.5 * 2**30  # Binder gives 1-2 GB; below this, notebooks may restart the kernel


_SOURCES = {"data": "the course data folder (TLWIDGETS_DATA)", "cache": "your download cache",
            "package": "an installed Python package", "download": "downloaded just now"}


def source_words(row: AssetStatus) -> str:
    """Where an asset was found, in words (a stand-in by its title, not its id)."""
    detail = row.detail or ""
    if detail.startswith("stand-in "):
        standin = detail[len("stand-in "):]
        try:
            return f"a smaller stand-in: {get_asset(standin).title}"
        except UnknownAssetError:
            return f"a smaller stand-in: {standin}"
    return _SOURCES.get(detail, detail)


@dataclass
class Report:
    device: DeviceInfo
    assets: list[AssetStatus]
    data_dirs: list[str]
    cache_dir: str
    cache: CacheStatus | None = None
    leftovers: list[Leftover] = field(default_factory=list)

    @property
    def missing(self) -> list[AssetStatus]:
        return [row for row in self.assets if row.state == "missing"]

    @property
    def standins(self) -> list[AssetStatus]:
        return [row for row in self.assets if row.state == "standin"]

    @property
    def cache_problem(self) -> str | None:
        return self.cache.problem if self.cache is not None else None

    @property
    def ready(self) -> bool:
        """Every workshop asset is present or stood in for, TensorFlow imports, and the
        cache can be written (features are cached there, assets fetched into it)."""
        return (not self.missing and self.device.tensorflow_error is None
                and self.cache_problem is None)

    @property
    def fixes(self) -> list[str]:
        cmds = []
        if self.device.tensorflow_error:
            cmds.append("make install   # TensorFlow failed to import: reinstall the environment")
        if self.cache_problem:
            cmds.append(f"{self.cache.fix}   # the cache is unusable")
        if self.missing or self.standins:
            cmds.append("python -m tlwidgets fetch --pack workshop")
        if any(item.stale for item in self.leftovers):
            cmds.append("python -m tlwidgets clean   # remove what killed processes left behind")
        return cmds

    @property
    def memory_warning(self) -> str | None:
        limit = self.device.ram_limit_bytes or self.device.ram_total_bytes
        if limit < _MIN_RAM:
            return (f"Only {limit / 2**30:.1f} GiB of memory: use the 'smoke' profile "
                    "or close other notebooks.")
        return None


def _feature_leftovers() -> list[Leftover]:
    """The feature cache's temporary files."""
    from tlwidgets import featurize

    return featurize.leftovers()


# Each returns the Leftover records of one cache; ``clean`` removes the stale ones.
LEFTOVER_SOURCES: list[Callable[[], list[Leftover]]] = [cache_housekeeping.leftovers, _feature_leftovers]


def find_leftovers() -> list[Leftover]:
    """What killed downloads and feature-cache writes left behind, from every source."""
    found = []
    for source in LEFTOVER_SOURCES:
        try:
            found += source()
        except (ImportError, OSError):
            continue
    return found


def clean() -> list[Path]:
    """Remove the stale leftovers of every source (others' and live ones stay); return them."""
    return cache_housekeeping.clear_leftovers(find_leftovers())


def diagnose(*, pack: str = "workshop", probe_tensorflow: bool = True) -> Report:
    """Gather the report; never downloads or changes anything."""
    return Report(
        device=device_info(probe_tensorflow=probe_tensorflow),
        assets=survey(PACKS[pack]),
        data_dirs=[str(d) for d in data_dirs(warn=False)],
        cache_dir=str(cache_dir()),
        cache=cache_housekeeping.cache_status(),
        leftovers=find_leftovers(),
    )


def _gib(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**30:.1f} GiB"


def format_report(report: Report) -> str:
    d = report.device
    lines = ["tlwidgets doctor", "", f"Device:   {d.summary}"]
    if d.tensorflow_error:
        lines.append(f"          TensorFlow does not import: {d.tensorflow_error}")
    ram = f"Memory:   {_gib(d.ram_available_bytes)} free of {_gib(d.ram_total_bytes)}"
    if d.ram_limit_bytes:
        ram += f" (container limit {_gib(d.ram_limit_bytes)})"
    lines.append(ram)
    if report.memory_warning:
        lines.append(f"          {report.memory_warning}")
    lines.append(f"Python:   {d.python} on {d.platform}")
    lines.append("Versions: " + ", ".join(f"{k} {v or 'MISSING'}" for k, v in d.versions.items()))
    lines += ["", f"Data folders (TLWIDGETS_DATA): {', '.join(report.data_dirs) or '(none)'}",
              f"Cache: {report.cache_dir}"]
    if report.cache_problem:
        lines.append(f"          UNUSABLE: {report.cache_problem}")
    elif report.cache is not None and report.cache.free_bytes is not None:
        lines.append(f"          writable, {report.cache.free_bytes / 2**30:.1f} GiB free")
    if report.leftovers:
        stale = [item for item in report.leftovers if item.stale]
        total = sum(item.size for item in report.leftovers)
        lines.append(f"Leftovers: {len(report.leftovers)} temporary files ({total / 1e6:.1f} MB), "
                     f"{len(stale)} stale (their process is gone, or untouched for long)")
        for item in report.leftovers:
            lines.append(f"  [{'stale' if item.stale else 'kept':>8}] {item.kind}: {item.path} "
                         f"({item.size / 1e6:.1f} MB, {item.why})")
    lines += ["", "Assets:"]
    marks = {"present": "ok", "package": "ok", "standin": "STAND-IN", "missing": "MISSING"}
    for row in report.assets:
        where = f"  {row.path}" if row.path else ""
        extra = f"; {source_words(row)}" if row.detail else ""
        lines.append(f"  [{marks[row.state]:>8}] {row.asset.id}: {row.asset.title}{extra}{where}")
    lines.append("")
    if report.cache_problem:
        lines.append(f"Not ready: the cache is unusable ({report.cache_problem}).")
    elif report.ready and not report.standins:
        lines.append("Ready: everything the workshop needs is here.")
    elif report.ready:
        lines.append("Ready, with stand-ins (smaller versions of some assets).")
    else:
        lines.append("Not ready.")
    for cmd in report.fixes:
        lines.append(f"  fix: {cmd}")
    return "\n".join(lines)
