"""The grading tools piece by piece, without nbgrader runs: reading untrusted submissions,
rebuilding them on the release, flagging patches, redacting feedback, refusing to grade
without a sandbox, and checking what comes back from one."""

from __future__ import annotations

import json
from types import SimpleNamespace

import nbformat
import pytest
from conftest import ASSIGNMENTS, ROOT

from tools.grading import sandbox, sanitize
from tools.grading.cells import BEGIN, END
from tools.grading.feedback import check_pages, redact
from tools.grading.scan import scan

pytestmark = pytest.mark.timeout(600)
HIDDEN = f"# Hidden tests: f on random inputs (run by the grader).\n{BEGIN}\nassert f(12345) == 24690, 'doubling'\n{END}\n"  # noqa: E501


def meta(gid, **kw):
    base = {"grade": False, "solution": False, "locked": True, "grade_id": gid,
            "schema_version": 3, "checksum": f"sum-{gid}"}
    return {"nbgrader": {**base, **kw}}


def release():
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# intro", metadata=meta("intro")),
        nbformat.v4.new_code_cell("raise NotImplementedError()",
                                  metadata=meta("f", solution=True, locked=False)),
        nbformat.v4.new_code_cell("assert f(1) == 2", metadata=meta("test_f", grade=True,
                                                                      points=1)),
        nbformat.v4.new_code_cell(HIDDEN.splitlines()[0],
                                  metadata=meta("test_f_hidden", grade=True, points=1)),
    ])


SOURCES = {"intro": "# intro", "f": "raise NotImplementedError()",
           "test_f": "assert f(1) == 2", "test_f_hidden": HIDDEN}
CELLS = {k: SimpleNamespace(source=v, checksum=f"db-{k}") for k, v in SOURCES.items()}


def submission(answer="def f(x):\n    return 2 * x"):
    nb = release()
    nb.cells[1].source = answer
    return nb


def test_untouched_submission_is_rebuilt_quietly_with_hidden_tests():
    sub = submission()
    for cell in sub.cells:  # Colab and JupyterLab add keys of their own
        cell.metadata.update({"colab": {"id": "abc"}, "tags": ["x"], "collapsed": True})
    sub.cells.insert(2, nbformat.v4.new_code_cell("print('scratch')"))
    nb, flags = sanitize.rebuild(sub, release(), CELLS)
    assert flags == []
    assert [c.source for c in nb.cells] == ["# intro", sub.cells[1].source, "print('scratch')",
                                            "assert f(1) == 2", HIDDEN]
    assert nb.cells[4].metadata["nbgrader"]["checksum"] == "db-test_f_hidden"


@pytest.mark.parametrize("change, flag", [
    (lambda nb: nb.cells.pop(2), "deleted test_f"),
    (lambda nb: nb.cells[2].update(source="pass"), "edited test_f"),
    (lambda nb: nb.cells[2].metadata["nbgrader"].update(points=100),
     "changed metadata of test_f (points)"),
    (lambda nb: nb.cells[3].metadata["nbgrader"].update(grade=False, solution=True,
                                                        locked=False),
     "changed metadata of test_f_hidden (grade, solution, locked)"),
    (lambda nb: nb.cells.append(nbformat.from_dict(json.loads(json.dumps(nb.cells[2])))),
     "duplicated test_f"),
    (lambda nb: nb.cells.append(nbformat.v4.new_code_cell("1", metadata=meta("mine"))),
     "unknown nbgrader cell mine"),
    (lambda nb: nb.cells[2].update(cell_type="markdown"), "changed the type of test_f"),
])
def test_tampering_is_flagged_and_undone(change, flag):
    sub = submission()
    change(sub)
    nb, flags = sanitize.rebuild(sub, release(), CELLS)
    assert flag in flags
    locked = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert [c.source for c in locked] == ["assert f(1) == 2", HIDDEN]
    assert all(c.metadata["nbgrader"]["points"] == 1 for c in locked)


@pytest.mark.parametrize("content, why", [
    (b"", "empty file"), (b'{"cells": [', "not valid JSON"), (b"\xff\xfe", "not valid JSON"),
    (b"[1, 2]", "not a notebook"), (b'{"cells": [], "nbformat": 3}', "format 4"),
    (b'{"cells": [{"cell_type": "code"}], "nbformat": 4}', "not a notebook"),
    (b'{"cells": [{"cell_type": "x", "source": ""}], "nbformat": 4}', "not a notebook"),
])
def test_unreadable_submissions_say_why(tmp_path, content, why):
    path = tmp_path / "a.ipynb"
    path.write_bytes(content)
    with pytest.raises(sanitize.NotGradable, match=why):
        sanitize.read_submission(path)


