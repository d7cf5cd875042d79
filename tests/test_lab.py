"""`make lab` serves JupyterLab (HTTP 200 on /lab) and handles busy ports with a clear message."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest
from conftest import ROOT

from tools.lab import DEFAULT_PORT, choose_port, command, port_free

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except OSError:
        return 0


def test_make_lab_serves_jupyterlab():
    port = _free_port()
    env = {**os.environ, "JUPYTER_TOKEN": "course-test"}
    proc = subprocess.Popen(["make", "--no-print-directory", "lab", f"PORT={port}"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        status, deadline = 0, time.monotonic() + 90
        while status != 200 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(1)
            status = _get(f"http://127.0.0.1:{port}/lab?token=course-test")
        assert status == 200, f"/lab answered {status}; make lab exited with {proc.poll()}"
        assert _get(f"http://127.0.0.1:{port}/api/contents/lectures?token=course-test") == 200
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert f"JupyterLab on http://localhost:{port}/lab/tree/lectures" in output


def test_busy_explicit_port_is_a_clear_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(["make", "--no-print-directory", "lab", f"PORT={port}"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert f"port {port} is already in use" in proc.stdout + proc.stderr


def test_default_port_moves_on_when_busy():
    with socket.socket() as busy:
        try:
            busy.bind(("127.0.0.1", DEFAULT_PORT))
            busy.listen()
        except OSError:
            pass  # already busy: what the test needs
        port = choose_port(None)
    assert port != DEFAULT_PORT and port > DEFAULT_PORT


@pytest.mark.parametrize("bad, match", [(0, "must be in 1..65535"), (70000, "1..65535")])
def test_invalid_port(bad, match):
    with pytest.raises(SystemExit, match=match):
        choose_port(bad)


def test_command_allows_root_only_as_root():
    args = command(9999)
    assert "--port=9999" in args and f"--ServerApp.root_dir={ROOT}" in args
    assert ("--allow-root" in args) == (os.geteuid() == 0)
    assert port_free(_free_port())
