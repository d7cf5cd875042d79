"""A class of hostile and broken submissions, graded like `make grade` does (real nbgrader,
real gradebook, bubblewrap sandbox), in a temporary copy of the course.

Each submission ends with the score it deserves or a reason/flag in the summary, the run
finishes, no submission reaches the course (solutions/, the gradebook, other submissions, the
network), and no feedback page holds a hidden-test line.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import threading

import nbformat
import pytest
from nbgrader.api import Gradebook

from tools.grading import generate_in, make_course, solved
from tools.grading.cli import db_url, feedback, grade_class
from tools.grading.feedback import assignment_secrets, page_text, squash
from tools.grading.sandbox import bwrap_probe

ASSIGNMENT = "ex03_transposed_conv"
TOTAL, PREDICT = 6.0, 1.0  # points of the assignment, of its "predict" question
pytestmark = [pytest.mark.grading, pytest.mark.slow, pytest.mark.timeout(1200),
              pytest.mark.skipif(bwrap_probe() is not None, reason=str(bwrap_probe()))]


def cell(nb, gid):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


def in_predict(code):
    def edit(nb):
        cell(nb, "predict").source = code + "\nWORKED_EXAMPLE_STRIDE = 1\n"
    return edit


def escape(course, port):
    """Code that tries every way out of its sandbox; any success fails the predict test."""
    other = course / "grading" / "submitted" / "honest" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    targets = [str(p) for p in (other, course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
                                course / "grading" / "gradebook.db",
                                course / "nbgrader_config.py")]
    return in_predict(f"""import os, socket, torch
for p in {targets!r}:
    for how in ("r", "a"):
        try:
            open(p, how).write("x")
        except Exception:
            pass
assert not os.path.exists({str(course)!r}), "the course is visible"
assert os.path.expanduser("~") == os.getcwd(), "a home folder is visible"
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2)
    reached = True
except OSError:
    reached = False
try:
    big = torch.ones(2**31, dtype=torch.uint8)  # 2 GB, over the 1.5 GB limit
except (MemoryError, RuntimeError):
    big = None
