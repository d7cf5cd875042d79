"""Run one submission's notebook in a bubblewrap sandbox and take back only a checked result.

Each submission gets its own scratch folder (``in.ipynb``, ``out/``, ``work/`` with a copy of
the submission's other files). ``bwrap`` (Debian's ``bubblewrap``) starts
``tools/grading/runner.py`` in new mount, network, PID, IPC and UTS namespaces where the file
system is an allowlist bound read-only: the system (``/usr``, ``/etc``, ``/bin``, ``/lib``),
the Python environment (``sys.prefix``, ``sys.base_prefix``), ``course_lib`` and the runner;
``/tmp`` is a fresh tmpfs and the scratch folder the only writable path. The course tree
(``solutions/``, the gradebook, other submissions), home folders and the network are absent.
Resource limits (``setrlimit``) bound memory, CPU time, processes and file sizes; the runner
bounds the output bytes per cell. As root, the kernel runs as ``nobody`` (``setpriv``).

The executed notebook is untrusted: missing, not JSON, too large, or with other cells than
were sent, it is replaced by the sent notebook with every code cell failed, and a reason.

References: bubblewrap, https://github.com/containers/bubblewrap (``bwrap(1)``);
``setrlimit(2)``; util-linux ``setpriv(1)``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

RUNNER = Path(__file__).with_name("runner.py")
NOBODY = 65534
MiB = 1024 * 1024
ADVICE = (
    "Install Debian's bubblewrap (`apt-get install bubblewrap`). On Ubuntu 23.10 and later, "
    "unprivileged user namespaces are restricted by AppArmor: grade as root, or allow them "
    "(`sysctl kernel.apparmor_restrict_unprivileged_userns=0`). macOS and Windows have no "
    "bubblewrap: grade in a Linux virtual machine or container. If you accept that student "
    "code runs with your rights and can read and change every file you can, run "
    "`make grade UNSANDBOXED=1` (`python -m tools.grading autograde --unsandboxed ...`)."
)


class SandboxUnavailable(RuntimeError):
    """bwrap is missing or cannot create its namespaces on this machine."""


@dataclass
class Limits:
    """Per-submission limits. Memory is RLIMIT_DATA (heap and anonymous maps), so shared
    libraries map freely while allocations beyond it fail with MemoryError."""
    memory_mb: int = 4096
    cpu_seconds: int = 1200
    processes: int = 256
    file_mb: int = 256
    output_bytes: int = 200_000        # per cell, cut by the runner
    notebook_mb: int = 32              # the executed notebook taken back
    extra_env: dict = field(default_factory=dict)


def bwrap_probe() -> str | None:
    """None if bwrap can start a sandbox here, else why not."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (`bwrap`) is not installed"
    proc = subprocess.run([bwrap, *system_binds(), "--unshare-net", "--unshare-pid",
                           "--die-with-parent", "true"], capture_output=True, text=True)
    if proc.returncode:
        return f"`bwrap` cannot create a sandbox here: {proc.stderr.strip()[:300]}"
    return None


def check_available() -> None:
    why = bwrap_probe()
    if why:
        raise SandboxUnavailable(f"{why}. {ADVICE}")


def system_binds() -> list[str]:
    """The system part of the allowlist, read-only; merged-/usr symlinks kept as symlinks."""
    args = []
    for top in ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/lib32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    return args


def environment_paths() -> list[str]:
    """The Python environment and the course_lib sources it imports (editable installs)."""
    paths = {sys.prefix, sys.base_prefix, str(RUNNER.parent)}
    for name in ("course_lib", "course_lib.checkpoints"):
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:
            spec = None
        if spec is not None:
            paths.update(spec.submodule_search_locations or [os.path.dirname(spec.origin)])
    return sorted(p for p in paths if os.path.exists(p))