def test_missing_and_oversized_submissions(tmp_path, monkeypatch):
    with pytest.raises(sanitize.NotGradable, match="missing file"):
        sanitize.read_submission(tmp_path / "none.ipynb")
    path = tmp_path / "big.ipynb"
    nbformat.write(submission(), path)
    monkeypatch.setattr(sanitize, "MAX_BYTES", 100)
    with pytest.raises(sanitize.NotGradable, match="larger than"):
        sanitize.read_submission(path)


PATCHES = {
    "torch.equal = lambda *a: True": "patches torch.equal",
    "import numpy as np\nnp.testing.assert_allclose = print": "patches np.testing",
    "import torch.testing as tt\ntt.assert_close = print": "patches tt.assert_close",
    "setattr(torch, 'equal', print)": "patches torch with setattr",
    "import builtins\nbuiltins.len = lambda x: 0": "imports builtins",
    "import sys\nsys.modules['torch'] = None": "patches sys.modules['torch']",
    "import sys\nsys.modules.update(torch=None)": "patches sys.modules with update",
    "code = 'x' + '=1'\nexec(code)": "runs a built string with exec",
    "eval(input())": "runs a built string with eval",
    "ip = get_ipython()\nip.input_transformers_post.append(str)": "uses get_ipython",
    "__builtins__.print = None": "touches __builtins__",
    "import sys\nsys.settrace(None)": "installs a trace hook",
    "import os\nos.kill(1, 9)": "sends signals",
    "from course_lib.ops import f": "imports the reference f from course_lib.ops",
    "import course_lib\ny = course_lib.ops.f": "uses the reference course_lib.ops.f",
}


@pytest.mark.parametrize("code", sorted(PATCHES))
def test_patching_code_is_flagged(code):
    nb = submission("def f(x):\n    return 2 * x\n" + code)
    flags = scan(nb)
    assert any(PATCHES[code] in flag and flag.endswith("(cell f)") for flag in flags), flags


def test_ordinary_code_is_not_flagged():
    nb = submission("import sys\nimport torch\n\ndef f(x):\n    out = torch.zeros(3)\n"
                    "    out.data[0] = 1\n    if 'google.colab' in sys.modules:\n"
                    "        pass\n    return 2 * x\n%timeit f(1)\n")
    assert scan(nb) == []


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solutions_are_not_flagged(assignment):
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    assert scan(nb) == []


def graded_notebook():
    nb, _ = sanitize.rebuild(submission(), release(), CELLS)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="ok\n")]
    hidden = nb.cells[-1]
    hidden.metadata["nbgrader"].update(score=0.0, points=1.0)
    hidden.outputs = [nbformat.v4.new_output(
        "error", ename="AssertionError", evalue="doubling",
        traceback=["assert f(12345) == 24690, 'doubling'", "AssertionError: doubling"])]
    nb.cells[1].outputs.append(nbformat.v4.new_output(
        "stream", name="stdout", text="In[-1] was: assert f(12345) == 24690, 'doubling'\n"))
    return nb


def test_redact_keeps_the_comment_points_and_verdict_only():
    nb = redact(graded_notebook())
    text = json.dumps(nb)
    assert "12345" not in text and BEGIN not in text and END not in text
    assert nb.cells[-1].source == HIDDEN.splitlines()[0]
    assert nb.cells[-1].outputs[0].text == (
        "Hidden tests test_f_hidden failed: 0.0 / 1.0 points.\n")
    assert "output removed" in nb.cells[1].outputs[-1].text
    assert nb.cells[1].outputs[0].text == "ok\n"


def test_pages_that_leak_are_deleted(tmp_path):
    good, bad = tmp_path / "good.html", tmp_path / "bad.html"
    good.write_text("<p>Hidden tests passed</p>")
    bad.write_text("<span>assert</span> f(12345) <span>==</span> 24690, &#39;doubling&#39;")
    leaks = check_pages([good, bad], {"assert f(12345) == 24690, 'doubling'"})
    assert len(leaks) == 1 and "bad.html" in leaks[0]
    assert good.exists() and not bad.exists()


