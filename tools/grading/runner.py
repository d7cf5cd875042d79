"""Execute one notebook cell by cell: the program that runs *inside* the grading sandbox.

``python runner.py IN.ipynb OUT_DIR TIMEOUT MAX_OUTPUT_BYTES [KERNEL_UID]``

It reads the notebook, runs every code cell in a Jupyter kernel (``jupyter_client`` and
``nbclient``, the libraries nbgrader itself uses) with a per-cell timeout, and writes
``OUT_DIR/executed.ipynb`` and ``OUT_DIR/report.json`` (what went wrong, per cell). A cell that
times out or kills its kernel is recorded with an error, the kernel is replaced, and the
notebook is run again from the top without that cell (at most ``MAX_RESTARTS`` times), so one
endless loop (even one that ignores SIGINT) or one ``os._exit`` costs only its own cell. Each
cell's outputs are cut to ``MAX_OUTPUT_BYTES`` bytes.

When ``KERNEL_UID`` is given (grading as root), the kernel runs as that unprivileged user
(``setpriv``) while this program keeps the notebook file, its output folder and the connection
file to itself: student code can neither read the hidden tests ahead of time nor forge the
result. This file imports nothing from the course: only the standard library, ``nbformat``
and ``nbclient``, because the sandbox sees nothing else.

References: nbclient's ``NotebookClient`` (https://nbclient.readthedocs.io), util-linux
``setpriv(1)``.
"""

from __future__ import annotations

import json
import os
import sys

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

MAX_RESTARTS = 3


def error_output(ename: str, message: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_output("error", ename=ename, evalue=message,
                                  traceback=[f"{ename}: {message}"])


def limit_outputs(cell, max_bytes: int) -> None:
    """Cut the cell's outputs to ``max_bytes`` bytes in all (text kept from the start)."""
    budget, kept = max_bytes, []
    for out in cell.get("outputs", []):
        size = len(json.dumps(out))
        if size <= budget:
            kept.append(out)
            budget -= size
            continue
        kept.append(nbformat.v4.new_output(
            "stream", name="stderr",
            text=f"[output cut: this cell printed more than {max_bytes} bytes]\n"))
        if out.get("output_type") == "error":
            kept.append(error_output(out.get("ename", "Error"), "(traceback cut: too long)"))
        break
    cell.outputs = kept


def kernel_manager_class(kernel_uid: int | None):
    """A kernel manager whose connection file the unprivileged kernel can read (this
    process keeps no right to read files it does not own, so it stays the owner)."""
    if kernel_uid is None:
        return AsyncKernelManager

    class DroppedKernelManager(AsyncKernelManager):
        def write_connection_file(self, **kwargs):
            super().write_connection_file(**kwargs)
            os.chmod(self.connection_file, 0o644)  # the kernel knows its key anyway

    return DroppedKernelManager


def run_once(nb, skipped: dict, timeout: int, max_bytes: int, kernel_uid, workdir):
    """Run the notebook once; return (index, reason) of the cell that broke it, or None."""
    client = NotebookClient(nb, timeout=timeout, kernel_name="grading", allow_errors=True,
                            interrupt_on_timeout=False, record_timing=False,
                            kernel_manager_class=kernel_manager_class(kernel_uid),
                            resources={"metadata": {"path": workdir}})
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if index in skipped:
                cell.outputs = [error_output("CellSkipped", skipped[index])]
                continue
            try:
                client.execute_cell(cell, index)
            except CellTimeoutError:
                return index, f"timeout: the cell ran longer than {timeout} s and was stopped"
            except DeadKernelError:
                return index, "kernel died: the cell ended the Python process"
            finally:
                limit_outputs(cell, max_bytes)
    return None


def execute(nb, timeout: int, max_bytes: int, kernel_uid, workdir) -> dict:
    skipped: dict[int, str] = {}
    for _ in range(MAX_RESTARTS + 1):
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        broken = run_once(nb, skipped, timeout, max_bytes, kernel_uid, workdir)
        if broken is None:
            return skipped
        index, reason = broken
        skipped[index] = reason
        nb.cells[index].outputs = [error_output("CellSkipped", reason)]
    for index, cell in enumerate(nb.cells):  # too many broken cells: the rest is not run
        if cell.cell_type == "code" and not cell.outputs:
            cell.outputs = [error_output("NotRun", "not run: too many cells broke the kernel")]
    return skipped


def main(argv: list[str]) -> int:
    src, out_dir, timeout, max_bytes = argv[0], argv[1], int(argv[2]), int(argv[3])
    kernel_uid = int(argv[4]) if len(argv) > 4 else None
    nb = nbformat.read(src, as_version=4)
    workdir = os.getcwd()
    skipped = execute(nb, timeout, max_bytes, kernel_uid, workdir)
    tmp = os.path.join(out_dir, "executed.ipynb.part")
    nbformat.write(nb, tmp)
    os.replace(tmp, os.path.join(out_dir, "executed.ipynb"))
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump({"cells": {str(k): v for k, v in skipped.items()}}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
