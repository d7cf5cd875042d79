"""Write every notebook's "Open in Colab" badge and Colab install cell from one setting.

The GitHub repository and branch live in ``pyproject.toml``::

    [tool.course]
    repository = "<owner>/<name>"
    branch = "main"

The install cell runs before ``course_lib`` exists, so it cannot read that setting: this
command writes it into each notebook. Usage::

    python -m tools.colab                 # lectures/ and solutions/ (then: make exercises)
    python -m tools.colab lectures/05_context_before_fcn.ipynb solutions/
    python -m tools.colab --check         # list what would change, exit 1 if anything would
    python -m tools.colab --root /tmp/copy /tmp/copy/lectures   # a copy outside the repository

``make colab`` runs it on everything and regenerates ``exercises/``. A badge opens the
notebook's own path (``https://colab.research.google.com/github/<repository>/blob/<branch>/
<path>``); a solution's badge opens the exercise generated from it (nbgrader copies the cell
verbatim into ``exercises/``, and students open the exercise). ``exercises/`` is never
rewritten here: it is generated from ``solutions/``.

Where they go: the badge is a line of the first markdown cell, right under its title; the
install cell is the first code cell (it must run before anything imports ``course_lib``).
A notebook that has neither gets both; an existing badge or install cell (any repository) is
replaced in place, and everything else, cell metadata included, is left as it is.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TARGETS = ("lectures", "solutions")

BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
COLAB_URL = "https://colab.research.google.com/github/{repository}/blob/{branch}/{path}"
BADGE = f"[![Open In Colab]({BADGE_IMAGE})]({COLAB_URL})"
# Any badge, whichever repository, branch or path it names.
BADGE_RE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\(https://colab\.research\.google\.com"
                      r"/github/[^)]*\)")

INSTALL_CELL = '''\
# On Google Colab only: install the course from GitHub (this cell is written by `make colab`).
import sys

try:
    import course_lib  # noqa: F401
except ImportError:
    if "google.colab" not in sys.modules:
        raise ImportError(
            "course_lib is not installed: run `pip install -e .` in the repository root"
        ) from None
    import subprocess

    repo = "git+https://github.com/{repository}@{branch}"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", repo], check=True)'''


def settings(root: Path = ROOT) -> dict[str, str]:
    """``{"repository": "<owner>/<name>", "branch": ...}`` from ``[tool.course]``."""
    course = tomllib.loads((root / "pyproject.toml").read_text()).get("tool", {}).get("course")
    if not course or "repository" not in course:
        raise KeyError("pyproject.toml has no [tool.course] repository = \"<owner>/<name>\"")
    repository, branch = course["repository"], course.get("branch", "main")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*/[A-Za-z0-9_.-]+", repository):
        raise ValueError(f"[tool.course] repository must be '<owner>/<name>', got {repository!r}")
    if not re.fullmatch(r"[A-Za-z0-9._/-]+", branch):
        raise ValueError(f"[tool.course] branch {branch!r} is not a branch name")
    return {"repository": repository, "branch": branch}


def colab_path(rel: str) -> str:
    """The repository path a notebook's badge opens: its own, or for a solution the exercise
    that nbgrader generates from it."""
    parts = rel.split("/")
    if parts[0] == "solutions":
        return "/".join(["exercises", *parts[1:]])
    return rel


def badge(rel: str, config: dict[str, str]) -> str:
    """The badge markdown for the notebook at repository path ``rel``."""
    return BADGE.format(path=colab_path(rel), **config)


def install_source(config: dict[str, str]) -> str:
    """The source of the Colab install cell."""
    return INSTALL_CELL.format(**config)


def is_install_cell(cell) -> bool:
    """A code cell that installs the course on Colab (this template, any repository)."""
    return (cell.cell_type == "code" and "google.colab" in cell.source
            and "pip" in cell.source and "course_lib" in cell.source)


def _with_badge(source: str, line: str) -> str:
    if BADGE_RE.search(source):
        return BADGE_RE.sub(lambda _: line, source, count=1)
    lines = source.split("\n")
    at = 1 if lines and lines[0].startswith("#") else 0  # under the title
    return "\n".join([*lines[:at], "", line, *([""] if lines[at:] and lines[at] else []),
                      *lines[at:]]).lstrip("\n")


def rewrite(nb, rel: str, config: dict[str, str]) -> bool:
    """Write the badge and the install cell into ``nb`` (in place); True if it changed."""
    before = [(c.cell_type, c.source) for c in nb.cells]
    markdown = [c for c in nb.cells if c.cell_type == "markdown"]
    if not markdown:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(""))
        markdown = nb.cells[:1]
    first_md = markdown[0]
    first_md.source = _with_badge(first_md.source, badge(rel, config))
    for cell in nb.cells:  # a badge anywhere else names the same notebook
        if cell is not first_md and cell.cell_type == "markdown":
            cell.source = BADGE_RE.sub(lambda _: badge(rel, config), cell.source)
    source = install_source(config)
    install = [c for c in nb.cells if is_install_cell(c)]
    if install:
        install[0].source = source
        cell = install[0]
    else:
        cell = nbformat.v4.new_code_cell(source)
        if nb.nbformat_minor < 5 or any("id" not in c for c in nb.cells):
            cell.pop("id", None)  # cell ids exist from nbformat 4.5 on
        nb.cells.insert(nb.cells.index(first_md) + 1, cell)
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    if first_code is not cell:  # it must run first: move it before the first code cell
        nb.cells.remove(cell)
        nb.cells.insert(nb.cells.index(first_code), cell)
    return before != [(c.cell_type, c.source) for c in nb.cells]


def problems(nb, rel: str, config: dict[str, str]) -> list[str]:
    """What is wrong with a notebook's badge and install cell (empty: all is well)."""
    found = []
    want = badge(rel, config)
    markdown = [c for c in nb.cells if c.cell_type == "markdown"]
    badges = [m.group(0) for c in markdown for m in BADGE_RE.finditer(c.source)]
    if not markdown or want not in markdown[0].source:
        found.append(f"the first markdown cell lacks the badge {want}")
    wrong = sorted({b for b in badges if b != want})
    if wrong:
        found.append(f"badges naming another repository, branch or path: {wrong}")
    code = [c for c in nb.cells if c.cell_type == "code"]
    if not code or code[0].source != install_source(config):
        found.append("the first code cell is not the Colab install cell of tools/colab.py "
                     f"for {config['repository']}@{config['branch']}")
    if sum(is_install_cell(c) for c in code) > 1:
        found.append("more than one install cell")
    return found


