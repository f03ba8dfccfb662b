"""Browser tests: a real `streamlit run` on a free loopback port, driven by Playwright in Debian's Chromium.

Where Chromium or Playwright is missing the tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

import pytest

from lib.config import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync", "--disable-dev-shm-usage",
]
START_TIMEOUT_S = 60
WAIT_MS = 120_000  # a cold page on a busy two-core machine can take 20 s
EXPORT_ALL = "Export all charts (PNG + HTML)"  # the last thing each analytics page writes
TRACES = "g.trace, g.hm, image"  # what plotly draws for data (lines, bars, heatmaps), not just axes
CHART_DRAWN = f"""() => {{
    const boxes = [...document.querySelectorAll('[data-testid=stPlotlyChart]')];
    return boxes.length > 0 && boxes.every(b => b.querySelector('.js-plotly-plot .main-svg')
                                                && b.querySelector('.js-plotly-plot').querySelector('{TRACES}'));
}}"""


class Element(NamedTuple):
    kind: str  # the element's type ("plotly_chart", "selectbox", ...)
    bytes: int  # of the message that brought it whole
    hash: str  # of that message: the same in every run that sends the same element


class Runs:
    """The elements of each script run a page receives over Streamlit's websocket: per run (from its
    `new_session` message on), each `Element`. A message the browser already holds comes as its hash
    (`ref_hash`) and counts as the element it stands for."""

    def __init__(self) -> None:
        self.bytes = 0  # of every frame
        self.runs: list[list[Element]] = []
        self._sent: dict[str, Element] = {}  # by hash: what was sent whole

    def frame(self, payload: bytes | str) -> object:
        """Record one websocket frame; the ForwardMsg it holds."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        data = payload if isinstance(payload, bytes) else payload.encode()
        self.bytes += len(data)
        msg = ForwardMsg.FromString(data)
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            self.runs.append([])
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            self._sent[msg.hash] = Element(msg.delta.new_element.WhichOneof("type"), len(data), msg.hash)
            self.runs[-1].append(self._sent[msg.hash])
        elif kind == "ref_hash" and msg.ref_hash in self._sent:
            self.runs[-1].append(self._sent[msg.ref_hash])
        return msg

    def kinds(self) -> list[list[str]]:
        """The element types of each run."""
        return [[element.kind for element in run] for run in self.runs]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App:
    """A running app: its URL and the data directory it serves."""

    def __init__(self, url: str, data_dir: Path) -> None:
        self.url = url
        self.data_dir = data_dir


def launch_app(
    data_dir: Path, env: Mapping[str, str] | None = None, secrets: Path | None = None, log: Path | None = None,
    script: Path = PROJECT_ROOT / "app.py",
) -> tuple[subprocess.Popen, App]:
    """Start serving `script` (the app) from the project on `data_dir` (without waiting for it), with
    extra `env` (e.g. CASCADE_MODE) and Streamlit's secrets read from `secrets` only, never from the
    repo's or the user's secrets.toml (a missing file means no secrets). Output goes to `log`."""
    port = free_port()
    env = {**os.environ, "CASCADE_DATA_DIR": str(data_dir), **(env or {})}
    args = ["--secrets.files", str(secrets)] if secrets is not None else []
    out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115 (the child keeps it)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none", *args],
            cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    finally:
        if log is not None:
            out.close()
    return process, App(f"http://127.0.0.1:{port}", data_dir)


def wait_ready(process: subprocess.Popen, app: App) -> App:
    """Until the server answers its health check; stops it and raises if it does not in time."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if urllib.request.urlopen(f"{app.url}/_stcore/health", timeout=2).read() == b"ok":
                return app
        except OSError:
            time.sleep(0.3)
    stop_app(process)
    raise RuntimeError(f"streamlit did not start on {app.url} within {START_TIMEOUT_S} s "
                       f"(exit code {process.returncode})")


def start_app(
    data_dir: Path, env: Mapping[str, str] | None = None, secrets: Path | None = None, log: Path | None = None,
    script: Path = PROJECT_ROOT / "app.py",
) -> tuple[subprocess.Popen, App]:
    """launch_app, then wait until it serves."""
    process, app = launch_app(data_dir, env, secrets, log, script)
    return process, wait_ready(process, app)


def stop_app(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def cannot_run(reason: str) -> None:
    """Skip, or under CI=true fail: CI must run the browser tests, not quietly skip them."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but the browser tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        cannot_run(f"Debian's chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    try:
        import playwright.sync_api as playwright
    except ImportError:
        cannot_run("playwright is not installed (pip install -r requirements-test.txt)")
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def served(data_dir: Path) -> Iterator[App]:
    """The app served on an empty data directory (so it starts on the demo market)."""
    process, app = start_app(data_dir)
    yield app
    stop_app(process)


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    yield context.new_page()
    context.close()


def no_exception(page) -> None:
    """No Streamlit exception element, and no "Page not found" dialog."""
    errors = page.get_by_test_id("stException")
    assert errors.count() == 0, errors.all_inner_texts()
    dialogs = page.get_by_test_id("stDialog")
    assert dialogs.count() == 0, dialogs.all_inner_texts()


def wait_for_page(page, done: str | None) -> None:
    """Until the script has written its last element and plotly has drawn every chart."""
    if done is None:
        page.get_by_test_id("stDataFrame").first.wait_for(timeout=WAIT_MS)
    else:
        page.get_by_text(done).wait_for(timeout=WAIT_MS)
        page.wait_for_function(CHART_DRAWN, timeout=WAIT_MS)
