"""A real browser sees JupyterLab work: Debian's chromium, driven by Playwright.

`make lab` is started on a free port; headless Chromium opens /lab, runs the first code cell of
lecture 00, and drives the three ipywidgets explorers at a laptop size (1280 x 800): every
slider is dragged with the mouse, every dropdown changed, text typed, buttons clicked, and the
picture must change each time, with no error in any cell. Screenshots go to build/browser/.
`playwright install` is never used: it downloads browsers.

The browser never opens a file of lectures/: JupyterLab autosaves what it opens (outputs
included), and other people edit the lectures while this test runs. It opens *copies* in the
scratch folder build/browser/nb/ (build/ is gitignored), made fresh for every run.
"""

from __future__ import annotations

import json
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
SHOTS = BUILD / "browser"
SCRATCH = SHOTS / "nb"  # copies the browser may autosave into; never lectures/
SCRATCH_URL = SCRATCH.relative_to(ROOT).as_posix()
LAPTOP = {"width": 1280, "height": 800}
MIN_TRACK_PX = 150  # a slider track narrower than this cannot be dragged one step at a time

if CHROMIUM is None and IN_CI:
    pytest.fail("CI needs Debian's chromium for the browser test (.ci/run installs it)",
                pytrace=False)
if CHROMIUM is None:
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)

EXPLORERS = {  # cell index in explorers.ipynb -> name, code
    1: ("conv", "conv_explorer()"),
    2: ("receptive", "receptive_field_explorer()"),
    3: ("transposed", "transposed_conv_explorer()"),
}


def _write_scratch() -> None:
    """Fresh copies for the browser: lecture 00 and a notebook showing the three explorers."""
    import nbformat

    shutil.rmtree(SCRATCH, ignore_errors=True)
    SCRATCH.mkdir(parents=True)
    shutil.copyfile(ROOT / "lectures" / "00_setup.ipynb", SCRATCH / "00_setup.ipynb")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "from course_lib.widgets import (conv_explorer, receptive_field_explorer,\n"
        "                                transposed_conv_explorer)")]
    nb.cells += [nbformat.v4.new_code_cell(code) for _, code in EXPLORERS.values()]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nbformat.write(nb, SCRATCH / "explorers.ipynb")


