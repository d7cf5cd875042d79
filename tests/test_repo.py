"""Repository hygiene: clean notebooks, lint, the README's promises, dependency lists agree."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import ALL_NOTEBOOKS, LECTURES, ROOT, rel

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=rel)
def test_notebook_committed_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"{rel(path)}: cells {dirty} have outputs or execution counts; strip them"


@pytest.mark.parametrize("path", LECTURES, ids=rel)
def test_lecture_has_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{rel(path)}: needs exactly one cell tagged 'parameters'"
    src = cells[0].source
    for name in ("QUICK", "SEED"):
        assert re.search(rf"^{name}\s*=", src, re.M), f"{rel(path)}: parameters lack {name}"
    # papermill injects its values in a cell *after* this one: a value computed here from
    # another parameter (`N = 8 if QUICK else 64`) would silently ignore `-p QUICK False`.
    tree = ast.parse(src)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            used = {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)}
            assert not used, (f"{rel(path)}: the parameters cell computes "
                              f"{ast.unparse(node.targets[0])} from {sorted(used)}; set it to "
                              "a literal (or None) and derive it in the next cell")


def test_lectures_are_numbered():
    names = [p.name for p in LECTURES]
    assert names, "no lectures found"
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", n) for n in names), names


def test_ruff_passes():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _names(requirements) -> dict[str, str]:
    out = {}
    for req in requirements:
        name = re.split(r"[<>=!~;\[ ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")
        out[name] = req.strip()
    return out


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _names(project["dependencies"] + project["optional-dependencies"]["dev"])
    text = (ROOT / "environment.yml").read_text()
    pip_section = text.split("- pip:", 1)[1].splitlines()
    pip_reqs = [ln.strip()[2:] for ln in pip_section
                if ln.strip().startswith("- ") and not ln.strip().startswith("- -e")]
    assert "- -e ." in text, "environment.yml must install course_lib itself"
    assert _names(pip_reqs) == wanted, "environment.yml and pyproject.toml list different packages"


def test_constraints_pin_every_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _names(project["dependencies"] + project["optional-dependencies"]["dev"])
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    missing = sorted(set(wanted) - set(pins))
    assert not missing, f"constraints.txt does not pin {missing}: run `make constraints`"
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    assert pins["jupyterlab"].startswith("4.") and pins["nbgrader"].startswith("0.9.")


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_grading_folder_is_ignored_and_config_stays_in_repo():
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "grading/" in ignored and "build/" in ignored
    from traitlets.config import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    course = config.CourseDirectory
    assert course.source_directory == "solutions" and course.release_directory == "exercises"
    assert Path(course.root) == ROOT
    assert str(config.Exchange.root).startswith(str(ROOT / "grading"))
    assert config.Execute.timeout > 0
    for key in ("submitted_directory", "autograded_directory", "feedback_directory"):
        assert course[key].startswith("grading"), key


def test_every_assignment_has_a_generated_exercise():
    solutions = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())
    exercises = sorted(p.name for p in (ROOT / "exercises").iterdir() if p.is_dir())
    assert solutions and solutions == exercises, "run `make exercises`"


def test_readme_links_point_to_files():
    text = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(((?!https?:|#)[^)]+)\)", text)
    assert links, "README links no lecture"
    missing = [link for link in links if not (ROOT / link).exists()]
    assert not missing, f"README links to missing files: {missing}"