def bwrap_command(scratch: Path, as_root: bool) -> list[str]:
    cmd = [shutil.which("bwrap") or "bwrap", *system_binds(),
           "--perms", "1777", "--tmpfs", "/tmp", "--dev", "/dev", "--proc", "/proc"]
    for path in environment_paths():
        cmd += [*parents(path), "--ro-bind", path, path]
    cmd += [*parents(str(scratch)), "--bind", str(scratch), str(scratch),
            "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session",
            "--hostname", "sandbox", "--chdir", str(scratch / "work")]
    if as_root:  # keep only what the runner needs to start the kernel as nobody
        cmd += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                "--cap-add", "CAP_KILL"]
    else:
        cmd += ["--unshare-user"]
    return cmd


def parents(path: str) -> list[str]:
    """Create the folders above a bound path as 0755 (bwrap makes them 0700): the kernel,
    an unprivileged user, must traverse them."""
    args = []
    for parent in reversed(Path(path).parents):
        top = "/" + (parent.parts[1] if len(parent.parts) > 1 else "")
        if top not in ("/", "/usr", "/etc") and str(parent) != "/tmp":
            args += ["--perms", "0755", "--dir", str(parent)]
    return args


def set_limits(limits: Limits):
    def apply():
        for name, value in (("RLIMIT_DATA", limits.memory_mb * MiB),
                            ("RLIMIT_CPU", limits.cpu_seconds),
                            ("RLIMIT_NPROC", limits.processes),
                            ("RLIMIT_FSIZE", limits.file_mb * MiB),
                            ("RLIMIT_CORE", 0)):
            resource.setrlimit(getattr(resource, name), (value, value))
    return apply


def kernel_spec(scratch: Path, as_root: bool) -> None:
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
            "--HistoryManager.hist_file=:memory:"]
    if as_root:
        argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", *argv]
    spec = scratch / "jupyter" / "kernels" / "grading"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps(
        {"argv": argv, "display_name": "grading", "language": "python"}))


def prepare(nb, files: Path | None, as_root: bool) -> Path:
    """The scratch folder: in.ipynb and out/ for the runner, work/ for the kernel."""
    scratch = Path(tempfile.mkdtemp(prefix="course-grading-"))
    os.chmod(scratch, 0o755)
    work, out, runtime = scratch / "work", scratch / "out", scratch / "runtime"
    if files is not None:
        shutil.copytree(files, work, ignore=shutil.ignore_patterns("*.ipynb"),
                        symlinks=False, ignore_dangling_symlinks=True)
    work.mkdir(exist_ok=True)
    out.mkdir(mode=0o700)
    runtime.mkdir(mode=0o711)
    for sub in (".mpl", ".ipython"):
        (work / sub).mkdir(exist_ok=True)
    nbformat.write(nb, scratch / "in.ipynb")
    os.chmod(scratch / "in.ipynb", 0o600)
    kernel_spec(scratch, as_root)
    if as_root:
        for dirpath, _, filenames in os.walk(work):
            os.chown(dirpath, NOBODY, NOBODY)
            for name in filenames:
                os.chown(os.path.join(dirpath, name), NOBODY, NOBODY)
    return scratch


def environment(scratch: Path, limits: Limits) -> dict:
    work = str(scratch / "work")
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}
    return {**keep, "HOME": work, "MPLCONFIGDIR": f"{work}/.mpl", "MPLBACKEND": "Agg",
            "IPYTHONDIR": f"{work}/.ipython", "TMPDIR": "/tmp", "PYTHONDONTWRITEBYTECODE": "1",
            "JUPYTER_PATH": str(scratch / "jupyter"), "JUPYTER_RUNTIME_DIR":
            str(scratch / "runtime"), "JUPYTER_CONFIG_DIR": str(scratch / "jupyter"),
            "JUPYTER_PLATFORM_DIRS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            "OMP_NUM_THREADS": "1", **limits.extra_env}


@dataclass
class Result:
    notebook: nbformat.NotebookNode
    reasons: list[str]          # empty: every cell ran (tests may still have failed)


def failed_notebook(sent, reason: str) -> nbformat.NotebookNode:
    """The notebook that was sent, every code cell failed with ``reason``."""
    nb = nbformat.from_dict(json.loads(json.dumps(sent)))
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("error", ename="NotGraded", evalue=reason,
                                                   traceback=[f"NotGraded: {reason}"])]
    return nb


