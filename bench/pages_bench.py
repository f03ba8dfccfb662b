"""Page benchmarks: what a person waits for and what their browser receives.

- every page of app.py under AppTest, on the demo market and on a real cache imported from
  ../shared/data (as `make sample-data` does): rerun time cold (Streamlit's caches cleared) and warm
  (median of reruns), the largest chart (len of the plotly spec) and all elements of the page;
- every page in Chromium (Playwright) against `streamlit run` on a free loopback port, on the real
  cache: time to the first chart drawn in the first screen (1400 x 1000, unscrolled), bytes over the websocket (the page and its largest chart),
  and the RSS of the app process after each page; first, the floors of those times on this machine:
  floor_app.py, a bare Streamlit page drawing one 100-point chart, and shell_app.py, the same chart
  in app.py's shell (a navigation of five pages, the sidebar controls of the Liquidations page);
- the drawdowns page at 1-minute bars for a year with the big dataset (3 assets x 5 years x 1m,
  7.9M rows, store_bench's random walks, written with Store.write as exchange "bench"): its AppTest
  reruns, the same browser figures and the app's peak RSS (VmHWM).

    .venv/bin/python bench/pages_bench.py [--quick] [--browser-runs N] [--new-users K]

`--quick` makes the big dataset one year (the page reads the same year of minutes either way)
and does fewer warm reruns. `--browser-runs N` measures only the browser figures on the real
cache, N times, each on a freshly started server (the browser figures vary from run to run);
`--new-users K` makes each new-user figure the median of K visits, each in a fresh browser context.
Goals (issue 8): warm rerun < 0.3 s; at most 1.5 MB per chart whatever the data size; (issue 7)
first chart visible < 3 s warm.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drawdowns_bench import machine  # noqa: E402
from run_all import Goal, report  # noqa: E402
from store_bench import MINUTES_5Y, minute_bars  # noqa: E402

from lib.config import DATA_DIR_ENV, PROJECT_ROOT, load_settings  # noqa: E402
from lib.schema import ASSETS, BARS  # noqa: E402
from lib.store import Store  # noqa: E402
from lib.viewstate import choices_from_status, view_params  # noqa: E402
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, Element, Runs, start_app  # noqa: E402

APP = PROJECT_ROOT / "app.py"
FLOOR_APP = Path(__file__).resolve().parent / "floor_app.py"
SHELL_APP = Path(__file__).resolve().parent / "shell_app.py"
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
MINUTES_1Y = 365 * 24 * 60
MB = 1e6
TIMEOUT_S = 600.0
WARM_RERUNS, QUICK_WARM_RERUNS = 5, 3
RERUN_GOAL = Goal(0.3, "s")
CHART_GOAL = Goal(1.5, "MB")
FIRST_CHART_GOAL = Goal(3, "s")
CHARTLESS_PAGE = "data"  # url_path of a page without charts, the step between two pages with charts
BIG_PAGE = "drawdowns"  # url_path of the page opened on the big dataset
VIEWPORT = {"width": 1400, "height": 1000}
CHARTS_DRAWN_JS = "[...document.querySelectorAll('.js-plotly-plot')].filter(e => e._fullLayout).length"
# [charts drawn, of them in the first screen]: a chart drawn below the fold is not yet seen
CHARTS_SEEN_JS = """(() => {
    const drawn = [...document.querySelectorAll('.js-plotly-plot')].filter(e => e._fullLayout);
    const top = e => e.getBoundingClientRect().top;
    return [drawn.length, drawn.filter(e => top(e) >= 0 && top(e) < window.innerHeight).length];
})()"""
POLL_S = 0.05
# Streamlit's ScriptFinishedStatus values that end a page run (not FINISHED_EARLY_FOR_RERUN)
RUN_ENDED = (0, 1)


@dataclass(frozen=True)
class Page:
    """One entry of app.py's st.navigation."""

    path: str  # relative to app.py, as AppTest.switch_page wants it
    url_path: str
    title: str
    default: bool = False  # the page a session starts on


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def app_pages(app: Path = APP) -> list[Page]:
    """The pages listed in app.py's `PAGES` (read from its source, so a new page is benched as
    soon as it is routed)."""
    assigned = {target.id: node.value for node in ast.parse(app.read_text()).body if isinstance(node, ast.Assign)
                for target in node.targets if isinstance(target, ast.Name)}
    if "PAGES" not in assigned:
        raise ValueError(f"no PAGES list in {app}")
    keywords = Page.__annotations__
    calls = [assigned[e.id] if isinstance(e, ast.Name) else e for e in assigned["PAGES"].elts]  # st.Page(...) or a name of one
    return [Page(call.args[0].value, **{k.arg: k.value.value for k in call.keywords if k.arg in keywords}) for call in calls]


