"""Flag student code that patches the checking machinery or imports the reference answer.

The sandbox keeps a submission away from the course, but code in the student's own kernel
runs before the tests in that kernel and could change what they check. Such code cannot be
prevented, only found: this module reads every cell the student can edit (solution cells and
added cells) with ``ast`` and returns one flag per finding:

- assigning to (or deleting, ``setattr``/``delattr`` on) an attribute of an imported name or
  of a module (``torch.equal = ...``, ``np.testing.assert_allclose = ...``);
- ``builtins``, ``__builtins__``, ``sys.modules``, trace/except hooks, ``get_ipython`` (input
  transformers, events, ``run_cell``), ``exec``/``eval``/``compile``/``__import__`` of a
  string that is not a literal, ``ctypes``, ``gc`` and frame inspection, ``os.kill``, signals;
- importing from ``course_lib`` a name the exercise asks the student to define.
"""

from __future__ import annotations

import ast
import re

from tools.grading.cells import nbgrader_meta

MODULES = {"torch", "np", "numpy", "F", "nn", "math", "sys", "os", "builtins", "IPython",
           "unittest", "pytest", "course_lib", "scipy", "skimage", "torchvision", "random"}
FORBIDDEN_NAMES = {"get_ipython": "uses get_ipython (IPython hooks)",
                   "__builtins__": "touches __builtins__", "__import__": "calls __import__",
                   "ctypes": "uses ctypes", "_getframe": "inspects stack frames",
                   "settrace": "installs a trace hook", "setprofile": "installs a profile hook",
                   "excepthook": "changes sys.excepthook"}
MUTATORS = {"update", "pop", "popitem", "setdefault", "clear", "__setitem__", "__delitem__"}
FORBIDDEN_MODULES = {"builtins", "ctypes", "gc", "inspect", "signal", "importlib"}
MAGIC = re.compile(r"^\s*[%!]", re.M)


def root_name(node) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def dotted(node) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # noqa: BLE001
        return "?"


def imported_names(tree) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def patching(tree, modules: set[str]) -> list[str]:
    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [
                node.target]
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, (ast.Attribute, ast.Subscript)) and root_name(sub) in modules:
                    found.append(f"patches {dotted(sub)}")
                    break
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            name, args = node.func.id, node.args
            if name in ("setattr", "delattr") and args and root_name(args[0]) in modules:
                found.append(f"patches {dotted(args[0])} with {name}")
            if name in ("exec", "eval", "compile") and not (
                    args and isinstance(args[0], ast.Constant)):
                found.append(f"runs a built string with {name}")
        if isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            found.append(FORBIDDEN_NAMES[node.id])
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_NAMES:
            found.append(FORBIDDEN_NAMES[node.attr])
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in MUTATORS and root_name(node.func) in modules):
            found.append(f"patches {dotted(node.func.value)} with {node.func.attr}")
        if isinstance(node, ast.Attribute) and dotted(node) in ("os.kill", "os.killpg"):
            found.append("sends signals")
    return found


def forbidden_imports(tree, defined: set[str]) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"imports {a.name}" for a in node.names
                      if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            top = node.module.split(".")[0]
            if top in FORBIDDEN_MODULES:
                found.append(f"imports {node.module}")
            if top == "course_lib":
                found += [f"imports the reference {a.name} from {node.module}"
                          for a in node.names if a.name in defined]
        elif (isinstance(node, ast.Attribute) and node.attr in defined
              and root_name(node) == "course_lib"):
            found.append(f"uses the reference {dotted(node)}")
    return found


def parse(source: str):
    try:
        return ast.parse(MAGIC.sub("pass  # magic", source))
    except SyntaxError:
        return None


def scan(nb) -> list[str]:
    """Flags for the notebook's student-editable code cells, ``'<what> (cell <id>)'``."""
    editable, defined, modules = [], set(), set(MODULES)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or (tree := parse(cell.source)) is None:
            continue
        modules |= imported_names(tree)
        meta = nbgrader_meta(cell)
        if not meta.get("locked"):
            editable.append((meta.get("grade_id") or f"#{index}", tree))
        if meta.get("solution"):
            defined |= {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    flags = []
    for where, tree in editable:
        for what in dict.fromkeys(patching(tree, modules) + forbidden_imports(tree, defined)):
            flags.append(f"{what} (cell {where})")
    return flags
