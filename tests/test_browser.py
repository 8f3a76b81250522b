"""A lesson's playground, alive in a real browser: JupyterLab driven by Playwright.

Widgets only come alive in a browser with a kernel behind it, so strict nbval cannot test
them. This test starts a real JupyterLab server on 127.0.0.1 (a free port, a token, a
temporary root holding a copy of lesson 07, temporary config, data and runtime
directories, no browser of its own, no network calls), opens the lesson in Debian's
Chromium through Playwright, runs every cell, moves the playground's capacity slider,
and checks that the picture changed and that no cell shows a traceback.

Chromium is Debian's package (``apt-get install -y chromium``), never a browser that
Playwright downloads: without ``/usr/bin/chromium`` the test fails and says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
LESSON = "07_thundering_herd.ipynb"
# Debian's Chromium by default; RESILIENCE_CHROMIUM may name another Chromium-based browser
# already on the machine (the hosted CI workflow uses the runner's Chrome).
CHROMIUM = Path(os.environ.get("RESILIENCE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
START_TIMEOUT = 180.0
"""Seconds JupyterLab may take to start on a loaded machine."""
RUN_TIMEOUT_MS = 300_000
"""Milliseconds the whole lesson may take to run in the browser's kernel."""
STEP_TIMEOUT_MS = 120_000
"""Milliseconds for one step: a page load, a widget appearing, a redraw."""

# In the page: the notebook panel JupyterLab shows (window.jupyterapp is exposed).
_PANEL = "window.jupyterapp && window.jupyterapp.shell.currentWidget"
_READY = f"""() => {{
    const panel = {_PANEL};
    const kernel = panel && panel.sessionContext && panel.sessionContext.session
        && panel.sessionContext.session.kernel;
    return Boolean(kernel && kernel.status === 'idle' && panel.content
        && panel.content.widgets.length > 0);
}}"""
_RUN_ALL = """() => {
    const app = window.jupyterapp;
    window.__runAll = null;
    return app.commands.execute('notebook:clear-all-cell-outputs').then(
        () => app.commands.execute('notebook:run-all-cells')).then(
        ok => { window.__runAll = {ok: ok}; },
        err => { window.__runAll = {ok: false, error: String(err)}; });
}"""
_ERRORS = f"""() => {{
    const panel = {_PANEL};
    const found = [];
    for (const cell of panel.content.widgets) {{
        if (cell.model.type !== 'code') continue;
        for (const out of cell.model.outputs.toJSON()) {{
            if (out.output_type === 'error') found.push(out.ename + ': ' + out.evalue);
            if (out.output_type === 'stream' && out.name === 'stderr') found.push(out.text);
        }}
    }}
    return found;
}}"""
_UNRUN = f"""() => {{
    const panel = {_PANEL};
    return panel.content.widgets.filter(
        c => c.model.type === 'code' && c.model.sharedModel.getSource().trim() !== ''
             && c.model.executionCount === null).length;
}}"""
_PICTURE = """async img => {
    const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
    let hash = 0;
    for (const b of bytes) hash = (Math.imul(hash, 31) + b) >>> 0;
    return {src: img.src, size: bytes.length, hash: hash,
            png: bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47};
}"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Lab:
    """A JupyterLab server in a process group of its own, with its log read in a thread."""

    def __init__(self, home: Path) -> None:
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.root = home / "root"
        self.root.mkdir()
        shutil.copy(ROOT / "notebooks" / LESSON, self.root / LESSON)
        config = home / "config"
        settings = home / "settings" / "@jupyterlab" / "notebook-extension"
        settings.mkdir(parents=True)
        # every cell stays in the page (no windowing), so the test sees every output
        (settings / "tracker.jupyterlab-settings").write_text(
            json.dumps({"windowingMode": "none"}))
        config.mkdir()
        (config / "jupyter_server_config.json").write_text(json.dumps({"LabApp": {
            "news_url": None, "extension_manager": "readonly",
            "check_for_updates_class": "jupyterlab.handlers.announcements.NeverCheckForUpdate",
            "expose_app_in_browser": True}}))
        env = {**os.environ,
               "PYTHONPATH": os.pathsep.join([str(ROOT / "notebooks"),
                                              os.environ.get("PYTHONPATH", "")]).rstrip(
                                                  os.pathsep),
               "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_DATA_DIR": str(home / "data"),
               "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "IPYTHONDIR": str(home / "ipython")}
        env.pop("JUPYTER_TOKEN", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser",
             *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
             "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
             "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={self.root}",
             f"--LabServerApp.user_settings_dir={home / 'settings'}",
             f"--LabServerApp.workspaces_dir={home / 'workspaces'}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, env=env, cwd=home, start_new_session=True)
        self.log: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)
            self._lines.put(line)
        self._lines.put(None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/lab/tree/{LESSON}?token={self.token}"

    def wait_until_serving(self) -> None:
        """Block until the server logs its URL (it listens by then), or fail."""
        while True:
            try:
                line = self._lines.get(timeout=START_TIMEOUT)
            except queue.Empty:
                pytest.fail(f"JupyterLab did not start in {START_TIMEOUT:g} s:\n{self.tail()}")
            if line is None:
                pytest.fail(f"JupyterLab exited ({self.process.poll()}):\n{self.tail()}")
            if f"127.0.0.1:{self.port}/lab" in line:
                return

    def tail(self) -> str:
        return "".join(self.log[-40:])

    def stop(self) -> None:
        """Stop the server, then anything left in its process group (its kernels)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.send_signal(signal.SIGINT)  # the second one skips the prompt
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=60)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # the group we started, if any left
        self._reader.join(timeout=60)
        assert self.process.stderr is not None
        self.process.stderr.close()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[_Lab]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser test needs Debian's Chromium. "
                    "Install it with `apt-get install -y chromium` (never `playwright "
                    "install`).")
    server = _Lab(tmp_path)
    try:
        server.wait_until_serving()
        yield server
    finally:
        server.stop()