# --- data directories -----------------------------------------------------------------------------


def real_cache(root: Path) -> Path | None:
    """../shared/data imported into `root` by `make sample-data` (None when the data is absent).
    `-o` keeps make from reinstalling the venv when requirements.txt is newer than its stamp."""
    if not SHARED_DATA.is_dir():
        return None
    done = subprocess.run(["make", "-s", "-o", ".venv/.installed", "sample-data", f"PY={sys.executable}"],
                          cwd=PROJECT_ROOT, env={**os.environ, DATA_DIR_ENV: str(root)}, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"make sample-data failed ({done.returncode}): {done.stderr[-2000:]}")
    return root


def minute_store(root: Path, minutes: int) -> Path:
    """`minutes` one-minute bars per asset (store_bench's seeds) written through Store.write as
    exchange "bench", timeframe 1m."""
    store = Store(root)
    for i, symbol in enumerate(ASSETS):
        store.write(BARS, minute_bars(symbol, minutes, 10 + i), source="bench")
    return root


def default_query(data_dir: Path) -> dict[str, str]:
    """The link to the view a page without a link of its own shows on `data_dir` (the real cache,
    else the demo market, as lib.ui picks): the last year of the preferred exchange's bars."""
    settings = load_settings(data_dir=data_dir)
    status = Store(data_dir).status()
    if not any(entry["dataset"] == "bars" for entry in status):
        status = Store(settings.demo_dir).status()
    return view_params(choices_from_status(status, settings.assets, settings.default_exchange).default())


# --- AppTest --------------------------------------------------------------------------------------


@dataclass
class Rerun:
    """One page under AppTest."""

    cold_s: float
    warm_s: float
    chart_bytes: list[int]
    page_bytes: int
    errors: list[str]


def element_sizes(node: object) -> Iterator[tuple[str, int]]:
    """(element type, serialised bytes) of every element under an AppTest tree node."""
    for child in getattr(node, "children", {}).values():
        proto = getattr(child, "proto", None)
        if proto is not None and hasattr(proto, "ByteSize"):
            yield getattr(child, "type", ""), proto.ByteSize()
        yield from element_sizes(child)


def timed_run(at: object) -> float:
    started = time.perf_counter()
    at.run()
    return time.perf_counter() - started


def rerun_page(page: Page, data_dir: Path, reruns: int) -> Rerun:
    """Cold: Streamlit's caches cleared before the page's first run (the Parquet cache is on
    disk). Warm: the median of `reruns` further reruns of the same session.

    The session starts on the default page (switch_page needs one run), which may pick its own
    dates; other pages get the link of their own default view, as a visit to their URL shows."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ[DATA_DIR_ENV] = str(data_dir)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    if not page.default:
        at.query_params.update(default_query(data_dir))
    at.run()
    st.cache_data.clear()
    st.cache_resource.clear()
    at.switch_page(page.path)
    cold = timed_run(at)
    warm = statistics.median(timed_run(at) for _ in range(reruns))
    charts = [len(c.proto.spec) for c in at.get("plotly_chart")]
    page_bytes = sum(size for _, size in element_sizes(at._tree))
    return Rerun(cold, warm, charts, page_bytes, [e.message for e in at.exception])


def apptest_section(label: str, data_dir: Path, pages: list[Page], reruns: int) -> None:
    """Report every page's reruns and payload under AppTest."""
    for page in pages:
        run = rerun_page(page, data_dir, reruns)
        name = f"{page.title} ({label})"
        failed = f"page raised: {run.errors[0][:80]}" if run.errors else ""
        report(f"{name}: rerun cold (AppTest)", run.cold_s, "s", note=failed)
        report(f"{name}: rerun warm (AppTest, median of {reruns})", run.warm_s, "s", RERUN_GOAL)
        if run.chart_bytes:
            report(f"{name}: largest chart spec (AppTest)", max(run.chart_bytes) / MB, "MB", CHART_GOAL,
                   note=f"{plural(len(run.chart_bytes), 'chart')}, page {run.page_bytes / MB:.2f} MB")


