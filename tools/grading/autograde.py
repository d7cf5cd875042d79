"""``make grade``: grade every submission, one sandbox each, and print a table per student.

For each assignment that has submissions under ``grading/submitted/<student>/<assignment>/``:
register it (``nbgrader generate_assignment`` into ``grading/release``), then for each
submission whose files (or the assignment's source) changed since it was last graded:
read it as untrusted data and rebuild it on the release (``tools.grading.sanitize``: tamper
flags), scan the student's code (``tools.grading.scan``: patching flags), and run
``nbgrader autograde --student <id> --force`` on the rebuilt copy in ``grading/sanitized``;
nbgrader executes it in the sandbox (``tools.grading.execute``) and writes the gradebook.
Several submissions run at once (``--jobs``); each nbgrader process writes its own rows and
SQLite serialises the writes. ``grading/autograde.json`` records what was graded and why a
submission lost points (timeout, kernel died, tampered, flagged, not valid JSON).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from types import SimpleNamespace

import nbformat
from nbgrader.api import Gradebook

from tools.grading.course import ENV, NBGRADER
from tools.grading.execute import REPORT_ENV, UNSANDBOXED_ENV
from tools.grading.sanitize import NotGradable, read_submission, rebuild
from tools.grading.scan import scan

STATE = "autograde.json"
DB_LOCK = threading.Lock()


def run_nbgrader(course: Path, *args: str, env: dict | None = None):
    return subprocess.run([*NBGRADER, *args], cwd=course, capture_output=True, text=True,
                          env={**ENV, **(env or {})})


def digest(*folders: Path) -> str:
    h = hashlib.sha256()
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
            h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def source_cells(db_url: str, notebook: str, assignment: str) -> dict:
    with Gradebook(db_url) as gb:
        cells = gb.find_notebook(notebook, assignment).source_cells
        return {c.name: SimpleNamespace(source=c.source, checksum=c.checksum) for c in cells}


def zero_grades(db_url: str, assignment: str, student: str) -> None:
    """Record an ungradable submission: every grade 0 (this process writes the gradebook)."""
    with DB_LOCK, Gradebook(db_url) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLAlchemy's autoflush notes on new rows
        gb.update_or_create_student(student)
        submission = gb.update_or_create_submission(assignment, student)
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                grade.auto_score, grade.needs_manual_grade = 0, False
        gb.db.commit()


class Grader:
    """Grades submissions of one course directory (its ``grading/`` state)."""

    def __init__(self, course: Path, db_url: str, grading: str = "grading",
                 sandboxed: bool = True):
        self.course, self.db_url, self.sandboxed = course, db_url, sandboxed
        self.state_dir = course / grading
        self.state_path = self.state_dir / STATE
        self.state = (json.loads(self.state_path.read_text())
                      if self.state_path.is_file() else {})

    def submissions(self, assignment: str) -> list[str]:
        root = self.state_dir / "submitted"
        return sorted(p.name for p in root.iterdir() if (p / assignment).is_dir()) \
            if root.is_dir() else []

    def register(self, assignment: str) -> Path:
        proc = run_nbgrader(self.course, "generate_assignment", assignment, "--force",
                            "--CourseDirectory.release_directory=grading/release")
        release = self.state_dir / "release" / assignment
        if proc.returncode or not release.is_dir():
            raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n"
                               f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        return release

    def sanitize(self, assignment: str, student: str, release: Path) -> list[str]:
        """Write the rebuilt submission into grading/sanitized; return its flags."""
        submitted = self.state_dir / "submitted" / student / assignment
        dest = self.state_dir / "sanitized" / student / assignment
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(submitted, dest, symlinks=True,
                        ignore=shutil.ignore_patterns("*.ipynb", ".*"))
        for link in [p for p in dest.rglob("*") if p.is_symlink()]:
            link.unlink()
        tampered, flagged = [], []
        for ref_path in sorted(release.glob("*.ipynb")):
            sub = read_submission(submitted / ref_path.name)
            ref = nbformat.read(ref_path, as_version=4)
            cells = source_cells(self.db_url, ref_path.stem, assignment)
            nb, flags = rebuild(sub, ref, cells)
            tampered += flags
            flagged += scan(nb)
            nbformat.write(nb, dest / ref_path.name)
        return [f"tampered: {f}" for f in tampered] + [f"flagged: {f}" for f in flagged]

    def grade(self, assignment: str, student: str, release: Path) -> list[str]:
        """Grade one submission; return the reasons for the summary table."""
        try:
            reasons = self.sanitize(assignment, student, release)
        except NotGradable as exc:
            zero_grades(self.db_url, assignment, student)
            shutil.rmtree(self.state_dir / "autograded" / student / assignment,
                          ignore_errors=True)
            return [str(exc)]
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "report.json"
            env = {REPORT_ENV: str(report), UNSANDBOXED_ENV: "0" if self.sandboxed else "1"}
            args = ("autograde", assignment, "--student", student, "--force",
                    "--CourseDirectory.submitted_directory=grading/sanitized")
            for _ in range(3):  # a busy gradebook ("database is locked") is retried
                proc = run_nbgrader(self.course, *args, env=env)
                if "database is locked" not in proc.stdout + proc.stderr:
                    break
            if proc.returncode or not report.is_file():
                zero_grades(self.db_url, assignment, student)  # never keep stale grades
                errors = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "Error" in ln]
                return reasons + [f"grading failed: {(errors or ['see nbgrader'])[-1][:200]}"]
            return json.loads(report.read_text())["reasons"] + reasons

    def save(self) -> None:
        tmp = self.state_path.with_suffix(".part")
        tmp.write_text(json.dumps(self.state, indent=1, sort_keys=True))
        os.replace(tmp, self.state_path)