def _picture(image: Any) -> dict[str, Any]:
    result: dict[str, Any] = image.evaluate(_PICTURE)
    return result


@pytest.mark.loopback
def test_the_herd_playground_redraws_in_a_real_browser(lab: _Lab, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000})
        try:
            page = browser.new_page()
            page.set_default_timeout(STEP_TIMEOUT_MS)
            page.goto(lab.url, wait_until="domcontentloaded")
            page.wait_for_function(_READY, timeout=STEP_TIMEOUT_MS)

            page.evaluate(_RUN_ALL)
            page.wait_for_function("() => window.__runAll !== null", timeout=RUN_TIMEOUT_MS)
            outcome = page.evaluate("() => window.__runAll")
            errors = page.evaluate(_ERRORS)
            assert errors == [], f"cells showed errors in the browser: {errors}"
            assert outcome.get("ok") is True, f"run all cells did not succeed: {outcome}"
            assert page.evaluate(_UNRUN) == 0, "some code cells did not run"
            assert page.locator(".jp-OutputArea-output[data-mime-type="
                                "'application/vnd.jupyter.stderr']").count() == 0, (
                "a cell shows a traceback or stderr")

            slider = page.locator(".widget-slider", has_text="capacity")
            image = page.locator("img.widget-image").first
            image.scroll_into_view_if_needed()
            page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                                   arg=image.element_handle())
            before = _picture(image)
            assert before["png"] and before["size"] > 10_000, before

            readout = slider.locator(".widget-readout")
            readout.click()
            page.keyboard.press("Control+A")
            page.keyboard.type("200")
            page.keyboard.press("Enter")
            page.wait_for_function("([img, src]) => img.src !== src && img.complete",
                                   arg=[image.element_handle(), before["src"]],
                                   timeout=STEP_TIMEOUT_MS)
            after = _picture(image)
            assert after["png"], after
            assert after["hash"] != before["hash"] or after["size"] != before["size"], (
                "the slider moved but the picture's bytes did not change")
            assert float(readout.inner_text()) == 200.0, "the slider did not move to 200"
            assert page.evaluate(_ERRORS) == [], "a cell shows an error after the slider moved"
        finally:
            browser.close()
