"""Repository hygiene: clean notebooks, lint, the README's promises, dependency lists agree."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import ALL_NOTEBOOKS, LECTURES, ROOT, rel

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=rel)
def test_notebook_committed_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"{rel(path)}: cells {dirty} have outputs or execution counts; strip them"


@pytest.mark.parametrize("path", LECTURES, ids=rel)
def test_lecture_has_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{rel(path)}: needs exactly one cell tagged 'parameters'"
    src = cells[0].source
    for name in ("QUICK", "SEED"):
        assert re.search(rf"^{name}\s*=", src, re.M), f"{rel(path)}: parameters lack {name}"
    # papermill injects its values in a cell *after* this one: a value computed here from
    # another parameter (`N = 8 if QUICK else 64`) would silently ignore `-p QUICK False`.
    tree = ast.parse(src)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            used = {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)}
            assert not used, (f"{rel(path)}: the parameters cell computes "
                              f"{ast.unparse(node.targets[0])} from {sorted(used)}; set it to "
                              "a literal (or None) and derive it in the next cell")


def test_lectures_are_numbered():
    names = [p.name for p in LECTURES]
    assert names, "no lectures found"
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", n) for n in names), names


def test_ruff_passes():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _names(requirements) -> dict[str, str]:
    out = {}
    for req in requirements:
        name = re.split(r"[<>=!~;\[ ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")
        out[name] = req.strip()
    return out


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _extra(project, name) -> dict[str, str]:
    """The packages of an extra, the extras it pulls in (`course-lib[lab]`) expanded."""
    own = project["name"].lower().replace("_", "-")
    out = {}
    for req in project["optional-dependencies"][name]:
        (key, value), = _names([req]).items()
        if key == own:
            for extra in re.search(r"\[([^\]]+)\]", req).group(1).split(","):
                out.update(_extra(project, extra.strip()))
        else:
            out[key] = value
    return out


def _all_packages(project) -> dict[str, str]:
    """Runtime + every extra: what `make setup` (`.[dev]`) installs."""
    return {**_names(project["dependencies"]), **_extra(project, "dev")}


# What Google Colab ships (2026) and the install cell must not replace, and the Jupyter stack
# that belongs in the `lab` extra, never in the runtime set.
COLAB_PROVIDES = {"torch", "torchvision", "numpy", "scipy", "matplotlib", "scikit-image",
                  "sympy", "tqdm", "ipython", "ipywidgets"}
LAB = {"jupyterlab", "ipykernel", "nbgrader"}


def _imported_top_level_modules() -> set[str]:
    """Top-level modules imported by course_lib and by the code cells of every notebook."""
    sources = [p.read_text() for p in _course_lib_files()]
    for path in ALL_NOTEBOOKS:
        sources += [c.source for c in nbformat.read(path, as_version=4).cells
                    if c.cell_type == "code"]
    found = set()
    for src in sources:
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names)


# import name -> distribution; only the ones that differ
DISTRIBUTIONS = {"skimage": "scikit-image", "IPython": "ipython", "PIL": "pillow"}
# imported only by hidden tests of solutions/ (run by the grader, in the dev environment)
GRADER_ONLY = {"torchmetrics"}


def test_runtime_dependencies_are_what_the_notebooks_import():
    project = _project()
    runtime = set(_names(project["dependencies"]))
    imported = {DISTRIBUTIONS.get(m, m).lower() for m in _imported_top_level_modules()}
    imported -= {"course-lib", "course_lib", *GRADER_ONLY}
    assert runtime == imported, (f"runtime dependencies {sorted(runtime)} differ from what "
                                 f"course_lib and the notebooks import {sorted(imported)}")
    assert runtime <= COLAB_PROVIDES, "a runtime dependency Colab does not ship"
    assert not runtime & LAB, "JupyterLab, ipykernel, nbgrader go in the `lab` extra"
    assert set(_extra(project, "lab")) == LAB
    assert LAB <= set(_extra(project, "dev")), "`dev` must include `lab`"
    reqs = _names(project["dependencies"])
    # ipywidgets 7.7 (Colab's) must satisfy the bound: the explorers support 7.7 and 8.x
    assert reqs["ipywidgets"].replace(" ", "") == "ipywidgets>=7.7,<9"
    assert reqs["ipython"].replace(" ", "") == "ipython>=7.34"


def test_environment_yml_matches_pyproject():
    wanted = _all_packages(_project())
    text = (ROOT / "environment.yml").read_text()
    pip_section = text.split("- pip:", 1)[1].splitlines()
    pip_reqs = [ln.strip()[2:] for ln in pip_section
                if ln.strip().startswith("- ") and not ln.strip().startswith("- -e")]
    assert "- -e ." in text, "environment.yml must install course_lib itself"
    assert _names(pip_reqs) == wanted, "environment.yml and pyproject.toml list different packages"


def test_constraints_pin_every_dependency():
    wanted = _all_packages(_project())
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    missing = sorted(set(wanted) - set(pins))
    assert not missing, f"constraints.txt does not pin {missing}: run `make constraints`"
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    assert pins["jupyterlab"].startswith("4.") and pins["nbgrader"].startswith("0.9.")


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_grading_folder_is_ignored_and_config_stays_in_repo():
    ignored = (ROOT / ".gitignore").read_text().split()
    # `/grading/`: the course's state, not the `tools/grading` package
    assert "/grading/" in ignored and "build/" in ignored
    from traitlets.config import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    course = config.CourseDirectory
    assert course.source_directory == "solutions" and course.release_directory == "exercises"
    assert Path(course.root) == ROOT
    assert str(config.Exchange.root).startswith(str(ROOT / "grading"))
    assert config.Execute.timeout > 0
    for key in ("submitted_directory", "autograded_directory", "feedback_directory"):
        assert course[key].startswith("grading"), key


def test_make_clean_keeps_grading_state():
    """`make clean` must never delete submissions, the gradebook or feedback."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nclean:", 1)[1].split("\n\n", 1)[0]
    assert "rm -rf build" in recipe and "grading" not in recipe.split("\n", 1)[1], recipe