assert not reached and big is None""")


def colab(nb):
    """Colab and JupyterLab metadata, and a cell of 5 MB of output: nothing to flag."""
    for c in nb.cells:
        c.metadata.update({"colab": {"id": "x"}, "tags": ["t"], "collapsed": False})
    added = nbformat.v4.new_code_cell("print('y' * 5_000_000)")
    added.pop("id")  # the release is nbformat 4.4: cells have no ids
    nb.cells.insert(3, added)


def tamper(nb):
    """On the blank release: a test deleted, one edited, one re-tagged as a solution."""
    nb.cells.remove(cell(nb, "test_conv_transpose2d_splat"))
    cell(nb, "test_predict").source = "pass"
    retag = cell(nb, "test_conv_transpose_output_size")
    retag.metadata["nbgrader"].update(grade=False, solution=True, locked=False)
    retag.source = "pass"


CHEATS = ("import torch\ntorch.equal = lambda *a, **k: True\n"
          "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])\n"
          "from course_lib.ops import conv_transpose2d")


def class_of(course, port):
    """student -> how to change the solved notebook (callable), the blank release (a
    callable taking `blank`), raw bytes, or None for the blank release itself."""
    return {
        "honest": lambda nb: None,
        "colab": colab,
        "sigint": in_predict("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                             "while True:\n    pass"),
        "exits": in_predict("import sys\nsys.exit(0)"),
        "killer": in_predict("import os\nos._exit(1)"),
        "escape": escape(course, port),
        "cheater": in_predict(CHEATS),
        "tampered": ("blank", tamper),
        "blank": None,
        "badjson": b'{"cells": [',
        "empty": b"",
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("class"), ASSIGNMENT, timeout=20,
                         extra="c.SandboxedExecute.memory_mb = 1536\n")
    release = generate_in(course, ASSIGNMENT) / f"{ASSIGNMENT}.ipynb"
    source = course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    server = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def listen():  # a connection from the sandbox would be a network leak
        with contextlib.suppress(OSError):  # closing the server below ends the wait
            accepted.append(server.accept())

    threading.Thread(target=listen, daemon=True).start()
    for student, what in class_of(course, server.getsockname()[1]).items():
        dest = course / "grading" / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        dest.parent.mkdir(parents=True)
        if isinstance(what, bytes):
            dest.write_bytes(what)
            continue
        if what is None or isinstance(what, tuple):
            nb = nbformat.read(release, as_version=4)
            if what:
                what[1](nb)
        else:
            nb = solved(release, source)
            what(nb)
        nbformat.write(nb, dest)
    before = {p: p.read_bytes() for p in (course / "solutions").rglob("*") if p.is_file()}
    honest = (course / "grading" / "submitted" / "honest").rglob("*.ipynb")
    before.update({p: p.read_bytes() for p in honest})
    assert grade_class(course, [ASSIGNMENT], jobs=2) == 0
    server.close()
    return course, before, accepted


def results(course):
    state = json.loads((course / "grading" / "autograde.json").read_text())
    with Gradebook(db_url(course)) as gb:
        return {s.student_id: (s.score, state[f"{ASSIGNMENT}/{s.student_id}"]["reasons"])
                for s in gb.assignment_submissions(ASSIGNMENT)}


EXPECTED = {  # student -> (score or None: not checked, words that the reasons must hold)
    "honest": (TOTAL, []), "colab": (TOTAL, []), "blank": (0, []),
    "sigint": (TOTAL - PREDICT, ["timeout in cell predict", "flagged: imports signal"]),
    "exits": (TOTAL - PREDICT, []),
    "killer": (TOTAL - PREDICT, ["kernel died in cell predict"]),
    "escape": (TOTAL, []),
    "cheater": (None, ["flagged: patches torch.equal", "flagged: uses get_ipython",
                       "flagged: imports the reference conv_transpose2d"]),
    "tampered": (0, ["tampered: deleted test_conv_transpose2d_splat",
                     "tampered: edited test_predict",
                     "tampered: changed metadata of test_conv_transpose_output_size "
                     "(grade, solution, locked)"]),
    "badjson": (0, ["not valid JSON"]), "empty": (0, ["empty file"]),
}


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_each_submission_gets_what_it_deserves(graded, student):
    course, _, _ = graded
    score, reasons = results(course)[student]
    want, words = EXPECTED[student]
    if want is not None:
        assert score == pytest.approx(want), (student, score, reasons)
    for word in words:
        assert any(word in r for r in reasons), (student, word, reasons)
    if not words and want in (TOTAL, 0):
        assert not [r for r in reasons if r.startswith(("tampered", "flagged"))], reasons


def test_nothing_outside_the_sandbox_changed(graded):
    course, before, accepted = graded
    changed = [str(p) for p, data in before.items() if p.read_bytes() != data]
    assert not changed, f"a submission changed files of the course: {changed}"
    assert not accepted, "a submission reached the network"


def test_nbgrader_sees_no_changed_cells(graded):
    """Submissions are rebuilt on the release: nbgrader's checksum warnings stay quiet, so a
    warning would mean something (tampering is reported by our own flags)."""
    course, _, _ = graded
    logs = list((course / "grading" / "logs").glob("*.log"))
    assert logs
    for log in logs:
        text = log.read_text()
        assert "has changed" not in text and "Missing grade cell" not in text, text[-2000:]


def test_output_is_cut_by_bytes(graded):
    course, _, _ = graded
    nb = course / "grading" / "autograded" / "colab" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert nb.stat().st_size < 1_000_000
    assert "output cut" in nb.read_text()


def test_feedback_for_everyone_without_hidden_tests(graded):
    course, _, _ = graded
    assert feedback(course, [ASSIGNMENT]) == 0
    secrets = assignment_secrets([course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"])
    assert len(secrets) > 20
    for student in EXPECTED:
        page = course / "grading" / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html"
        assert page.is_file(), f"no feedback for {student}"
        text = page_text(page)
        leaked = [s for s in secrets if squash(s) in text]
        assert not leaked, (student, leaked[:3])
    crash = page_text(course / "grading" / "feedback" / "badjson" / ASSIGNMENT
                      / f"{ASSIGNMENT}.html")
    assert "not valid JSON" in crash
    honest = page_text(course / "grading" / "feedback" / "honest" / ASSIGNMENT
                       / f"{ASSIGNMENT}.html")
    assert "Hidden tests test_predict_hidden passed: 0.5 / 0.5 points" in honest


def test_rerun_regrades_only_what_changed(graded, capsys):
    course, _, _ = graded
    target = course / "grading" / "submitted" / "blank" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    release = course / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    source = course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    nbformat.write(solved(release, source), target)
    capsys.readouterr()
    assert grade_class(course, [ASSIGNMENT], jobs=1) == 0
    out = capsys.readouterr().out
    assert "grading 1 submission(s)" in out and "honest: unchanged" in out
    assert results(course)["blank"][0] == pytest.approx(TOTAL)
    assert grade_class(course, ["ex00_tensors"]) == 0
    assert "ex00_tensors: no submissions" in capsys.readouterr().out
    shutil.rmtree(course / "grading" / "feedback")


def test_export_writes_grades_csv_under_grading(graded):
    from tools.grading.cli import main

    course, _, _ = graded
    assert main(["export", "--course", str(course)]) == 0
    csv = (course / "grading" / "grades.csv").read_text()
    assert "honest" in csv and ASSIGNMENT in csv
    assert not (course / "grades.csv").exists()
