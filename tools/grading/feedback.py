"""Feedback pages that never contain hidden tests, by construction and checked afterwards.

``RedactHidden`` runs in nbgrader's ``GenerateFeedback`` pipeline after ``GetGrades``: a
hidden-test cell keeps only its first line (the comment saying what the grader checks) and
one output: its name, "passed" or "failed", and its points; its own outputs and tracebacks are dropped.
Any other output, or line of student code, that quotes a hidden-test line is replaced too.
``check_pages`` then reads every written page as text (HTML tags and entities undone) and
deletes a page that still holds a hidden-test line, so a leak fails loudly, never silently.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor

from tools.grading.cells import BEGIN, END, hidden_lines, is_hidden

REMOVED = "[output removed: it quoted a hidden test]\n"
TAG = re.compile(r"<[^>]*>")


def squash(text: str) -> str:
    return " ".join(text.split())


def output_text(out) -> str:
    parts = [str(out.get("text", "")), str(out.get("evalue", "")),
             "\n".join(map(str, out.get("traceback", [])))]
    parts += [str(v) for v in out.get("data", {}).values()]
    return squash("\n".join(parts))


def secret_lines(cells) -> set[str]:
    """The hidden-test lines of ``cells`` that no visible cell also holds (a shared line
    such as ``except ValueError:`` reveals nothing), plus the block markers."""
    hidden = {squash(s) for c in cells if is_hidden(c) for s in hidden_lines(c.source)}
    public = {squash(ln) for c in cells if not is_hidden(c) for ln in c.source.splitlines()}
    return (hidden - public) | {BEGIN, END}


def hidden_outcome(cell) -> nbformat.NotebookNode:
    meta = cell.metadata.get("nbgrader", {})
    score, points = meta.get("score"), meta.get("points")
    if score is None:
        verdict = "not graded"
    else:
        verdict = "passed" if points and score >= points else "failed"
    name = meta.get("grade_id", "hidden tests")
    return nbformat.v4.new_output("stream", name="stdout", text=(
        f"Hidden tests {name} {verdict}: {score if score is not None else '-'} / {points} "
        "points.\n"))


def redact(nb) -> nbformat.NotebookNode:
    """Remove every hidden-test source, output and traceback from ``nb`` (in place)."""
    secrets = secret_lines(nb.cells)
    quotes = lambda text: any(s in text for s in secrets)
    for cell in nb.cells:
        if is_hidden(cell):
            first = cell.source.splitlines()[0] if cell.source.strip() else ""
            cell.source = first if first.startswith("# ") and not quotes(first) else (
                "# Hidden tests (run by the grader).")
            cell.outputs = [hidden_outcome(cell)]
            continue
        if any(quotes(squash(line)) for line in cell.source.splitlines()):
            cell.source = "\n".join("# [line removed: it repeats a hidden test]"
                                    if quotes(squash(line)) else line
                                    for line in cell.source.splitlines())
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text=REMOVED)
                            if quotes(output_text(out)) else out for out in cell.outputs]
    return nb


class RedactHidden(NbGraderPreprocessor):
    """nbgrader preprocessor form of ``redact`` (for ``GenerateFeedback``)."""

    def preprocess(self, nb, resources):
        return redact(nb), resources


def page_text(path: Path) -> str:
    return squash(html.unescape(TAG.sub(" ", path.read_text(errors="replace"))))


def check_pages(pages: list[Path], secrets: set[str]) -> list[str]:
    """Delete every page that holds a hidden-test line; return what was found where."""
    leaks = []
    for page in pages:
        text = page_text(page)
        found = sorted(s for s in secrets if squash(s) in text)
        if found:
            page.unlink()
            leaks.append(f"{page}: {found[0]!r}")
    return leaks


def assignment_secrets(source_notebooks: list[Path]) -> set[str]:
    """Every hidden-test line of an assignment's source notebooks."""
    secrets = set()
    for path in source_notebooks:
        secrets |= secret_lines(nbformat.read(path, as_version=4).cells)
    return secrets
