"""Every assignment round-trips through nbgrader, in a temporary course directory.

- generate_assignment reproduces the committed exercises/ copy (volatile metadata aside);
- the solution passes all its tests, the unmodified release fails every graded test
  (nbgrader.validator.Validator: the CLI's exit code is 0 either way);
- autograde with a real gradebook gives the solution full marks and the release zero,
  and a submission that kills its kernel does not stop the others from being graded.
"""

from __future__ import annotations

import shutil

import nbformat
import pytest
from conftest import ASSIGNMENTS, ROOT
from nbgrader.api import Gradebook
from nbgrader.validator import Validator

from tools.grading import generate_in, make_course, nbgrader, normalize

pytestmark = [pytest.mark.grading, pytest.mark.slow]


def _cells(path):
    nb = normalize(nbformat.read(path, as_version=4))
    return [(c.cell_type, c.source, c.metadata.get("nbgrader")) for c in nb.cells]


def _graded_tests(path) -> int:
    """Graded test cells of a release that hold code (a hidden-test cell is only a comment)."""
    nb = nbformat.read(path, as_version=4)
    return sum(1 for c in nb.cells
               if c.metadata.get("nbgrader", {}).get("grade")
               and not c.metadata["nbgrader"].get("solution")
               and any(ln.strip() and not ln.lstrip().startswith("#")
                       for ln in c.source.splitlines()))


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
    solution = course_dir / "source" / assignment / f"{assignment}.ipynb"
    result = Validator().validate(str(solution))
    assert not result, f"the solution of {assignment} fails validation: {result}"
    released = release / f"{assignment}.ipynb"
    failed = Validator().validate(str(released)).get("failed", [])
    assert len(failed) >= _graded_tests(released) > 0, (
        f"{assignment}: only {len(failed)} of {_graded_tests(released)} graded test cells "
        "fail on the unmodified release: a test passes without a solution"
    )


def test_autograde_full_marks_and_zero(course):
    assignment, course_dir, release = course
    subs = course_dir / "submitted"
    for student, src in (("solution", course_dir / "source" / assignment),
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
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gb:
        max_score = gb.find_assignment(assignment).max_code_score
        scores = {s.student_id: s.code_score for s in gb.assignment_submissions(assignment)}
    assert max_score > 0
    assert scores.get("solution") == pytest.approx(max_score), (scores, proc.stderr[-3000:])
    assert scores.get("blank") == 0, scores
    assert scores.get("crasher", 0) == 0, scores


def test_grading_cli_usage_errors(capsys):
    from tools.grading import main

    assert main([]) == 2 and "usage" in capsys.readouterr().err
    assert main(["generate"]) == 2 and "no assignments" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="no solutions/nope/nope.ipynb"):
        main(["generate", "nope"])
