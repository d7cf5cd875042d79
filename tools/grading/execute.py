"""``SandboxedExecute``: nbgrader's ``Execute`` step, run in the bubblewrap sandbox.

nbgrader's autograde pipeline stays as it is (sanitize, execute, save grades into the
gradebook); only the execution moves out of the grading process: ``tools.grading.sandbox``
runs the notebook and hands back a checked result, so only the grading process writes the
gradebook. Why a run broke (a timeout, a dead kernel, a garbled result) goes to
``<student>.json`` in the folder named by ``COURSE_GRADING_REPORT``, for the summary table. ``COURSE_GRADING_UNSANDBOXED=1``
(``--unsandboxed``) runs the same runner without bwrap, for instructors who accept the risk.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from nbgrader.preprocessors import Execute
from traitlets import Integer

from tools.grading import sandbox

REPORT_ENV = "COURSE_GRADING_REPORT"
UNSANDBOXED_ENV = "COURSE_GRADING_UNSANDBOXED"


class SandboxedExecute(Execute):
    """Execute the notebook in a sandbox (per-cell timeout: ``c.Execute.timeout``)."""

    memory_mb = Integer(sandbox.Limits.memory_mb, help="memory limit (MB)").tag(config=True)
    output_bytes = Integer(sandbox.Limits.output_bytes,
                           help="output bytes kept per cell").tag(config=True)
    cpu_seconds = Integer(sandbox.Limits.cpu_seconds,
                          help="CPU seconds per process").tag(config=True)

    def preprocess(self, nb, resources):
        sandboxed = os.environ.get(UNSANDBOXED_ENV) != "1"
        if sandboxed:
            sandbox.check_available()
        path = resources.get("metadata", {}).get("path")
        limits = sandbox.Limits(memory_mb=self.memory_mb, output_bytes=self.output_bytes,
                                cpu_seconds=self.cpu_seconds)
        result = sandbox.run(nb, Path(path) if path else None, timeout=self.timeout,
                             limits=limits, sandboxed=sandboxed)
        reports = os.environ.get(REPORT_ENV)
        if reports:
            student = resources.get("nbgrader", {}).get("student", "unknown")
            Path(reports, f"{student}.json").write_text(json.dumps(
                {"reasons": result.reasons, "sandboxed": sandboxed}))
        return result.notebook, resources
