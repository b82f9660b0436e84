"""pyproject.toml, environment.yml and binder/ agree, and repo2docker builds from binder/."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pip_deps(path: Path) -> list[str]:
    env = yaml.safe_load(path.read_text())
    pip = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip) == 1, f"{path} should have one pip section"
    return pip[0]


def _project_deps() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def test_binder_environment_matches_pyproject():
    assert _pip_deps(ROOT / "binder/environment.yml") == _project_deps()


def test_conda_environment_matches_pyproject_and_installs_the_package():
    deps = _pip_deps(ROOT / "environment.yml")
    assert deps[:-1] == _project_deps()
    assert deps[-1] == "-e ."


def test_python_versions_agree():
    from packaging.specifiers import SpecifierSet

    requires = SpecifierSet(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    )
    for name in ("environment.yml", "binder/environment.yml"):
        env = yaml.safe_load((ROOT / name).read_text())
        python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
        assert python.split("=")[1] + ".0" in requires, f"{name}: {python} vs {requires}"


def test_postbuild_is_strict_and_prefetches_the_workshop_pack():
    script = (ROOT / "binder/postBuild").read_text()
    assert "set -e" in script
    assert "pip install" in script and "-e ." in script
    assert "tlwidgets fetch --pack workshop" in script
    assert (ROOT / "binder/postBuild").stat().st_mode & 0o111


def test_repo2docker_builds_from_binder_folder(tmp_path):
    exe = shutil.which("jupyter-repo2docker", path=str(Path(sys.executable).parent))
    assert exe, "jupyter-repo2docker is part of the test extra"
    out = subprocess.run([exe, "--no-build", "--debug", str(ROOT)], capture_output=True,
                         text=True, timeout=120)
    dockerfile = out.stdout + out.stderr
    assert "binder/environment.yml" in dockerfile
    assert "./binder/postBuild" in dockerfile
    # The root environment.yml is ignored when binder/ exists.
    assert "COPY --chown=0:0 src/environment.yml" not in dockerfile
