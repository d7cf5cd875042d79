"""Grading with nbgrader: releases, sandboxed autograding, feedback without hidden tests.

Modules (one concept each): ``course`` (temporary courses, ``make exercises``), ``config``
(the nbgrader configuration), ``cells`` (hidden-test cells), ``sanitize`` (untrusted
submissions rebuilt on the release), ``scan`` (patching flags), ``sandbox`` and ``runner``
(bubblewrap execution), ``execute`` (the nbgrader step that calls it), ``autograde`` (one
submission), ``feedback`` (pages without hidden tests), ``cli`` (``python -m tools.grading``).
"""

from tools.grading.course import generate_in, make_course, nbgrader, normalize, solved

__all__ = ["generate_in", "make_course", "nbgrader", "normalize", "solved"]
