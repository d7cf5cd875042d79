"""Autograde seconds per submission, sandbox included, for every assignment.

For each assignment: a temporary course (``tools.grading.make_course``), its release, and one
honest submission (the release with the solution's answers), graded as ``make grade`` does
(sanitize, ``nbgrader autograde`` with the bubblewrap sandbox, the gradebook). Reported: the
wall seconds of that one submission (registration excluded), the seconds of the sandboxed
execution alone, and the score. Target: at most 10 s per honest submission, so a class of
100 grades in minutes (``make grade JOBS=N`` runs N at once).
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from pathlib import Path

TARGET_S = 10.0


def solved(release: Path, source: Path):
    import nbformat

    nb = nbformat.read(release, as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source
               for c in nbformat.read(source, as_version=4).cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    return nb


def one(assignment: str) -> list:
    import nbformat
    from nbgrader.api import Gradebook

    from tools.grading import generate_in, make_course, sandbox
    from tools.grading.autograde import Grader
    from tools.grading.cli import db_url

    with tempfile.TemporaryDirectory() as tmp:
        course = make_course(Path(tmp), assignment)
        release = generate_in(course, assignment) / f"{assignment}.ipynb"
        source = course / "solutions" / assignment / f"{assignment}.ipynb"
        dest = course / "grading" / "submitted" / "honest" / assignment / release.name
        dest.parent.mkdir(parents=True)
        nb = solved(release, source)
        nbformat.write(nb, dest)
        grader = Grader(course, db_url(course))
        registered = grader.register(assignment)
        start = time.perf_counter()
        reasons = grader.grade(assignment, "honest", registered)
        seconds = time.perf_counter() - start
        sanitized = nbformat.read(course / "grading" / "sanitized" / "honest" / assignment
                                  / release.name, as_version=4)
        start = time.perf_counter()
        sandbox.run(sanitized, None, timeout=120)
        alone = time.perf_counter() - start
        with Gradebook(db_url(course)) as gb:
            sub = gb.find_submission(assignment, "honest")
            score = f"{sub.score:g}/{sub.max_score:g}"
    met = "yes" if seconds <= TARGET_S else "NO"
    return [assignment, round(seconds, 1), round(alone, 1), score, "; ".join(reasons) or "-",
            TARGET_S, met]


def run():
    from tools.grading.cli import ROOT
    from tools.grading.sandbox import bwrap_probe

    header = ["assignment", "autograde s", "sandbox run s", "score", "reasons", "target s",
              "met"]
    why = bwrap_probe()
    if why:
        return "autograde per honest submission", header, [[f"(no sandbox: {why})"] + [""] * 6]
    rows = []
    for path in sorted((ROOT / "solutions").iterdir()):
        if path.is_dir():
            with contextlib.redirect_stdout(io.StringIO()):
                rows.append(one(path.name))
    return "autograde per honest submission (sandbox included, one at a time)", header, rows
