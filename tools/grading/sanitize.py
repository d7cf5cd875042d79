"""Read a submission as untrusted data and rebuild it on the release's skeleton.

Run by the grading process before nbgrader sees anything. A file that is empty, too large,
not JSON or not a notebook raises ``NotGradable`` with the reason. Otherwise every cell that
nbgrader knows (by ``grade_id``) takes its place, type and nbgrader metadata from the release;
locked cells (tests, hidden tests, read-only text) take their source from the gradebook, so
hidden tests are restored and nbgrader's checksums stay quiet for untouched cells; solution
cells keep the student's source; cells the student added stay where they were. What differs
from the release is returned as flags: a deleted, edited or re-typed locked cell, changed
nbgrader metadata (only nbgrader's keys: Colab's and JupyterLab's are not ours), duplicated
or unknown nbgrader cells.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import nbformat

from tools.grading.cells import NBGRADER_KEYS, grade_id, nbgrader_meta

MAX_BYTES = 20 * 1024 * 1024


class NotGradable(ValueError):
    """The submission cannot be read as a notebook; the message says why."""


def read_submission(path: Path) -> nbformat.NotebookNode:
    if not path.is_file():
        raise NotGradable("missing file")
    size = path.stat().st_size
    if size == 0:
        raise NotGradable("empty file")
    if size > MAX_BYTES:
        raise NotGradable(f"file larger than {MAX_BYTES // 2**20} MB")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise NotGradable("not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise NotGradable("not a notebook (no list of cells)")
    if data.get("nbformat") != 4:
        raise NotGradable(f"not a notebook of format 4 (nbformat: {data.get('nbformat')!r})")
    for cell in data["cells"]:
        source = cell.get("source") if isinstance(cell, dict) else None
        if (not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw")
                or not (isinstance(source, str) or (isinstance(source, list)
                                                    and all(isinstance(x, str) for x in source)))):
            raise NotGradable("not a notebook (a cell without a type or a source)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # missing cell ids and the like: not a reason
            nb = nbformat.reads(json.dumps(data), as_version=4)
    except Exception as exc:  # noqa: BLE001 - any malformed notebook is one reason
        raise NotGradable(f"not a notebook ({type(exc).__name__})") from None
    return nb


def free_cell(cell) -> nbformat.NotebookNode:
    """A cell the student added, kept without any nbgrader metadata."""
    if cell.cell_type == "code":
        return nbformat.v4.new_code_cell(cell.source)
    if cell.cell_type == "markdown":
        return nbformat.v4.new_markdown_cell(cell.source)
    return nbformat.v4.new_raw_cell(cell.source)


def compare(gid: str, ref, got) -> list[str]:
    flags = []
    ref_meta, got_meta = nbgrader_meta(ref), nbgrader_meta(got)
    changed = [k for k in NBGRADER_KEYS if ref_meta.get(k) != got_meta.get(k)]
    if changed:
        flags.append(f"changed metadata of {gid} ({', '.join(changed)})")
    if got.cell_type != ref.cell_type:
        flags.append(f"changed the type of {gid}")
    elif ref_meta.get("locked") and got.source != ref.source:
        flags.append(f"edited {gid}")
    return flags


def rebuild(sub, release, source_cells: dict) -> tuple[nbformat.NotebookNode, list[str]]:
    """(the notebook to grade, tamper flags). ``source_cells``: grade_id -> gradebook cell
    (``source``, ``checksum``)."""
    known = {grade_id(c) for c in release.cells if grade_id(c)}
    got, added, flags, prev = {}, {None: []}, [], None
    for cell in sub.cells:
        gid = grade_id(cell)
        if gid in known and gid not in got:
            got[gid], prev = cell, gid
            added.setdefault(gid, [])
            continue
        if gid in known:
            flags.append(f"duplicated {gid}")
        elif nbgrader_meta(cell):
            flags.append(f"unknown nbgrader cell {gid or '(no grade_id)'}")
        added.setdefault(prev, []).append(free_cell(cell))
    cells = list(added[None])
    for ref in release.cells:
        gid = grade_id(ref)
        if gid is None:
            continue  # unmarked release cells (the install cell) are the student's to keep
        new = copy.deepcopy(ref)
        meta = nbgrader_meta(new)
        if gid in got:
            flags += compare(gid, ref, got[gid])
            if not meta.get("locked"):
                new.source = got[gid].source
        elif meta.get("locked"):
            flags.append(f"deleted {gid}")
        if meta.get("locked") and gid in source_cells:
            new.source = source_cells[gid].source
            meta["checksum"] = source_cells[gid].checksum
        if new.cell_type == "code":
            new.outputs, new.execution_count = [], None
        cells.append(new)
        cells += added.get(gid, [])
    for cell in cells:
        cell.pop("id", None)
    nb = nbformat.from_dict({"cells": cells, "metadata": copy.deepcopy(release.metadata),
                             "nbformat": 4, "nbformat_minor": 4})
    return nb, flags
