"""Execute every lecture with papermill (QUICK=True) and record its time and peak memory.

A failing cell fails the test with the notebook name, the cell number and its traceback.
Wall time and peak RSS of each kernel go to build/notebooks.json; `make bench` prints them.
"""

from __future__ import annotations

import json
import time

import nbformat
import papermill as pm
import pytest
from conftest import BUILD, LECTURES, ROOT, rel

TIMEOUT = 300  # seconds per cell; QUICK notebooks are meant to finish in well under two minutes
REPORT = BUILD / "notebooks.json"
PROBE = (
    "import json as _j, resource as _r\n"
    "print('__PEAK__' + _j.dumps(_r.getrusage(_r.RUSAGE_SELF).ru_maxrss / 1024))"
)


def _record(name: str, entry: dict) -> None:
    BUILD.mkdir(exist_ok=True)
    report = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    report[name] = entry
    REPORT.write_text(json.dumps(report, indent=2, sort_keys=True))


def _peak_mb(nb) -> float | None:
    for output in nb.cells[-1].get("outputs", []):
        text = output.get("text", "")
        if "__PEAK__" in text:
            return round(float(text.split("__PEAK__")[1].strip()), 1)
    return None


@pytest.mark.notebook
@pytest.mark.parametrize("path", LECTURES, ids=[p.stem for p in LECTURES])
def test_lecture_executes(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    probe = nbformat.v4.new_code_cell(PROBE, metadata={"tags": ["harness"]})
    nb.cells.append(probe)
    src = tmp_path / path.name
    nbformat.write(nb, src)
    start = time.perf_counter()
    try:
        out = pm.execute_notebook(
            str(src), str(tmp_path / f"{path.stem}.out.ipynb"),
            parameters={"QUICK": True}, cwd=str(path.parent), kernel_name="python3",
            execution_timeout=TIMEOUT, progress_bar=False, log_output=False,
        )
    except pm.PapermillExecutionError as err:
        pytest.fail(
            f"{rel(path)}: cell {err.cell_index} (execution {err.exec_count}) raised "
            f"{err.ename}: {err.evalue}\n" + "\n".join(err.traceback), pytrace=False,
        )
    seconds = round(time.perf_counter() - start, 1)
    if path.parent == ROOT / "lectures":  # only real lectures go into the report
            _record(path.stem, {"seconds": seconds, "peak_rss_mb": _peak_mb(out),
                            "cells": len(nb.cells) - 1, "quick": True})


def test_failing_cell_names_notebook_and_cell(tmp_path):
    bad = tmp_path / "99_broken.ipynb"
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("QUICK = False\nSEED = 0", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("ratio = 1 / 0"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, bad)
    with pytest.raises(pytest.fail.Exception,
                       match=r"99_broken.ipynb: cell \d+ .*ZeroDivisionError") as info:
        run = tmp_path / "run"
        run.mkdir()
        test_lecture_executes(bad, run)
    assert "ratio = 1 / 0" in str(info.value) or "division by zero" in str(info.value)
