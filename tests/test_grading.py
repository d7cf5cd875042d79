"""Every assignment round-trips through nbgrader, in a temporary course directory.

- generate_assignment reproduces the committed exercises/ copy (volatile metadata aside);
- the solution passes all its tests, the unmodified release fails every graded test
  (nbgrader.validator.Validator: the CLI's exit code is 0 either way);
- autograde with a real gradebook gives the solution full marks and the release zero,
  and a submission that kills its kernel does not stop the others from being graded;
- hidden tests live in their own graded cells (tools/grading/cells.py states the rule).
"""

from __future__ import annotations

import shutil

import nbformat
import pytest
from conftest import ASSIGNMENTS, ROOT
from nbgrader.api import Gradebook
from nbgrader.validator import Validator

from tools.grading import generate_in, make_course, nbgrader, normalize
from tools.grading.cells import BEGIN, convention_errors, is_hidden, is_test
from tools.grading.sandbox import bwrap_probe

pytestmark = [pytest.mark.grading, pytest.mark.slow, pytest.mark.timeout(900)]


def _cells(path):
    nb = normalize(nbformat.read(path, as_version=4))
    return [(c.cell_type, c.source, c.metadata.get("nbgrader")) for c in nb.cells]


def _graded_tests(path) -> int:
    """Visible graded test cells (a release's hidden-test cells hold only a comment)."""
    nb = nbformat.read(path, as_version=4)
    return sum(1 for c in nb.cells if is_test(c) and not is_hidden(c))


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def course(request, tmp_path_factory):
    assignment = request.param
    course = make_course(tmp_path_factory.mktemp(assignment), assignment)
    release = generate_in(course, assignment)
    return assignment, course, release


def test_exercise_is_generated_from_solution(course):
    assignment, _, release = course
    committed = ROOT / "exercises" / assignment / f"{assignment}.ipynb"
    assert committed.is_file(), f"exercises/{assignment} missing: run `make exercises`"
    assert _cells(release / f"{assignment}.ipynb") == _cells(committed), (
        f"exercises/{assignment} differs from what solutions/{assignment} generates: "
        "run `make exercises` (never edit exercises/ by hand)"
    )


def test_release_hides_solutions_and_hidden_tests(course):
    assignment, _, release = course
    text = (release / f"{assignment}.ipynb").read_text()
    for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text, f"release of {assignment} leaks '{marker}'"
    assert "raise NotImplementedError()" in text


def test_solution_passes_and_release_fails(course):
    assignment, course_dir, release = course
    solution = course_dir / "solutions" / assignment / f"{assignment}.ipynb"
    result = Validator().validate(str(solution))
    assert not result, f"the solution of {assignment} fails validation: {result}"
    released = release / f"{assignment}.ipynb"
    failed = Validator().validate(str(released)).get("failed", [])
    assert len(failed) >= _graded_tests(released) > 0, (
        f"{assignment}: only {len(failed)} of {_graded_tests(released)} graded test cells "
        "fail on the unmodified release: a test passes without a solution"
    )


@pytest.mark.skipif(bwrap_probe() is not None, reason=str(bwrap_probe()))
def test_autograde_full_marks_and_zero(course):
    """Plain `nbgrader autograde` (the course's configuration: sandboxed execution)."""
    assignment, course_dir, release = course
    subs = course_dir / "grading" / "submitted"
    for student, src in (("solution", course_dir / "solutions" / assignment),
                         ("blank", release)):
        shutil.copytree(src, subs / student / assignment)
    # A submission that kills its kernel must not stop the others from being graded.
    crash = subs / "crasher" / assignment
    shutil.copytree(release, crash)
    nb = nbformat.read(crash / f"{assignment}.ipynb", as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code"
                 and c.metadata.get("nbgrader", {}).get("solution"))
    first.source += "\nimport os\nos._exit(1)\n"
    nbformat.write(nb, crash / f"{assignment}.ipynb")

    proc = nbgrader(course_dir, "autograde", assignment)
    with Gradebook(f"sqlite:///{course_dir / 'grading' / 'gradebook.db'}") as gb:
        max_score = gb.find_assignment(assignment).max_code_score
        scores = {s.student_id: s.code_score for s in gb.assignment_submissions(assignment)}
    assert max_score > 0
    assert scores.get("solution") == pytest.approx(max_score), (scores, proc.stderr[-3000:])
    assert scores.get("blank") == 0, scores
    assert scores.get("crasher", 0) == 0, scores


def test_grading_cli_usage_errors(capsys):
    from tools.grading.cli import main

    with pytest.raises(SystemExit):
        main([])
    assert "usage" in capsys.readouterr().err
    assert main(["generate"]) == 2 and "no assignments" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="no solutions/nope/nope.ipynb"):
        main(["generate", "nope"])


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_hidden_tests_live_in_their_own_cells(assignment):
    """Each hidden block is a graded, locked cell of its own (grade_id `*_hidden`, its own
    points, one comment line then the block); visible test cells hold no hidden block."""
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    hidden = [c for c in nb.cells if is_hidden(c)]
    assert hidden, f"{assignment} has no hidden tests"
    errors = [e for c in nb.cells for e in convention_errors(c)]
    assert not errors, f"solutions/{assignment}: " + "; ".join(errors)
    visible = [c for c in nb.cells if is_test(c) and not is_hidden(c)]
    assert visible and not any(BEGIN in c.source for c in visible)


def test_convention_errors_say_what_is_wrong():
    def cell(source, **meta):
        base = {"grade": True, "locked": True, "solution": False, "points": 1,
                "grade_id": "t_hidden"}
        return nbformat.v4.new_code_cell(source, metadata={"nbgrader": {**base, **meta}})

    good = f"# Hidden tests: x.\n{BEGIN}\nassert True\n### END HIDDEN TESTS\n"
    assert convention_errors(cell(good)) == []
    assert "end in '_hidden'" in convention_errors(cell(good, grade_id="t"))[0]
    assert "own points" in convention_errors(cell(good, points=0))[0]
    assert "locked" in convention_errors(cell(good, locked=False))[0]
    mixed = "assert 1\n" + good
    assert "one comment line" in convention_errors(cell(mixed))[0]
