"""Temporary nbgrader courses, and ``make exercises``.

``make_course`` builds a throw-away course directory with the repository's layout and
configuration (``tools.grading.config``): ``solutions/<assignment>`` as source, its state under
``grading/``. ``generate`` runs ``nbgrader generate_assignment`` there, so the committed
``exercises/`` copy is reproducible and no gradebook is left behind; the tests grade such
copies, never the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
NBGRADER = [sys.executable, "-m", "nbgrader"]
# nbgrader calls helpers such as `alembic` by name: put this interpreter's bin/ first on PATH.
ENV = {**os.environ, "PATH": os.pathsep.join([os.path.dirname(sys.executable),
                                              os.environ.get("PATH", "")])}
# Notebook metadata that changes from run to run and says nothing about the content.
VOLATILE_NB_KEYS = ("widgets",)

COURSE_CONFIG = """\
import sys
sys.path.insert(0, {checkout!r})
from tools.grading.config import configure
c = get_config()
configure(c, {root!r}, timeout={timeout})
{extra}"""


def make_course(workdir: Path, assignment: str, timeout: int = 120, extra: str = "") -> Path:
    """A temporary nbgrader course holding ``solutions/<assignment>`` as its source;
    ``extra``: more configuration lines (``c.SandboxedExecute.memory_mb = 1024``)."""
    src = ROOT / "solutions" / assignment
    if not (src / f"{assignment}.ipynb").is_file():
        raise FileNotFoundError(f"no solutions/{assignment}/{assignment}.ipynb")
    course = workdir / "course"
    shutil.copytree(src, course / "solutions" / assignment,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    (course / "grading").mkdir()
    (course / "nbgrader_config.py").write_text(COURSE_CONFIG.format(
        checkout=str(ROOT), root=str(course), timeout=timeout, extra=extra))
    return course


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*NBGRADER, *args], cwd=course, capture_output=True, text=True, env=ENV)


def generate_in(course: Path, assignment: str) -> Path:
    """Run generate_assignment in ``course``; return the release folder."""
    proc = nbgrader(course, "generate_assignment", assignment, "--force")
    release = course / "exercises" / assignment
    if proc.returncode != 0 or not (release / f"{assignment}.ipynb").is_file():
        raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n"
                           f"{proc.stdout}\n{proc.stderr}")
    for nb_path in release.glob("*.ipynb"):
        nb = nbformat.read(nb_path, as_version=4)
        nbformat.write(normalize(nb), nb_path)
    return release


def solved(release: Path, source: Path) -> nbformat.NotebookNode:
    """The release with the solution's answers: an honest submission, for tests and bench."""
    nb = nbformat.read(release, as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source
               for c in nbformat.read(source, as_version=4).cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    return nb


def normalize(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop volatile metadata so that two generations of the same source compare equal."""
    for key in VOLATILE_NB_KEYS:
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.pop("id", None)
    nb.nbformat_minor = min(nb.nbformat_minor, 4)
    return nb


def generate(assignments: list[str]) -> None:
    """Regenerate ``exercises/<a>`` from ``solutions/<a>`` for each assignment."""
    for assignment in assignments:
        with tempfile.TemporaryDirectory() as tmp:
            release = generate_in(make_course(Path(tmp), assignment), assignment)
            dest = ROOT / "exercises" / assignment
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(release, dest)
        print(f"exercises/{assignment} <- solutions/{assignment}")
