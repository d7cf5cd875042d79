"""Autograde seconds per submission, sandbox included, for every assignment.

For each assignment: a temporary course (``tools.grading.make_course``), its release, and
three honest submissions (the release with the solution's answers), graded as ``make grade``
grades one batch (sanitize, one ``nbgrader autograde`` process, each notebook in its own
bubblewrap sandbox, the gradebook). Reported: wall seconds per submission (registration
excluded), the seconds of one sandboxed execution alone, the scores, and the machine's load
(wall times on a shared machine grow with it). Target: at most 10 s per honest submission,
so a class of 100 grades in minutes (``make grade JOBS=N`` runs N at once).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
from pathlib import Path

TARGET_S = 10.0


def one(assignment: str, n: int = 3) -> list:
    """Grade ``n`` honest submissions in one batch; seconds per submission, and the
    sandboxed run of one notebook alone."""
    import nbformat
    from nbgrader.api import Gradebook

    from tools.grading import generate_in, make_course, sandbox, solved
    from tools.grading.autograde import Grader
    from tools.grading.cli import db_url

    with tempfile.TemporaryDirectory() as tmp:
        course = make_course(Path(tmp), assignment)
        release = generate_in(course, assignment) / f"{assignment}.ipynb"
        source = course / "solutions" / assignment / f"{assignment}.ipynb"
        students = [f"honest{i}" for i in range(n)]
        for student in students:
            dest = course / "grading" / "submitted" / student / assignment / release.name
            dest.parent.mkdir(parents=True)
            nbformat.write(solved(release, source), dest)
        grader = Grader(course, db_url(course))
        registered = grader.register(assignment)
        reasons = {}
        start = time.perf_counter()
        grader.grade_batch(assignment, students, registered, "bench",
                           lambda s, r: reasons.update({s: r}))
        seconds = (time.perf_counter() - start) / n
        sanitized = nbformat.read(course / "grading" / "sanitized" / "bench" / students[0]
                                  / assignment / release.name, as_version=4)
        start = time.perf_counter()
        sandbox.run(sanitized, None, timeout=120)
        alone = time.perf_counter() - start
        with Gradebook(db_url(course)) as gb:
            subs = [gb.find_submission(assignment, s) for s in students]
            scores = sorted({f"{s.score:g}/{s.max_score:g}" for s in subs})
    why = "; ".join(sorted({r for rs in reasons.values() for r in rs})) or "-"
    met = "yes" if seconds <= TARGET_S else "NO"
    return [assignment, round(seconds, 1), round(alone, 1), ", ".join(scores), why, TARGET_S,
            met]


def run():
    from tools.grading.cli import ROOT
    from tools.grading.sandbox import bwrap_probe

    header = ["assignment", "s per submission", "sandbox run s", "score", "reasons", "target s",
              "met"]
    why = bwrap_probe()
    if why:
        return "autograde per honest submission", header, [[f"(no sandbox: {why})"] + [""] * 6]
    rows = []
    for path in sorted((ROOT / "solutions").iterdir()):
        if path.is_dir():
            with contextlib.redirect_stdout(io.StringIO()):
                rows.append(one(path.name))
    load = os.getloadavg()[0]
    title = (f"autograde seconds per honest submission (3 in one batch, sandbox included; "
             f"load average {load:.1f} on {os.cpu_count()} CPUs)")
    return title, header, rows