def test_every_assignment_has_a_generated_exercise():
    solutions = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())
    exercises = sorted(p.name for p in (ROOT / "exercises").iterdir() if p.is_dir())
    assert solutions and solutions == exercises, "run `make exercises`"


def test_readme_links_point_to_files():
    text = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(((?!https?:|#)[^)]+)\)", text)
    assert links, "README links no lecture"
    missing = [link for link in links if not (ROOT / link).exists()]
    assert not missing, f"README links to missing files: {missing}"


# --- Relative paths named in the documentation exist -------------------------------------
#
# Scanned: README.md, CONTRIBUTING.md, every markdown cell of lectures/, solutions/ and
# exercises/, and every docstring (module, class, function) of course_lib, read with `ast`.
# Two kinds of path are checked:
# - markdown links `[text](target)` (and images) whose target is not a URL or an anchor;
#   the target is relative to the file that holds it (the notebook's folder, the repository
#   root for the top-level markdown files and for docstrings), any `#anchor` dropped;
# - backticked words (`x` or ``x``, no blank inside) that look like repository paths: they
#   start with one of REPO_DIRS, or hold a slash and end in one of PATH_SUFFIXES; they are
#   relative to the repository root.
# Placeholders (`solutions/<assignment>/<assignment>.ipynb`, `lectures/*.ipynb`) are skipped:
# any path holding `<`, `*` or `{`. Paths of other projects, cited in references, are listed
# in EXTERNAL_PATHS.

REPO_DIRS = ("lectures/", "solutions/", "exercises/", "course_lib/", "data/", "tests/",
             "tools/", "bench/", "docs/")
PATH_SUFFIXES = (".ipynb", ".py", ".md", ".json")
EXTERNAL_PATHS = {"python/caffe/coord_map.py"}  # Caffe's file, cited by receptive_field.align
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*([^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
_BACKTICKED = re.compile(r"`+([^`\s]+?)`+")


def _course_lib_files() -> list[Path]:
    return sorted((ROOT / "course_lib").rglob("*.py"))


def _docstrings(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc:
                yield getattr(node, "lineno", 1), doc


def _documents():
    """(where, text, folder that its links are relative to) for every scanned text."""
    for name in ("README.md", "CONTRIBUTING.md"):
        yield name, (ROOT / name).read_text(), ROOT
    for path in ALL_NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "markdown":
                yield f"{rel(path)} cell {i}", cell.source, path.parent
    for path in _course_lib_files():
        for line, doc in _docstrings(path):
            yield f"{rel(path)}:{line}", doc, ROOT


def _is_placeholder(path: str) -> bool:
    return any(ch in path for ch in "<*{")


def _looks_like_repo_path(word: str) -> bool:
    word = word.rstrip(".,:;")
    if "://" in word or _is_placeholder(word) or word in EXTERNAL_PATHS:
        return False
    return word.startswith(REPO_DIRS) or ("/" in word and word.endswith(PATH_SUFFIXES))


def _missing_paths() -> list[str]:
    missing = []
    for where, text, base in _documents():
        for target in _LINK.findall(text):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a URL (https:, mailto:, ...) or an anchor in the same page
            target = target.split("#", 1)[0]
            if target and not _is_placeholder(target) and not (base / target).exists():
                missing.append(f"{where}: link ({target})")
        for word in _BACKTICKED.findall(text):
            if _looks_like_repo_path(word) and not (ROOT / word.rstrip(".,:;")).exists():
                missing.append(f"{where}: `{word}`")
    return missing


def test_path_scanner_recognises_paths():
    assert _looks_like_repo_path("lectures/00_setup.ipynb")
    assert _looks_like_repo_path("data/checkpoints/MANIFEST.json")
    assert _looks_like_repo_path("some/where/else.md")
    assert not _looks_like_repo_path("solutions/<assignment>/<assignment>.ipynb")
    assert not _looks_like_repo_path("lectures/*.ipynb")
    assert not _looks_like_repo_path("s/2") and not _looks_like_repo_path("setup.py")
    assert not _looks_like_repo_path("https://example.org/a.md")
    assert _LINK.findall('see [the map](README.md#the-course "title") and ![x](a/b.png)') == [
        "README.md#the-course", "a/b.png"]
    assert _BACKTICKED.findall("`a/b.py` and ``c/d.md``, `not a path`") == ["a/b.py", "c/d.md"]


def test_relative_paths_in_docs_exist():
    missing = _missing_paths()
    assert not missing, "paths named in the documentation do not exist:\n" + "\n".join(missing)


# --- Nothing points to files that students and contributors do not have ------------------

FORBIDDEN = ("sha" + "red/", "DESIGN" + ".md", "../" + "sha" + "red")
TEXT_SUFFIXES = (".md", ".py", ".ipynb", ".toml", ".yml", ".yaml")


def _repo_text_files() -> list[Path]:
    """Tracked files, and new files git does not ignore, that are text the project ships."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    paths = [ROOT / line for line in out.splitlines()]
    return sorted(p for p in paths if p.is_file()
                  and (p.suffix in TEXT_SUFFIXES or p.name == "Makefile"))


def test_no_mention_of_internal_design_files():
    hits = []
    for path in _repo_text_files():
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            hits += [f"{rel(path)}:{n}: {word!r}" for word in FORBIDDEN if word in line]
    assert not hits, ("these files point to files the repository does not have (write what "
                      "is needed into CONTRIBUTING.md or the notebook itself):\n"
                      + "\n".join(hits))


# --- course_lib's imports: no cycle, no private name taken from another module -----------

def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _course_lib_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in _course_lib_files()}


def _imports(name: str, path: Path, modules) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every import statement of a
    module, at module level or inside functions, relative imports resolved; only imports of
    course_lib modules are kept. `from pkg import sub` names the submodule `pkg.sub`."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                if f"{source}.{alias.name}" in modules:
                    found.append((f"{source}.{alias.name}", None, node.lineno))
                else:
                    found.append((source, alias.name, node.lineno))
    return [(mod, item, line) for mod, item, line in found
            if mod == "course_lib" or mod.startswith("course_lib.")]


def _import_graph() -> dict[str, set[str]]:
    modules = _course_lib_modules()
    graph = {}
    for name, path in modules.items():
        targets = set()
        for mod, _, _ in _imports(name, path, modules):
            while mod not in modules and "." in mod:  # `import course_lib.x.y` of a name
                mod = mod.rpartition(".")[0]
            if mod in modules and mod != name:
                targets.add(mod)
        graph[name] = targets
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search, three colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_cycle_finder_finds_cycles():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_course_lib_has_no_import_cycle():
    graph = _import_graph()
    assert "course_lib.ops.conv" in graph and graph["course_lib.ops"], "the graph is empty"
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle in course_lib: " + " -> ".join(cycle)


def _first_private_part(dotted: str) -> tuple[str, str] | None:
    """(owner, part) for the first component of `dotted` that starts with `_` (dunders such
    as __version__ are public), or None. Everything under a private module is internal to
    its owner: `course_lib.datasets._shapes_draw._paint` belongs to `course_lib.datasets`."""
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not (part.startswith("__") and part.endswith("__")):
            return ".".join(parts[:i]), part
    return None


def test_no_private_name_imported_across_modules():
    """A private name (module or attribute starting with `_`) may only be imported from
    inside the package or module that owns it: every course_lib module may use
    `course_lib._checks` (the shared home of argument checks), `course_lib.datasets.shapes`
    may use anything in `course_lib.datasets._shapes_draw` and `course_lib.widgets.*` may use
    `course_lib.widgets._render`, but `_helper` of `course_lib.losses` stays in
    `course_lib.losses`."""
    modules = _course_lib_modules()
    bad = []
    for name, path in modules.items():
        for mod, item, line in _imports(name, path, modules):
            target = f"{mod}.{item}" if item else mod
            private = _first_private_part(target)
            if private and not (name == private[0] or name.startswith(private[0] + ".")):
                bad.append(f"{rel(path)}:{line}: imports {target} ({private[1]} belongs to "
                           f"{private[0]})")
    assert not bad, ("private names imported across modules (make them public, or move "
                     "argument checks to course_lib._checks):\n" + "\n".join(bad))


# --- No function over 80 lines ---------------------------------------------------------

MAX_FUNCTION_LINES = 80


def _body_lines(func) -> int:
    """Lines of a function, its docstring excluded."""
    n = func.end_lineno - func.lineno + 1
    first = func.body[0]
    if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)):
        n -= first.end_lineno - first.lineno + 1
    return n


def _functions(node, prefix=""):
    """(qualified name, node) of every function under `node`, methods and nested ones too."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            qual = f"{prefix}{child.name}"
            if not isinstance(child, ast.ClassDef):
                yield qual, child
            yield from _functions(child, qual + ".")
        else:
            yield from _functions(child, prefix)


def _function_lengths() -> dict[str, int]:
    """`file::qualified.name` -> lines of the function, its docstring excluded."""
    lengths = {}
    for path in _course_lib_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        for qual, func in _functions(tree):
            lengths[f"{rel(path)}::{qual}"] = _body_lines(func)
    return lengths


def _too_long() -> dict[str, int]:
    return {k: n for k, n in sorted(_function_lengths().items()) if n > MAX_FUNCTION_LINES}


def test_no_function_over_80_lines():
    lengths = _function_lengths()
    assert "course_lib/ops/conv.py::conv2d" in lengths, "no function measured"
    long = _too_long()
    assert not long, (f"functions over {MAX_FUNCTION_LINES} lines (docstring excluded); split "
                      "them: " + ", ".join(f"{k} ({n})" for k, n in long.items()))
