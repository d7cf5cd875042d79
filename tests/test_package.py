"""The wheel carries what the notebooks load, and works outside the repository.

Builds the wheel offline (`pip wheel . --no-deps --no-build-isolation`), installs it into a
fresh folder outside the repository (`pip install --no-deps --target`), and with only that
folder on PYTHONPATH (the dependencies come from this environment; the editable install's
finder comes after PYTHONPATH on sys.path, so it is never used) runs, from copies outside the
repository, a lecture that loads checkpoints and an exercise's solution with papermill (its
kernel inherits papermill's environment). What this cannot prove about Colab itself (its
preinstalled versions, its widget frontend, its GPU) is listed in the README.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]


def test_configured_packages_are_every_package():
    """pyproject.toml lists the packages (course_lib.checkpoints lives in data/checkpoints,
    which `find` cannot map): a new subpackage of course_lib must be added to that list."""
    from setuptools import find_packages

    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = set(find_packages(str(ROOT), include=["course_lib", "course_lib.*"]))
    assert set(tool["packages"]) == found | {"course_lib.checkpoints"}, (
        "add the new course_lib subpackage to [tool.setuptools] packages in pyproject.toml")
    assert tool["package-dir"] == {"course_lib.checkpoints": "data/checkpoints"}
    assert set(tool["package-data"]["course_lib.checkpoints"]) == {"*.pt", "MANIFEST.json"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel, site folder, environment) of the wheel installed outside the repository."""
    tmp = tmp_path_factory.mktemp("package")
    build = subprocess.run([*PIP, "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                            "-w", str(tmp / "dist")], capture_output=True, text=True, cwd=tmp)
    assert build.returncode == 0, build.stdout + build.stderr
    wheel, = (tmp / "dist").glob("course_lib-*.whl")
    site = tmp / "site"
    inst = subprocess.run([*PIP, "install", "--no-deps", "--target", str(site), str(wheel)],
                          capture_output=True, text=True, cwd=tmp)
    assert inst.returncode == 0, inst.stdout + inst.stderr
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1",
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
    return wheel, site, env


def _run(code: str, env, cwd) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _outside(path: Path) -> Path:
    assert ROOT not in path.resolve().parents, f"{path} is inside the repository"
    return path


@pytest.mark.slow
def test_wheel_ships_the_checkpoints(installed):
    wheel, _, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = json.loads((ROOT / "data" / "checkpoints" / "MANIFEST.json").read_text())
    wanted = {"course_lib/checkpoints/MANIFEST.json",
              *(f"course_lib/checkpoints/{r['file']}" for r in shipped.values())}
    assert wanted <= names, f"missing from the wheel: {sorted(wanted - names)}"
    assert not any(n.startswith(("data/", "tests/", "tools/", "lectures/")) for n in names)


@pytest.mark.slow
def test_installed_package_is_used_and_finds_its_checkpoints(installed, tmp_path):
    _, site, env = installed
    # never retrain into the repository: stop unless the checkpoints are the installed ones
    out = _run("import course_lib, json, sys\n"
               "from course_lib import zoo\n"
               "print(json.dumps([course_lib.__file__, str(zoo.CHECKPOINT_DIR), zoo.names()]))\n"
               "zoo.load('single_scale')\n"
               f"if not str(zoo.CHECKPOINT_DIR).startswith({str(site)!r}):\n"
               "    sys.exit('not the installed package')\n"
               "try:\n"
               "    zoo.train('single_scale')\n"
               "except PermissionError as err:\n"
               "    print('REFUSED', err)\n",
               env, _outside(tmp_path))
    first, refused = out.splitlines()[0], out.splitlines()[-1]
    file, checkpoints, names = json.loads(first)
    assert Path(file).resolve().is_relative_to(site.resolve()), file
    assert Path(checkpoints) == site / "course_lib" / "checkpoints"
    assert "single_scale" in names
    assert refused.startswith("REFUSED") and "out_dir" in refused


@pytest.mark.slow
@pytest.mark.parametrize("notebook", [
    "lectures/05_context_before_fcn.ipynb",
    "solutions/ex00_tensors/ex00_tensors.ipynb",
])
def test_notebook_runs_from_the_wheel(installed, tmp_path, notebook):
    _, site, env = installed
    nb = nbformat.read(ROOT / notebook, as_version=4)
    probe = "import course_lib\nprint('__FILE__' + course_lib.__file__)"
    nb.cells.append(nbformat.v4.new_code_cell(probe))
    src = _outside(tmp_path) / Path(notebook).name
    nbformat.write(nb, src)
    out = tmp_path / "out.ipynb"
    args = [sys.executable, "-m", "papermill", str(src), str(out), "--cwd", str(tmp_path),
            "-k", "python3", "--no-progress-bar", "--execution-timeout", "300"]
    if "parameters" in {t for c in nb.cells for t in c.metadata.get("tags", [])}:
        args += ["-p", "QUICK", "True"]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, f"{notebook} fails outside the repository:\n{proc.stderr[-4000:]}"
    text = "".join(o.get("text", "") for o in nbformat.read(out, as_version=4).cells[-1].outputs)
    file = text.split("__FILE__", 1)[1].strip()
    assert Path(file).resolve().is_relative_to(site.resolve()), file