def test_no_sandbox_means_a_refusal_that_says_what_to_do(monkeypatch, capsys):
    from tools.grading import cli

    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    assert "not installed" in sandbox.bwrap_probe()
    with pytest.raises(sandbox.SandboxUnavailable, match="apt-get install bubblewrap"):
        sandbox.check_available()
    assert cli.main(["autograde", "ex00_tensors"]) == 3
    err = capsys.readouterr().err
    assert "refusing to grade" in err and "UNSANDBOXED=1" in err


def test_broken_bwrap_is_reported(monkeypatch, tmp_path):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: str(fake))
    assert "Permission denied" in sandbox.bwrap_probe()


@pytest.mark.parametrize("content, why", [
    (None, "no executed notebook"), ("{", "not a valid notebook"),
    ("other", "does not hold the cells"), ("huge", "larger than"),
])
def test_what_comes_back_from_the_sandbox_is_checked(tmp_path, content, why):
    sent = submission()
    out = tmp_path / "out"
    out.mkdir()
    limits = sandbox.Limits(notebook_mb=1)
    if content == "other":
        other = submission("def f(x):\n    return 3")
        nbformat.write(other, out / "executed.ipynb")
    elif content == "huge":
        (out / "executed.ipynb").write_text(" " * (2 * sandbox.MiB))
    elif content is not None:
        (out / "executed.ipynb").write_text(content)
    got, reason = sandbox.take_back(sent, out, limits)
    assert got is None and why in reason
    failed = sandbox.failed_notebook(sent, reason)
    assert all(c.outputs[0].ename == "NotGraded" for c in failed.cells if c.cell_type == "code")


def test_the_sandbox_result_keeps_our_metadata(tmp_path):
    sent = submission()
    back = nbformat.from_dict(json.loads(json.dumps(sent)))
    back.cells[2].metadata["nbgrader"]["points"] = 100
    back.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi\n")]
    (tmp_path / "executed.ipynb").write_text(nbformat.writes(back))
    got, reason = sandbox.take_back(sent, tmp_path, sandbox.Limits())
    assert reason == "" and got.cells[2].metadata["nbgrader"]["points"] == 1
    assert got.cells[2].outputs[0].text == "hi\n"


@pytest.mark.parametrize("sandboxed", [True, False])
def test_runner_executes_cells_alone(sandboxed, tmp_path):
    """A tiny notebook through the runner, with and without bwrap (``--unsandboxed``)."""
    if sandboxed and sandbox.bwrap_probe():
        pytest.skip(sandbox.bwrap_probe())
    files = tmp_path / "files"
    files.mkdir()
    (files / "data.txt").write_text("42")
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import os\nprint(open('data.txt').read())"),
        nbformat.v4.new_code_cell("raise ValueError('x')"),
        nbformat.v4.new_code_cell("os._exit(3)"),
        nbformat.v4.new_code_cell(f"print(os.path.exists({str(ROOT / 'solutions')!r}))"),
    ])
    result = sandbox.run(nb, files, timeout=60, sandboxed=sandboxed)
    cells = result.notebook.cells
    assert cells[0].outputs[0].text == "42\n"
    assert cells[1].outputs[0].ename == "ValueError"
    assert cells[2].outputs[0].ename == "CellSkipped"
    assert result.reasons == ["kernel died in cell 2"]
    assert cells[3].outputs[0].text == f"{not sandboxed}\n"
    assert (files / "data.txt").read_text() == "42"


def test_process_limit_stops_a_fork_bomb():
    if sandbox.bwrap_probe():
        pytest.skip(sandbox.bwrap_probe())
    code = ("import os, time\nn = 0\ntry:\n    for _ in range(2000):\n"
            "        if os.fork() == 0:\n            time.sleep(60)\n            os._exit(0)\n"
            "        n += 1\nexcept OSError:\n    pass\nprint(n)")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    result = sandbox.run(nb, None, timeout=60, limits=sandbox.Limits(processes=64))
    forked = int(result.notebook.cells[0].outputs[0].text)
    assert 0 < forked < 64, forked


def test_folders_above_bound_paths_are_traversable():
    """bwrap creates the folders above a mount point as 0700: the unprivileged kernel could
    not reach an environment under /tmp or /root without these."""
    args = sandbox.parents("/tmp/course/.venv")
    assert args == ["--perms", "0755", "--dir", "/tmp/course"]
    assert sandbox.parents("/root/.pyenv/versions/3.11.7") == [
        "--perms", "0755", "--dir", "/root", "--perms", "0755", "--dir", "/root/.pyenv",
        "--perms", "0755", "--dir", "/root/.pyenv/versions"]
    assert sandbox.parents("/usr/lib/x") == []
