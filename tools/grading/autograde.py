"""Grade submissions: each read as untrusted data, rebuilt, then run in its own sandbox.

``Grader`` works on one course directory (its ``grading/`` state). ``register`` runs
``nbgrader generate_assignment`` into ``grading/release``. ``grade_batch`` takes a list of
students of one assignment: each submission is read and rebuilt on the release
(``tools.grading.sanitize``: tamper flags) and its student code scanned
(``tools.grading.scan``: patching flags) into ``grading/sanitized/<batch>/``; then one
``nbgrader autograde --force`` process grades the batch, executing each notebook in its own
bubblewrap sandbox (``tools.grading.execute``) and writing the gradebook. Batches run in
parallel (``make grade JOBS=N``); SQLite serialises their writes. A submission that cannot
be read, or whose grading fails, has every grade set to 0 (never stale grades) and a reason.
``grading/autograde.json`` records what was graded and why points were lost;
``grading/logs/`` keeps nbgrader's log of each batch.
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
import time
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
# CPython 3.11's ast.parse is not safe in concurrent threads ("AST constructor recursion
# depth mismatch"): the scans of the batches take turns (they take milliseconds).
SCAN_LOCK = threading.Lock()


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

    def sanitize(self, assignment: str, student: str, release: Path, batch: str) -> list[str]:
        """Write the rebuilt submission into grading/sanitized/<batch>; return its flags."""
        submitted = self.state_dir / "submitted" / student / assignment
        dest = self.state_dir / "sanitized" / batch / student / assignment
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
            with SCAN_LOCK:
                flagged += scan(nb)
            nbformat.write(nb, dest / ref_path.name)
        return [f"tampered: {f}" for f in tampered] + [f"flagged: {f}" for f in flagged]

    def grade_batch(self, assignment: str, students: list[str], release: Path, batch: str,
                    done, progress=lambda student: None) -> None:
        """Grade ``students`` with one nbgrader process (one at a time, each in its own
        sandbox): ``progress(student)`` when its notebook has run, ``done(student, reasons)``
        once its grades are in the gradebook."""
        shutil.rmtree(self.state_dir / "sanitized" / batch, ignore_errors=True)
        flags = {}
        for student in students:
            try:
                flags[student] = self.sanitize(assignment, student, release, batch)
            except NotGradable as exc:
                zero_grades(self.db_url, assignment, student)
                shutil.rmtree(self.state_dir / "autograded" / student / assignment,
                              ignore_errors=True)
                done(student, [str(exc)])
        if not flags:
            return
        with tempfile.TemporaryDirectory() as reports:
            env = {REPORT_ENV: reports, UNSANDBOXED_ENV: "0" if self.sandboxed else "1"}
            args = ("autograde", assignment, "--force",
                    f"--CourseDirectory.submitted_directory=grading/sanitized/{batch}")
            proc = subprocess.Popen([*NBGRADER, *args], cwd=self.course, env={**ENV, **env},
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            seen = set()
            while proc.poll() is None:  # progress: a report is written as a run ends
                for report in sorted(Path(reports).glob("*.json")):
                    if report.stem not in seen:
                        seen.add(report.stem)
                        progress(report.stem)
                time.sleep(0.2)
            log = proc.stdout.read()
            logs = self.state_dir / "logs"
            logs.mkdir(exist_ok=True)
            (logs / f"{batch}.log").write_text(log)
            for student in flags:
                done(student, self.outcome(assignment, student, Path(reports), log)
                     + flags[student])

    def outcome(self, assignment: str, student: str, reports: Path, log: str) -> list[str]:
        """The reasons of one graded student; a failure of nbgrader zeroes its grades."""
        report = reports / f"{student}.json"
        autograded = self.state_dir / "autograded" / student / assignment
        if report.is_file() and autograded.is_dir():
            return json.loads(report.read_text())["reasons"]
        zero_grades(self.db_url, assignment, student)  # never keep stale grades
        errors = [ln for ln in log.splitlines() if "rror" in ln] or ["see nbgrader's log"]
        return [f"grading failed: {errors[-1][:200]}"]

    def save(self) -> None:
        tmp = self.state_path.with_suffix(".part")
        tmp.write_text(json.dumps(self.state, indent=1, sort_keys=True))
        os.replace(tmp, self.state_path)