def notebooks(targets, root: Path = ROOT) -> list[Path]:
    """The notebooks named by ``targets`` (files or folders, searched recursively)."""
    found = []
    for target in targets:
        path = Path(target)
        path = path if path.is_absolute() else Path.cwd() / path
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.ipynb")
                            if ".ipynb_checkpoints" not in p.parts
                            and not p.name.endswith(".out.ipynb"))
        elif path.suffix == ".ipynb" and path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"{target}: not a notebook or a folder")
    return found


def relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise ValueError(f"{path} is not under {root}: pass --root, the folder that plays the "
                         "repository root (e.g. the parent of a copied lectures/)") from None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.colab",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*",
                        help=f"notebooks or folders (default: {', '.join(DEFAULT_TARGETS)})")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the folder badge paths are relative to (default: the repository)")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; list the notebooks that would change, exit 1")
    args = parser.parse_args(argv)
    config = settings()
    targets = args.paths or [str(args.root / t) for t in DEFAULT_TARGETS]
    changed = []
    for path in notebooks(targets):
        rel = relative(path, args.root)
        if rel.split("/")[0] == "exercises":
            print(f"skipped {rel}: exercises/ is generated from solutions/ (make exercises)",
                  file=sys.stderr)
            continue
        nb = nbformat.read(path, as_version=4)
        if rewrite(nb, rel, config):
            changed.append(rel)
            if not args.check:
                nbformat.validate(nb)
                nbformat.write(nb, path)
    verb = "would change" if args.check else "rewrote"
    for rel in changed:
        print(f"{verb} {rel}")
    print(f"{len(changed)} notebook(s) {verb} for {config['repository']}@{config['branch']}")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    raise SystemExit(main())