@pytest.fixture(scope="module")
def lab_url(tmp_path_factory):
    _write_scratch()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # A fresh workspace: a saved one would reopen the tabs of earlier sessions (lectures/
    # files among them) and autosave into them.
    env = {**os.environ, "JUPYTER_TOKEN": TOKEN,
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path_factory.mktemp("lab-workspaces"))}
    # `-o .venv/.installed`: start the lab as it is, never reinstall the venv from here
    # (someone else may be editing pyproject.toml while the test runs).
    proc = subprocess.Popen(["make", "--no-print-directory", "-o", ".venv/.installed", "lab",
                             f"PORT={port}"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
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


@pytest.fixture()
def browser():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


def _open_notebook(page, lab_url, name):
    from playwright.sync_api import expect

    page.goto(f"{lab_url}/lab/tree/{SCRATCH_URL}/{name}?token={TOKEN}&reset")
    expect(page.locator(".jp-Notebook .jp-CodeCell").first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=90_000)
    # JupyterLab's "get notified about news?" toast covers the bottom right: answer it.
    toast = page.locator(".Toastify__toast", has_text="Jupyter news")
    try:
        toast.get_by_role("button", name="No").click(timeout=10_000)
    except Exception:  # noqa: BLE001 - no toast this time (or an older JupyterLab)
        pass


def test_jupyterlab_opens_and_runs_a_lecture(lab_url, browser):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{lab_url}/lab/tree/{SCRATCH_URL}?token={TOKEN}&reset")
    listing = page.locator(".jp-DirListing-item", has_text="00_setup.ipynb")
    expect(listing).to_be_visible(timeout=60_000)
    page.screenshot(path=str(SHOTS / "lab_file_browser.png"))

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
        page.screenshot(path=str(SHOTS / "lab_lecture_00.png"))
    assert (SHOTS / "lab_lecture_00.png").stat().st_size > 10_000


def _changes_picture(cell, action, what: str) -> None:
    """Run ``action()``; the explorer's image must get a new ``src`` (a new PNG)."""
    from playwright.sync_api import expect

    image = cell.locator("img.widget-image").first
    before, deadline = image.get_attribute("src"), time.monotonic() + 20
    while time.monotonic() < deadline:  # let earlier redraws (a drag sends several) land
        cell.page.wait_for_timeout(700)
        now = image.get_attribute("src")
        if now == before:
            break
        before = now
    action()
    expect(image, f"{what}: the picture did not change").not_to_have_attribute(
        "src", before, timeout=30_000)


def _drag(page, slider, steps: float) -> tuple[str, str]:
    """Drag the handle of ``slider`` by ``steps`` slider steps (mouse); readout before/after."""
    handle = slider.locator(".noUi-handle, .ui-slider-handle").first
    track = slider.locator(".slider-container").first
    readout = slider.locator(".widget-readout").first
    handle.evaluate("e => e.scrollIntoView({block: 'center'})")  # clear of toasts
    box, tbox = handle.bounding_box(), track.bounding_box()
    lo = float(handle.get_attribute("aria-valuemin") or 0)
    hi = float(handle.get_attribute("aria-valuemax") or 1)
    now = float(handle.get_attribute("aria-valuenow") or lo)
    per_step = tbox["width"] / max(hi - lo, 1)
    sign = 1 if now + steps <= hi else -1
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    before = readout.inner_text() if readout.count() else str(now)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + sign * steps * per_step, y, steps=8)
    page.mouse.up()
    page.wait_for_timeout(300)
    after = readout.inner_text() if readout.count() else handle.get_attribute("aria-valuenow")
    return before, after


def test_explorers_are_usable_at_laptop_size(lab_url, browser):
    from playwright.sync_api import expect

    page = browser.new_page(viewport=LAPTOP)
    _open_notebook(page, lab_url, "explorers.ipynb")
    cells = page.locator(".jp-Notebook .jp-CodeCell")
    cells.first.locator(".jp-InputArea-editor").click()
    for _ in range(1 + len(EXPLORERS)):
        page.keyboard.press("Shift+Enter")
    widths: dict[str, list[float]] = {}
    try:
        for index, (name, _) in EXPLORERS.items():
            cell = cells.nth(index)
            expect(cell.locator("img.widget-image").first).to_be_visible(timeout=120_000)
            sliders = cell.locator(".widget-hslider")
            widths[name] = []
            for k in range(sliders.count()):
                slider = sliders.nth(k)
                label = slider.locator(".widget-label").first.inner_text()
                track = slider.locator(".slider-container").first.bounding_box()
                widths[name].append(round(track["width"], 1))
                assert track["width"] >= MIN_TRACK_PX, (name, label, track)
                # One step of mouse drag must move the value by exactly one step (the unit
                # sliders of the receptive explorer have ~55 steps: 5 steps, some change).
                steps = 5 if name == "receptive" else 1
                moved = {}
                _changes_picture(cell, lambda s=slider, m=moved, n=steps: m.update(
                    v=_drag(page, s, n)), f"{name}: drag {label}")
                before, after = moved["v"]
                if steps == 1:
                    assert abs(int(after) - int(before)) == 1, (name, label, before, after)
                else:
                    assert after != before, (name, label, before, after)
            for k in range(cell.locator(".widget-dropdown select").count()):
                select = cell.locator(".widget-dropdown select").nth(k)
                options = select.locator("option").all_inner_texts()
                current = select.input_value()
                target = next(o for o in reversed(options) if o != current)
                _changes_picture(cell, lambda s=select, t=target: s.select_option(label=t),
                                 f"{name}: dropdown -> {target}")
            page.screenshot(path=str(SHOTS / f"explorer_{name}_page.png"))
            cell.screenshot(path=str(SHOTS / f"explorer_{name}.png"))

        cell = cells.nth(2)  # the receptive-field explorer: buttons, checkbox, text box
        for text in ("+ conv3", "remove last"):
            button = cell.locator(".widget-button", has_text=text).first
            _changes_picture(cell, button.click, f"receptive: button {text}")
        _changes_picture(cell, cell.locator(".widget-checkbox input").first.click,
                         "receptive: jump grid")
        box = cell.locator(".widget-text input").first
        _changes_picture(cell, lambda: (box.fill("conv3, conv3, pool2"), box.press("Enter")),
                         "receptive: typed stack")
        # An invalid stack: the message, and the stale picture replaced by a grey panel.
        _changes_picture(cell, lambda: (box.fill("conv3, relu"), box.press("Enter")),
                         "receptive: invalid stack")
        expect(cell.get_by_text("invalid stack", exact=False)).to_be_visible(timeout=10_000)
        cell.screenshot(path=str(SHOTS / "explorer_receptive_invalid.png"))
        _changes_picture(cell, lambda: (box.fill("conv3, pool2"), box.press("Enter")),
                         "receptive: valid again")

        errors = page.locator('.jp-OutputArea-output[data-mime-type='
                              '"application/vnd.jupyter.stderr"]')
        assert errors.count() == 0, errors.all_inner_texts()
        assert page.get_by_text("Error displaying widget").count() == 0
    finally:
        page.screenshot(path=str(SHOTS / "explorers_laptop.png"))
        (SHOTS / "slider_widths.json").write_text(json.dumps(widths, indent=1))
    assert all(len(w) >= 2 for w in widths.values()), widths
