"""nbgrader round trips shared by `make exercises`, `make grade` and tests/test_grading.py.

``generate`` runs ``nbgrader generate_assignment`` in a throw-away course directory, so the
committed ``exercises/`` copy is reproducible and no gradebook is left behind. ``autograde``
grades every submission under ``grading/submitted`` and survives broken ones.

Usage: ``python -m tools.grading generate ex00_tensors ...`` or ``... autograde ex00_tensors``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NBGRADER = [sys.executable, "-m", "nbgrader"]
# nbgrader calls helpers such as `alembic` by name: put this interpreter's bin/ first on PATH.
ENV = {**os.environ, "PATH": os.pathsep.join([os.path.dirname(sys.executable),
                                              os.environ.get("PATH", "")])}
# Notebook metadata that changes from run to run and says nothing about the content.
VOLATILE_NB_KEYS = ("widgets",)

COURSE_CONFIG = """\
c = get_config()
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = "segmentation-course"
c.Execute.timeout = {timeout}
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
"""


def make_course(workdir: Path, assignment: str, timeout: int = 120) -> Path:
    """A temporary nbgrader course holding ``solutions/<assignment>`` as its source."""
    src = ROOT / "solutions" / assignment
    if not (src / f"{assignment}.ipynb").is_file():
        raise FileNotFoundError(f"no solutions/{assignment}/{assignment}.ipynb")
    course = workdir / "course"
    shutil.copytree(src, course / "source" / assignment,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    (course / "nbgrader_config.py").write_text(COURSE_CONFIG.format(root=str(course),
                                                                    timeout=timeout))
    return course


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*NBGRADER, *args], cwd=course, capture_output=True, text=True, env=ENV)


def generate_in(course: Path, assignment: str) -> Path:
    """Run generate_assignment in ``course``; return the release folder."""
    proc = nbgrader(course, "generate_assignment", assignment, "--force")
    release = course / "release" / assignment
    if proc.returncode != 0 or not (release / f"{assignment}.ipynb").is_file():
        raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n"
                           f"{proc.stdout}\n{proc.stderr}")
    for nb_path in release.glob("*.ipynb"):
        nb = nbformat.read(nb_path, as_version=4)
        nbformat.write(normalize(nb), nb_path)
    return release


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


def autograde(assignments: list[str]) -> int:
    """Autograde every submission with the repo's nbgrader_config; print a score table."""
    from nbgrader.api import Gradebook

    (ROOT / "grading").mkdir(exist_ok=True)
    status = 0
    for assignment in assignments:
        # Register the assignment (and its hidden tests) in the gradebook first.
        # The release goes to grading/release so that the committed exercises/ stay as they are.
        proc = subprocess.run([*NBGRADER, "generate_assignment", assignment, "--force",
                               "--CourseDirectory.release_directory=grading/release"],
                              cwd=ROOT, capture_output=True, text=True, env=ENV)
        if proc.returncode:
            print(proc.stdout, proc.stderr, file=sys.stderr)
            return proc.returncode
        # Exit code 1 also means "a submission crashed its kernel": the others are graded.
        proc = subprocess.run([*NBGRADER, "autograde", assignment, "--create"],
                              cwd=ROOT, capture_output=True, text=True, env=ENV)
        if proc.returncode:
            status = 1
            print(f"warning: nbgrader autograde {assignment} reported failures:\n"
                  f"{proc.stderr[-2000:]}", file=sys.stderr)
    db = ROOT / "grading" / "gradebook.db"
    with Gradebook(f"sqlite:///{db}") as gb:
        print(f"{'assignment':<24}{'student':<20}{'score':>8}{'max':>6}")
        for assignment in assignments:
            for sub in gb.assignment_submissions(assignment):
                print(f"{assignment:<24}{sub.student_id:<20}{sub.score:>8.1f}{sub.max_score:>6.1f}")
    return status


def main(argv: list[str]) -> int:
    if len(argv) < 1 or argv[0] not in ("generate", "autograde"):
        print("usage: python -m tools.grading {generate|autograde} ASSIGNMENT...", file=sys.stderr)
        return 2
    command, assignments = argv[0], argv[1:]
    if not assignments:
        print("no assignments found in solutions/", file=sys.stderr)
        return 2
    if command == "generate":
        generate(assignments)
        return 0
    return autograde(assignments)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
