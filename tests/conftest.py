"""Shared pytest fixtures and paths. Test files are discovered, so later work only adds
notebooks (lectures/, solutions/) and modules (course_lib/) and their tests run."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
LECTURES = sorted((ROOT / "lectures").glob("*.ipynb"))
ASSIGNMENTS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())
ALL_NOTEBOOKS = sorted(
    [*LECTURES, *(ROOT / "solutions").glob("*/*.ipynb"), *(ROOT / "exercises").glob("*/*.ipynb")]
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def rel(path: Path) -> str:
    """Path relative to the repository (or as given, for a file outside it)."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)