def take_back(sent, out: Path, limits: Limits) -> tuple[nbformat.NotebookNode | None, str]:
    """The executed notebook if it is plausible, else (None, why)."""
    path = out / "executed.ipynb"
    if not path.is_file() or path.is_symlink():
        return None, "no executed notebook came back from the sandbox"
    if path.stat().st_size > limits.notebook_mb * MiB:
        return None, f"the executed notebook is larger than {limits.notebook_mb} MB"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = nbformat.reads(path.read_text(errors="strict"), as_version=4)
        cells = [(c["cell_type"], c["source"]) for c in got["cells"]]
    except Exception as exc:  # noqa: BLE001 - any garbled file is one reason
        return None, f"the executed notebook is not a valid notebook ({type(exc).__name__})"
    if cells != [(c.cell_type, c.source) for c in sent.cells]:
        return None, "the executed notebook does not hold the cells that were sent"
    for mine, theirs in zip(sent.cells, got.cells):
        for key in ("metadata", "id"):  # ours, never the sandbox's
            theirs.pop(key, None)
            if key in mine:
                theirs[key] = mine[key]
    for key in ("metadata", "nbformat", "nbformat_minor"):
        got[key] = sent[key]
    try:
        nbformat.validate(got)
    except Exception as exc:  # noqa: BLE001
        return None, f"the executed notebook is not a valid notebook ({str(exc)[:200]})"
    return got, ""


def cell_reasons(out: Path, nb) -> list[str]:
    try:
        report = json.loads((out / "report.json").read_text()[:100_000])
        cells = {int(k): str(v)[:200] for k, v in report.get("cells", {}).items()}
    except (OSError, ValueError, AttributeError):
        return []
    reasons = []
    for index, why in sorted(cells.items()):
        if 0 <= index < len(nb.cells):
            grade_id = nb.cells[index].metadata.get("nbgrader", {}).get("grade_id")
            reasons.append(f"{why.split(':')[0]} in cell {grade_id or index}")
    return reasons


def run(nb, files: Path | None, timeout: int, limits: Limits | None = None,
        sandboxed: bool = True) -> Result:
    """Execute ``nb`` (the sanitized notebook, hidden tests restored) away from the course."""
    limits = limits or Limits()
    as_root = sandboxed and os.geteuid() == 0
    scratch = prepare(nb, files, as_root)
    out = scratch / "out"
    runner = [sys.executable, str(RUNNER), str(scratch / "in.ipynb"), str(out), str(timeout),
              str(limits.output_bytes)] + ([str(NOBODY)] if as_root else [])
    cmd = (bwrap_command(scratch, as_root) if sandboxed else []) + runner
    n_code = sum(c.cell_type == "code" for c in nb.cells)
    wall = (n_code + 2) * timeout + 60
    try:
        proc = subprocess.Popen(cmd, cwd=scratch / "work", env=environment(scratch, limits),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, preexec_fn=set_limits(limits),
                                start_new_session=True)
        try:
            _, err = proc.communicate(timeout=wall)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return Result(failed_notebook(nb, f"the notebook ran longer than {wall} s"),
                          [f"timeout: the notebook ran longer than {wall} s"])
        got, why = take_back(nb, out, limits)
        if got is None:
            detail = err.decode(errors="replace").strip().splitlines()[-1:] if err else []
            why += f" (exit status {proc.returncode}{': ' + detail[0][:200] if detail else ''})"
            return Result(failed_notebook(nb, why), [f"crash: {why}"])
        return Result(got, cell_reasons(out, nb))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
