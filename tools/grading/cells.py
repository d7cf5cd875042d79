"""What the grading tools know about nbgrader cells: hidden-test cells and nbgrader's keys.

Convention: hidden tests live in their own graded, locked cell whose ``grade_id`` ends in
``_hidden``; its source is one comment line saying what the grader checks, then the
``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` block and nothing else. A release
keeps only the comment line; the grader restores the block from the gradebook.
"""

from __future__ import annotations

BEGIN, END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
HIDDEN_SUFFIX = "_hidden"
# nbgrader's own cell metadata; Colab and JupyterLab add other keys, which are not ours.
NBGRADER_KEYS = ("grade", "solution", "locked", "grade_id", "points", "checksum")


def nbgrader_meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def grade_id(cell) -> str | None:
    gid = nbgrader_meta(cell).get("grade_id")
    return gid if isinstance(gid, str) else None


def is_hidden(cell) -> bool:
    """A hidden-test cell, by its name or by its content."""
    return (grade_id(cell) or "").endswith(HIDDEN_SUFFIX) or BEGIN in cell.get("source", "")


def is_test(cell) -> bool:
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution")


def hidden_lines(source: str, min_length: int = 12) -> list[str]:
    """The distinctive lines of a hidden block: what must never appear in feedback."""
    if BEGIN not in source:
        return []
    block = source.split(BEGIN, 1)[1].split(END, 1)[0]
    return [ln.strip() for ln in block.splitlines() if len(ln.strip()) >= min_length]


def convention_errors(cell) -> list[str]:
    """Why a cell breaks the hidden-test convention (empty when it follows it)."""
    meta, gid, src = nbgrader_meta(cell), grade_id(cell) or "?", cell.get("source", "")
    if not is_hidden(cell):
        return []
    errors = []
    if not (meta.get("grade") and meta.get("locked") and not meta.get("solution")):
        errors.append(f"{gid}: a hidden-test cell must be graded, locked and not a solution")
    if not gid.endswith(HIDDEN_SUFFIX):
        errors.append(f"{gid}: holds hidden tests, its grade_id must end in '{HIDDEN_SUFFIX}' "
                      "(move the hidden block into a cell of its own)")
    if not meta.get("points", 0) > 0:
        errors.append(f"{gid}: a hidden-test cell needs its own points")
    lines = src.strip().splitlines()
    if (len(lines) < 3 or not lines[0].startswith("# ") or lines[1] != BEGIN
            or lines[-1] != END or src.count(BEGIN) != 1):
        errors.append(f"{gid}: the source must be one comment line, then {BEGIN} ... {END} "
                      "and nothing else")
    return errors
