"""The nbgrader configuration every grading run uses, in one place.

``nbgrader_config.py`` (the course) and the temporary courses of the tests call
``configure``: autograde executes each notebook in the sandbox (``SandboxedExecute`` in place
of nbgrader's ``Execute``), feedback drops hidden tests (``RedactHidden``), and
``nbgrader export`` writes ``grading/grades.csv``.
"""

from __future__ import annotations

import os

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    GetGrades,
    IgnorePattern,
    LimitOutput,
    SaveAutoGrades,
)

from tools.grading.execute import SandboxedExecute
from tools.grading.feedback import RedactHidden

TIMEOUT = 120  # seconds per cell; a cell that runs longer fails and the run goes on


def configure(c, root: str, grading: str = "grading", timeout: int = TIMEOUT) -> None:
    """Fill the traitlets config ``c`` for a course at ``root``; its state under ``grading``."""
    state = os.path.join(root, grading)
    c.CourseDirectory.root = root
    c.CourseDirectory.course_id = "segmentation-course"
    c.CourseDirectory.source_directory = "solutions"
    c.CourseDirectory.release_directory = "exercises"
    c.CourseDirectory.submitted_directory = os.path.join(grading, "submitted")
    c.CourseDirectory.autograded_directory = os.path.join(grading, "autograded")
    c.CourseDirectory.feedback_directory = os.path.join(grading, "feedback")
    c.CourseDirectory.db_url = "sqlite:///" + os.path.join(state, "gradebook.db")
    c.Exchange.root = os.path.join(state, "exchange")
    c.Execute.timeout = timeout
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    c.Autograde.autograde_preprocessors = [
        SandboxedExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
        SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
    c.GenerateFeedback.preprocessors = [GetGrades, RedactHidden, CSSHTMLHeaderPreprocessor]
    c.CsvExportPlugin.to = os.path.join(state, "grades.csv")
