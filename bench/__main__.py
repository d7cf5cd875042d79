"""Print the performance report.

Sections:
- notebooks: wall time and peak memory of every lecture in QUICK mode, as recorded by the
  last `make test` (tests/test_notebooks.py writes build/notebooks.json);
- data: ShapesDataset throughput on one core (target: >= 2,000 samples/s at 64x64).

Later sections register themselves by adding a ``bench_*.py`` module with a ``run()`` that
returns ``(title, header, rows)``.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def table(title: str, header: list[str], rows: list[list]) -> str:
    cells = [header] + [[f"{v:.2f}" if isinstance(v, float) else str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "  ".join(v.rjust(w) if i else v.ljust(w)
                               for i, (v, w) in enumerate(zip(r, widths)))
    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    return "\n".join([f"\n{title}", rule, line(cells[0]), rule, *map(line, cells[1:]), rule])


def notebooks():
    report = ROOT / "build" / "notebooks.json"
    header = ["notebook", "seconds", "peak RSS (MB)", "cells"]
    if not report.exists():
        return "notebooks (QUICK=True)", header, [["(no report: run `make test` first)", "", "",
                                                    ""]]
    data = json.loads(report.read_text())
    rows = [[name, e["seconds"], e.get("peak_rss_mb") or "?", e["cells"]]
            for name, e in sorted(data.items())]
    rows.append(["total", round(sum(e["seconds"] for e in data.values()), 1), "", ""])
    return "notebooks (QUICK=True, from the last `make test`)", header, rows


def data_throughput():
    import torch

    from course_lib.datasets import ShapesDataset

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the target is per core; restored for the sections after
    rows = []
    for size, target in ((64, "semantic"), (64, "instance"), (128, "semantic")):
        ds = ShapesDataset("train", length=4000, image_size=size, target=target)
        ds[0]
        n = 2000 if size == 64 else 500
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(n):
            ds[i]
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        # One thread: CPU seconds are seconds of one core, whatever else the machine runs.
        rate = n / cpu
        ok = "yes" if size != 64 or rate >= 2000 else "NO"
        rows.append([f"{size}x{size} {target}", round(rate), round(n / wall),
                     "2000" if size == 64 else "-", ok])
    torch.set_num_threads(threads)
    header = ["config", "samples per CPU-second", "samples/s (wall)", "target", "met"]
    return "ShapesDataset throughput (one thread)", header, rows


def main() -> int:
    sections = [notebooks, data_throughput]
    for mod in sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])):
        if mod.startswith("bench_"):
            sections.append(importlib.import_module(f"bench.{mod}").run)
    for section in sections:
        print(table(*section()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
