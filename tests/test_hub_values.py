"""deploy/jupyterhub/values.yaml: the structure z2jh 4.x reads, the course image, resources
that hold the measured peaks, the idle culler, and nbgitpuller links to real notebooks."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

import pytest
import yaml

from tools import hub_values as hv
from tools.build_notebooks import lesson_sources, notebook_for
from tools.run_notebooks import load_results, make_row

ROOT = Path(__file__).resolve().parents[1]
HUB = ROOT / "deploy" / "jupyterhub"


def _readme() -> str:
    return (HUB / "README.md").read_text()


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load((HUB / "values.yaml").read_text())


@pytest.fixture(scope="module")
def measured() -> hv.Resources:
    return hv.derive(load_results(hv.RESULTS))


# Keys of the zero-to-jupyterhub 4.x chart (its values.schema.json) that this file sets.
Z2JH_KEYS = {
    "singleuser": {"image", "uid", "fsGid", "memory", "cpu", "storage", "extraEnv",
                   "defaultUrl", "startTimeout", "extraFiles"},
    "singleuser.image": {"name", "tag", "pullPolicy"},
    "singleuser.memory": {"limit", "guarantee"},
    "singleuser.cpu": {"limit", "guarantee"},
    "singleuser.storage": {"type", "capacity", "homeMountPath"},
    "cull": {"enabled", "timeout", "every", "users", "removeNamedServers", "maxAge"},
    "prePuller": {"hook", "continuous", "pullProfileListImages"},
    "scheduling": {"userScheduler", "podPriority", "userPlaceholder", "userPods", "corePods"},
    "scheduling.userPlaceholder": {"enabled", "replicas"},
    "scheduling.userPods.nodeAffinity": {"matchNodePurpose"},
}


def _at(values: dict, dotted: str):
    for key in dotted.split("."):
        values = values[key]
    return values


def test_values_use_only_keys_z2jh_reads(values):
    assert set(values) <= {"singleuser", "cull", "prePuller", "scheduling", "hub", "proxy"}
    for where, allowed in Z2JH_KEYS.items():
        got = set(_at(values, where))
        assert got <= allowed, f"{where}: keys z2jh 4.x does not read: {got - allowed}"
    for where in ("scheduling.userScheduler", "scheduling.podPriority",
                  "scheduling.userPlaceholder", "prePuller.hook", "prePuller.continuous"):
        assert _at(values, where)["enabled"] is True, f"{where} should be enabled"
    assert values["scheduling"]["userPlaceholder"]["replicas"] >= 1
    assert _at(values, "scheduling.userPods.nodeAffinity")["matchNodePurpose"] == "require"


def test_idle_servers_and_kernels_are_culled(values):
    cull = values["cull"]
    assert cull["enabled"] is True and 0 < cull["every"] <= cull["timeout"] <= 4 * 3600
    kernels = values["singleuser"]["extraFiles"]["jupyter_server_config"]
    assert kernels["mountPath"].startswith("/usr/local/etc/jupyter/")  # a system config dir
    assert 0 < kernels["data"]["MappingKernelManager"]["cull_idle_timeout"] <= cull["timeout"]


def test_memory_and_cpu_hold_the_measured_workshop_peaks(values, measured):
    single = values["singleuser"]
    limit, guarantee = hv.mib(single["memory"]["limit"]), hv.mib(single["memory"]["guarantee"])
    peaks = [r["peak_mb"] for r in load_results(hv.RESULTS) if r["profile"] == "workshop"]
    assert limit >= max(peaks) + hv.SERVER_OVERHEAD_MIB
    assert max(peaks) <= guarantee <= limit
    assert 0 < single["cpu"]["guarantee"] <= single["cpu"]["limit"]
    assert hv.check_values(measured, values) == [], "run python -m tools.hub_values"


def test_every_notebook_has_been_measured_in_the_workshop_profile():
    measured = {r["notebook"] for r in load_results(hv.RESULTS) if r["profile"] == "workshop"}
    assert measured <= {s.stem for s in lesson_sources()}, "rows for notebooks that do not exist"
    missing = sorted(s.stem for s in lesson_sources() if s.stem not in measured)
    if missing:
        pytest.skip(f"not measured yet (the hub sizes hold only the measured ones): {missing}; "
                    f"run make bench-course NB=\"{' '.join(m.split('_')[0] for m in missing)}\"")


def test_every_workshop_notebook_is_within_the_memory_budget():
    over = {r["notebook"]: r["peak_mb"] for r in load_results(hv.RESULTS)
            if r["profile"] == "workshop" and r["peak_mb"] > 1536}
    assert not over, f"over the 1.5 GiB budget (MiB): {over}"


def test_derive_rounds_up_and_refuses_a_table_without_the_profile():
    host = {"cpus": 2, "gpu": None}
    assert hv.lesson_minutes()["02_fine_tuning"] == 45  # "**Time:** about 45 minutes"
    rows = [make_row("01_featurisers", "workshop", 100, 80, 1400, host),
            make_row("02_fine_tuning", "workshop", 9000, 2000, 1500.4, host),
            make_row("02_fine_tuning", "quick", 100, 90, 3000, host)]
    res = hv.derive(rows)
    assert res.memory_limit_mib == 1792 and res.max_peak_notebook == "02_fine_tuning"  # 1756
    # 2000 CPU s over 02's 45 minutes: 0.74 cores, rounded up to 1.0 (wall time plays no part)
    assert res.cpu_limit == 2.0 and res.cpu_guarantee == 1.0
    assert res.z2jh()["memory"] == {"limit": "1792M", "guarantee": "1792M"}
    with pytest.raises(ValueError, match="make bench-course PROFILE=workshop"):
        hv.derive(rows[2:])


def test_learners_per_node_follow_from_the_guarantees():
    res = hv.Resources(2048, 2048, 2.0, 0.5, 1500, "02_fine_tuning", 0.4)
    cores, memory = hv.allocatable(8, 32)
    assert 7 < cores < 8 and 26 * 1024 < memory < 30 * 1024
    n, by = hv.learners_per_node(res, 8, 32)
    assert n == int(memory // 2048) and by == "memory"
    assert hv.learners_per_node(hv.Resources(512, 512, 2.0, 2.0, 1, "x", 2), 8, 32)[1] == "CPU"
    assert hv.mib("2G") == 2048 and hv.mib("2304M") == 2304
    with pytest.raises(ValueError, match="K, M, G, T"):
        hv.mib("2Gi")


def test_the_image_is_the_binder_build(values):
    image = values["singleuser"]["image"]
    readme = _readme()
    assert "binder/" in readme and "jupyter-repo2docker" in readme
    build = re.search(r"jupyter-repo2docker .*--image-name (\S+)", readme)
    assert build, "the README shows the repo2docker command that builds the image"
    assert build.group(1) == f"{image['name']}:{image['tag']}"
    assert (ROOT / "binder/environment.yml").exists()
    postbuild = (ROOT / "binder/postBuild").read_text()
    assert "tlwidgets fetch --pack workshop" in postbuild  # the data are in the image
    env = yaml.safe_load((ROOT / "binder/environment.yml").read_text())
    assert any(isinstance(d, str) and d.startswith("nbgitpuller") for d in env["dependencies"])
    single = values["singleuser"]
    assert single["extraEnv"]["TLWIDGETS_OFFLINE"] == "1"
    # The image's home (course, editable install, cached data) stays visible.
    assert single["storage"]["homeMountPath"].startswith("/home/jovyan/")


def _git_pull(url: str) -> dict:
    parsed = urllib.parse.urlparse(url)
    assert parsed.path.endswith("/git-pull"), url
    return {k: v[0] for k, v in urllib.parse.parse_qs(parsed.query).items()}


def test_nbgitpuller_links_open_existing_notebooks(values):
    default = _git_pull(values["singleuser"]["defaultUrl"])
    target = default["targetpath"]
    links = re.findall(r"https://\S+/hub/user-redirect/git-pull\?[^\s)>`]+", _readme())
    opened = set()
    for query in [default, *map(_git_pull, links)]:
        assert query["repo"] == default["repo"] and query["branch"] == default["branch"]
        assert query["targetpath"] == target
        path = query["urlpath"]
        assert path.startswith(f"lab/tree/{target}/"), path
        relative = path.removeprefix(f"lab/tree/{target}/")
        assert (ROOT / relative).is_file(), f"{path} opens a file the repository lacks"
        opened.add(relative)
    expected = {str(notebook_for(s).relative_to(ROOT)) for s in lesson_sources()}
    assert expected <= opened, f"README lacks links to {sorted(expected - opened)}"


def _offline_prefix() -> list[str]:
    """``unshare -n`` (no network at all) where this user may create a namespace."""
    import shutil
    import subprocess

    exe = shutil.which("unshare")
    if exe and subprocess.run([exe, "-n", "true"], capture_output=True).returncode == 0:
        return [exe, "-n"]
    return []


def test_repo2docker_plans_the_image_from_binder_without_network_or_docker(tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    exe = shutil.which("jupyter-repo2docker", path=str(Path(sys.executable).parent))
    if not exe:
        pytest.skip("jupyter-repo2docker is not installed (it is in the test extra)")
    offline = _offline_prefix()
    # --no-build only writes the Dockerfile: no Docker daemon (a socket that does not exist)
    # and, where a network namespace can be made, no network either.
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    out = subprocess.run([*offline, exe, "--no-build", "--debug", str(ROOT)], env=env,
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    dockerfile = out.stdout + out.stderr
    assert '--file "binder/environment.yml"' in dockerfile  # conda env from binder/
    assert "RUN ./binder/postBuild" in dockerfile           # tlwidgets + the baked data
    assert "ARG REPO_DIR=${HOME}" in dockerfile             # the course in jovyan's home
    if not offline:
        pytest.skip("checked without Docker, but could not cut the network (no unshare -n)")
