"""Start JupyterLab on lectures/: pick a free port, say where it is, allow root when needed.

PORT=8888 is the default; when it is busy the next free port is used. A PORT given
explicitly (``make lab PORT=9000``) that is busy is an error with a clear message.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PORT = 8888


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def choose_port(requested: int | None, tries: int = 50) -> int:
    """``requested`` if free (error if not); otherwise the first free port from 8888 up."""
    if requested is not None:
        if not 1 <= requested <= 65535:
            raise SystemExit(f"make lab: PORT must be in 1..65535, got {requested}")
        if not port_free(requested):
            raise SystemExit(
                f"make lab: port {requested} is already in use (another JupyterLab?). "
                f"Stop it, or run `make lab PORT=<free port>`, or `make lab` to pick one."
            )
        return requested
    for port in range(DEFAULT_PORT, DEFAULT_PORT + tries):
        if port_free(port):
            if port != DEFAULT_PORT:
                print(f"make lab: port {DEFAULT_PORT} is busy, using {port}", flush=True)
            return port
    raise SystemExit(f"make lab: no free port in {DEFAULT_PORT}..{DEFAULT_PORT + tries - 1}")


def command(port: int) -> list[str]:
    args = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={ROOT}",
        "--LabApp.default_url=/lab/tree/lectures",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")
    return args


def main() -> None:
    raw = os.environ.get("PORT", "").strip()
    try:
        requested = int(raw) if raw else None
    except ValueError:
        raise SystemExit(f"make lab: PORT must be a number, got {raw!r}") from None
    port = choose_port(requested)
    print(f"make lab: JupyterLab on http://localhost:{port}/lab/tree/lectures "
          "(the full URL with its token follows; Ctrl-C stops it)", flush=True)
    os.execv(sys.executable, command(port))


if __name__ == "__main__":
    main()
