"""A real browser sees JupyterLab work: Debian's chromium, driven by Playwright.

`make lab` is started on a free port; headless Chromium opens /lab, finds the lectures in the
file browser, opens lecture 00, runs its first code cell in a live kernel and saves
screenshots to build/browser/. `playwright install` is never used: it downloads browsers.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import pytest
from conftest import BUILD, IN_CI, ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-quic", "--no-first-run", "--disable-sync"]
TOKEN = "course-browser-test"

if CHROMIUM is None and IN_CI:
    pytest.fail("CI needs Debian's chromium for the browser test (.ci/run installs it)",
                pytrace=False)
if CHROMIUM is None:
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def lab_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "JUPYTER_TOKEN": TOKEN}
    proc = subprocess.Popen(["make", "--no-print-directory", "lab", f"PORT={port}"], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    # The browser runs a cell; JupyterLab's autosave must not leave outputs in the repo.
    snapshot = {p: p.read_bytes() for p in (ROOT / "lectures").glob("*.ipynb")}
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=3):
                break
        except OSError:
            time.sleep(1)
    yield base
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)
    for path, content in snapshot.items():
        if path.read_bytes() != content:
            path.write_bytes(content)


def test_jupyterlab_opens_and_runs_a_lecture(lab_url, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shots = BUILD / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{lab_url}/lab/tree/lectures?token={TOKEN}")
        listing = page.locator(".jp-DirListing-item", has_text="00_setup.ipynb")
        expect(listing).to_be_visible(timeout=60_000)
        page.screenshot(path=str(shots / "lab_file_browser.png"))

        listing.dblclick()
        title = page.locator(".jp-Notebook .jp-MarkdownOutput h1").first
        expect(title).to_contain_text("Setup", timeout=60_000)
        # Wait for the kernel, then run the first code cell and see its execution count.
        expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=90_000)
        code = page.locator(".jp-Notebook .jp-CodeCell").first
        code.click()
        page.keyboard.press("Shift+Enter")
        prompt = code.locator(".jp-InputPrompt")
        try:
            expect(prompt).to_have_text("[1]:", timeout=60_000)
        finally:
            page.screenshot(path=str(shots / "lab_lecture_00.png"))
        page.screenshot(path=str(shots / "lab_lecture_00.png"))
        browser.close()
    assert (shots / "lab_lecture_00.png").stat().st_size > 10_000