# --- the browser ----------------------------------------------------------------------------------


def rss_mb(pid: int) -> tuple[float, float]:
    """The current and the peak resident set size of process `pid` (VmRSS, VmHWM), in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return tuple(int(fields[key].split()[0]) * 1024 / MB for key in ("VmRSS", "VmHWM"))


@dataclass
class Tap:
    """What one page receives over Streamlit's websocket, run by run (`Runs`). A run that ends with
    the first-screen component (`ui.first_screen_end`) is followed by the run of the whole page: the
    page is finished when that one is, and its charts and errors are the last run's."""

    runs: Runs = field(default_factory=Runs)
    started: float = field(default_factory=time.perf_counter)
    first_screen_s: float | None = None  # when the first-screen run ended, seconds after `started`
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    def attach(self, websocket: object) -> None:
        websocket.on("framereceived", self.frame)

    def frame(self, payload: bytes | str) -> None:
        msg = self.runs.frame(payload)
        if msg.WhichOneof("type") == "script_finished" and msg.script_finished in RUN_ENDED:
            if any(element.kind == "bidi_component" for element in self.latest()):
                self.first_screen_s = time.perf_counter() - self.started
            else:
                self.finished.set()

    def latest(self) -> list[Element]:
        """The elements of the latest run."""
        return self.runs.runs[-1] if self.runs.runs else []

    @property
    def bytes(self) -> int:
        return self.runs.bytes

    @property
    def chart_bytes(self) -> list[int]:
        return [element.bytes for element in self.latest() if element.kind == "plotly_chart"]

    @property
    def errors(self) -> int:
        return sum(element.kind == "exception" for element in self.latest())


@dataclass
class Visit:
    """One page load in a fresh browser context. Times in seconds from the start of navigation."""

    finished_s: float | None  # the server finished the page's script (its whole run)
    first_chart_s: float | None  # the first plotly chart drawn in the first screen (the viewport, unscrolled)
    drawn_s: float | None  # every chart drawn: the page is complete
    tap: Tap


async def charts(page: object) -> tuple[int, int]:
    return tuple(await page.evaluate(CHARTS_SEEN_JS))


async def first_seen(page: object, started: float, deadline: float) -> float | None:
    """Poll until a plotly chart is drawn in the first screen; its time."""
    while time.perf_counter() < deadline:
        if (await charts(page))[1]:
            return time.perf_counter() - started
        await asyncio.sleep(POLL_S)
    return None


async def all_drawn(page: object, count: int, started: float, deadline: float) -> float | None:
    """Poll until `count` plotly charts are drawn, anywhere on the page; the time."""
    while time.perf_counter() < deadline:
        if (await charts(page))[0] >= count:
            return time.perf_counter() - started
        await asyncio.sleep(POLL_S)
    return None


@contextlib.asynccontextmanager
async def fresh_context(browser: object) -> AsyncIterator[object]:
    """A new browser context: no cookies, no HTTP cache (a new user)."""
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        yield context
    finally:
        await context.close()


async def visit(context: object, url: str, timeout_s: float = TIMEOUT_S) -> Visit:
    """Open `url` in a new tab of `context` and wait for the script to finish and every chart to draw."""
    page = await context.new_page()
    try:
        tap = Tap()
        page.on("websocket", tap.attach)
        started = tap.started
        deadline = started + timeout_s
        await page.goto(url)
        first_task = asyncio.create_task(first_seen(page, started, deadline))
        try:
            await asyncio.wait_for(tap.finished.wait(), timeout_s)
        except TimeoutError:
            first_task.cancel()
            return Visit(None, None, None, tap)
        finished = time.perf_counter() - started
        if not tap.chart_bytes:
            first_task.cancel()
            return Visit(finished, None, finished, tap)
        drawn = await all_drawn(page, len(tap.chart_bytes), started, deadline)
        done, _ = await asyncio.wait([first_task], timeout=2 * POLL_S)  # all drawn, none in the first screen: never
        first_task.cancel()
        return Visit(finished, first_task.result() if done else None, drawn, tap)
    finally:
        await page.close()


