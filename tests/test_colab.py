"""Every notebook opens on Colab: its badge names the configured repository and its own path,
its first code cell is the install cell of tools/colab.py (`make colab` writes both)."""

from __future__ import annotations

import shutil

import nbformat
import pytest
from conftest import ALL_NOTEBOOKS, LECTURES, ROOT, rel

from tools import colab

CONFIG = colab.settings()
URL = "https://colab.research.google.com/github/{repository}/blob/{branch}/"


def test_the_slug_lives_in_pyproject():
    assert set(CONFIG) == {"repository", "branch"}
    owner, _, name = CONFIG["repository"].partition("/")
    assert owner and name and "/" not in name
    assert colab.install_source(CONFIG).count(CONFIG["repository"]) == 1


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=rel)
def test_badge_and_install_cell(path):
    nb = nbformat.read(path, as_version=4)
    problems = colab.problems(nb, rel(path), CONFIG)
    assert not problems, (f"{rel(path)}: " + "; ".join(problems)
                          + ". Run `make colab` (or `python -m tools.colab PATH`)")


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=rel)
def test_badge_opens_the_notebooks_own_path(path):
    """The URL, spelled out: a lecture or an exercise opens itself; a solution opens the
    exercise that nbgrader generates from it (the cell is copied verbatim)."""
    own = rel(path)
    target = own.replace("solutions/", "exercises/", 1) if own.startswith("solutions/") else own
    assert (ROOT / target).is_file()
    text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells
                     if c.cell_type == "markdown")
    assert f"({URL.format(**CONFIG)}{target})" in text


def test_install_cell_is_plain_and_runs_first_in_assignments():
    for path in ALL_NOTEBOOKS:
        if rel(path).startswith(("solutions/", "exercises/")):
            nb = nbformat.read(path, as_version=4)
            cell = next(c for c in nb.cells if c.cell_type == "code")
            assert colab.is_install_cell(cell), rel(path)
            # neither graded nor a solution: nbgrader leaves it as it is
            assert not cell.metadata.get("nbgrader", {}).get("grade"), rel(path)
            assert not cell.metadata.get("nbgrader", {}).get("solution"), rel(path)


def test_command_rewrites_a_copy_of_the_lectures(tmp_path, capsys):
    """What `python -m tools.colab` does to the lectures, on a copy: afterwards every check of
    this file passes, nothing but the badge and the install cell changed, and a second run
    changes nothing."""
    shutil.copytree(ROOT / "lectures", tmp_path / "lectures")
    argv = ["--root", str(tmp_path), str(tmp_path / "lectures")]
    assert colab.main(argv) == 0
    assert colab.main([*argv, "--check"]) == 0, capsys.readouterr().out
    for path in LECTURES:
        copy = tmp_path / "lectures" / path.name
        nb, old = (nbformat.read(p, as_version=4) for p in (copy, path))
        assert colab.problems(nb, rel(path), CONFIG) == [], path.name
        new_cells = [c for c in nb.cells if not colab.is_install_cell(c)]
        old_cells = [c for c in old.cells if not colab.is_install_cell(c)]
        assert [c.metadata for c in new_cells] == [c.metadata for c in old_cells]
        assert [colab.BADGE_RE.sub("", c.source) for c in new_cells] == [
            colab.BADGE_RE.sub("", c.source) for c in old_cells], path.name


def test_command_adds_and_replaces(tmp_path):
    other = {"repository": "someone/fork", "branch": "dev"}
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 07 · A title\n\nText."),
        nbformat.v4.new_code_cell("import torch"),
    ])
    assert colab.rewrite(nb, "lectures/07_x.ipynb", other)
    assert nb.cells[0].source == ("# 07 · A title\n\n" + colab.badge("lectures/07_x.ipynb", other)
                                  + "\n\nText.")
    assert nb.cells[1].source == colab.install_source(other)
    assert "git+https://github.com/someone/fork@dev" in nb.cells[1].source
    assert colab.problems(nb, "lectures/07_x.ipynb", other) == []
    assert colab.problems(nb, "lectures/07_x.ipynb", CONFIG)  # another slug: flagged
    assert colab.rewrite(nb, "lectures/07_x.ipynb", CONFIG)  # replaced in place
    assert len(nb.cells) == 3 and colab.problems(nb, "lectures/07_x.ipynb", CONFIG) == []
    assert not colab.rewrite(nb, "lectures/07_x.ipynb", CONFIG)
    assert colab.colab_path("solutions/ex00_a/ex00_a.ipynb") == "exercises/ex00_a/ex00_a.ipynb"


def test_command_never_writes_exercises(tmp_path, capsys):
    folder = tmp_path / "exercises" / "ex00_tensors"
    shutil.copytree(ROOT / "exercises" / "ex00_tensors", folder)
    before = (folder / "ex00_tensors.ipynb").read_bytes()
    (folder / "ex00_tensors.ipynb").write_bytes(before.replace(
        CONFIG["repository"].encode(), b"someone/else"))
    changed = (folder / "ex00_tensors.ipynb").read_bytes()
    assert colab.main(["--root", str(tmp_path), str(tmp_path / "exercises")]) == 0
    assert (folder / "ex00_tensors.ipynb").read_bytes() == changed
    assert "generated from solutions/" in capsys.readouterr().err