@contextlib.contextmanager
def served(data_dir: Path, script: Path = APP) -> Iterator[tuple[int, str]]:
    """`streamlit run script` on a free loopback port serving `data_dir`: (its pid, its URL)."""
    process, app = start_app(data_dir, script=script)
    try:
        yield process.pid, app.url
    finally:
        process.terminate()
        process.wait(30)


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[object]:
    """Debian's Chromium driven by Playwright (never `playwright install`)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


def page_url(base: str, page: Page, query: dict[str, str] | None = None) -> str:
    return f"{base}/{page.url_path}" + (f"?{urlencode(query)}" if query else "")


def seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


@dataclass(frozen=True)
class Visits:
    """One page three ways: the first visit after the server started (its caches cold), new
    users on the warm server (each in a fresh context: empty browser cache), and the last of them
    opening the page again."""

    first: Visit
    new_users: list[Visit]
    returning: Visit

    @property
    def new_user(self) -> Visit:
        """The median new user by time to the first chart (the later of the two middle ones)."""
        ordered = sorted(self.new_users, key=lambda v: math.inf if v.first_chart_s is None else v.first_chart_s)
        return ordered[len(ordered) // 2]


async def visit_three_ways(browser: object, url: str, new_users: int = 1) -> Visits:
    async with fresh_context(browser) as context:
        first = await visit(context, url)
    users = []
    for _ in range(new_users):
        async with fresh_context(browser) as context:
            users.append(await visit(context, url))
            if len(users) == new_users:
                returning = await visit(context, url)
    return Visits(first, users, returning)


def report_visits(name: str, visits: Visits) -> None:
    """The browser figures of one page; the headline is the new user on a warm server."""
    shown, tap = visits.new_user, visits.new_user.tap
    errors = f"; the page showed {tap.errors} exception(s)" if tap.errors else ""
    others = (f"first visit after start {seconds(visits.first.first_chart_s)}, "
              f"returning user {seconds(visits.returning.first_chart_s)}")
    if len(visits.new_users) > 1:
        times = [v.first_chart_s for v in visits.new_users if v.first_chart_s is not None]
        others = (f"median of {len(visits.new_users)} new users" + (f" ({min(times):.2f}-{max(times):.2f} s)" if times else "")
                  + f"; {others}")
    if shown.first_chart_s is None:
        report(f"{name}: time to first chart (Chromium)", None, "s",
               note=f"no chart in the first screen; page complete in {seconds(shown.finished_s)}{errors}")
    else:
        first_screen = "" if tap.first_screen_s is None else f"first screen's run done at {seconds(tap.first_screen_s)}, "
        report(f"{name}: time to first chart (Chromium)", shown.first_chart_s, "s", FIRST_CHART_GOAL,
               note=f"{first_screen}script done at {seconds(shown.finished_s)}, {plural(len(tap.chart_bytes), 'chart')} drawn at "
                    f"{seconds(shown.drawn_s)}; {others}{errors}")
        report(f"{name}: largest chart over the websocket", max(tap.chart_bytes) / MB, "MB", CHART_GOAL)
    report(f"{name}: bytes over the websocket per page", tap.bytes / MB, "MB")


async def switch(context: object, base: str, page: Page, pages: list[Page]) -> float | None:
    """A user already in the app: the default page drawn (plotly.js loaded), then the page without
    charts, then a click on `page`'s link in the sidebar; seconds from the click to its first chart
    drawn in the first screen (None if none in time)."""
    by_path = {p.url_path: p for p in pages}
    tab = await context.new_page()
    try:
        await tab.goto(page_url(base, next(p for p in pages if p.default)))
        started = time.perf_counter()
        if await all_drawn(tab, 1, started, started + TIMEOUT_S) is None:
            return None
        await tab.get_by_test_id("stSidebarNavLink").filter(has_text=by_path[CHARTLESS_PAGE].title).click()
        await tab.wait_for_function(f"({CHARTS_DRAWN_JS}) === 0", timeout=TIMEOUT_S * 1000)
        started = time.perf_counter()
        await tab.get_by_test_id("stSidebarNavLink").filter(has_text=page.title).click()
        return await first_seen(tab, started, started + TIMEOUT_S)
    finally:
        await tab.close()


async def browser_floor(label: str, data_dir: Path, new_users: int) -> None:
    """The floors of the first-chart times, three ways: floor_app.py (one small chart, nothing else)
    and shell_app.py (that chart in our pages' shell and sidebar)."""
    floors = {FLOOR_APP: "a bare Streamlit page with one 100-point chart",
              SHELL_APP: "one 100-point chart in our shell (navigation, the Liquidations sidebar)"}
    for app, what in floors.items():
        with served(data_dir, app) as (_, url):
            async with chromium() as browser:
                report_visits(f"Floor: {what} ({label})", await visit_three_ways(browser, url, new_users))


async def browser_section(label: str, data_dir: Path, pages: list[Page], query: dict[str, str] | None = None,
                          new_users: int = 1) -> None:
    """The floor, then each page three ways (see Visits; the median of `new_users` new users) and,
    with no `query`, after clicks in the sidebar (`switch`); RSS of the app after each page and its peak."""
    await browser_floor(label, data_dir, new_users)
    with served(data_dir) as (pid, url):
        started_mb, _ = rss_mb(pid)
        async with chromium() as browser:
            for page in pages:
                visits = await visit_three_ways(browser, page_url(url, page, query), new_users)
                report_visits(f"{page.title} ({label})", visits)
                if query is None and page.url_path != CHARTLESS_PAGE:  # pages on their own views: clicks reach them
                    async with fresh_context(browser) as context:
                        report(f"{page.title} ({label}): first chart after a click in the sidebar (Chromium)",
                               await switch(context, url, page, pages), "s", FIRST_CHART_GOAL)
                report(f"app RSS after {page.title} ({label})", rss_mb(pid)[0], "MB")
        report(f"app peak RSS, {label}", rss_mb(pid)[1], "MB", note=f"{started_mb:.0f} MB when started")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 1-year big dataset, fewer reruns")
    parser.add_argument("--browser-runs", type=int, metavar="N", help="only the browser figures on the real cache, N times")
    parser.add_argument("--new-users", type=int, default=1, metavar="K",
                        help="the new-user figures are the median of K visits (default 1)")
    args = parser.parse_args()
    if args.new_users < 1:
        parser.error("--new-users needs at least 1")
    reruns, minutes = (QUICK_WARM_RERUNS, MINUTES_1Y) if args.quick else (WARM_RERUNS, MINUTES_5Y)
    pages = app_pages()
    print(f"{machine()}; pages: {', '.join(p.url_path for p in pages)}")
    with tempfile.TemporaryDirectory(prefix="cascade-pages-bench-") as tmp:
        root = Path(tmp)
        (root / "demo").mkdir()
        started = time.perf_counter()
        real = real_cache(root / "real")
        print(f"real cache imported from {SHARED_DATA} in {time.perf_counter() - started:.0f} s" if real
              else f"no real data at {SHARED_DATA}: real-data figures skipped")
        if args.browser_runs:
            for run in range(1, args.browser_runs + 1):
                asyncio.run(browser_section(f"real, run {run}", real, pages, new_users=args.new_users))
            return
        apptest_section("demo", root / "demo", pages, reruns)
        if real:
            apptest_section("real", real, pages, reruns)
            asyncio.run(browser_section("real", real, pages, new_users=args.new_users))
        started = time.perf_counter()
        big = minute_store(root / "big", minutes)
        rows = sum(e["rows"] for e in Store(big).status())
        print(f"big store: {rows:,} one-minute rows written in {time.perf_counter() - started:.0f} s")
        big_pages = [p for p in pages if p.url_path == BIG_PAGE]
        apptest_section(f"{rows / 1e6:.1f}M 1m rows, 1m for a year", big, big_pages, reruns)
        asyncio.run(browser_section(f"{rows / 1e6:.1f}M 1m rows, 1m for a year", big, big_pages, default_query(big)))


if __name__ == "__main__":
    main()
