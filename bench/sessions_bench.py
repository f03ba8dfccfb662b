"""Concurrent sessions: N browser sessions (Playwright contexts in one Chromium) open the drawdowns
page at the same time; latency (p50 / p95 from navigation until every chart is drawn, and until the
server finished the script) and the app's RSS against N.

    .venv/bin/python bench/sessions_bench.py [--quick]

Each N gets a fresh `streamlit run` on the real cache imported from ../shared/data (the demo market
where that is absent), warmed by one visit, then `ROUNDS` rounds of N simultaneous visits. The RSS
is sampled every `SAMPLE_S` during the rounds (its peak) and read once after them.
Full run: N = 1, 2, 4, 8, and the same on the big dataset (1m bars for a year, as pages_bench);
--quick: N = 1, 2, 4 on the real cache only, with one round.

On two cores the browser renders on the same CPUs as the server, so the latency at large N is
the server's queueing plus the browser's drawing. The server alone is measured too: N AppTest
sessions in threads of one process rerun the page at the same moment (each has run it once, as a
user who opened the link), which is what the server spends per session without any browser.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drawdowns_bench import machine  # noqa: E402
from pages_bench import (  # noqa: E402
    APP,
    DATA_DIR_ENV,
    TIMEOUT_S,
    Page,
    Visit,
    app_pages,
    chromium,
    default_query,
    fresh_context,
    minute_store,
    page_url,
    plural,
    real_cache,
    rss_mb,
    served,
    visit,
)
from run_all import report  # noqa: E402
from store_bench import MINUTES_5Y  # noqa: E402

PAGE = "drawdowns"
SESSIONS, QUICK_SESSIONS = (1, 2, 4, 8), (1, 2, 4)
ROUNDS, QUICK_ROUNDS = 3, 1
SAMPLE_S = 0.2
P95 = 0.95


class PeakRss(threading.Thread):
    """Samples a process's RSS in the background; `peak_mb` is the largest sample."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_mb, self.stop = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak_mb = max(self.peak_mb, rss_mb(self.pid)[0])
            self.stop.wait(SAMPLE_S)


def percentile(values: list[float], q: float) -> float:
    """The `q` quantile, interpolated (statistics' 'inclusive' method: p95 of one value is that value)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


@dataclass(frozen=True)
class Load:
    """N sessions' visits and the app's memory while they ran."""

    sessions: int
    visits: list[Visit]
    idle_mb: float  # after the warm-up visit
    peak_mb: float  # sampled during the rounds
    after_mb: float


async def load(browser: object, url: str, pid: int, sessions: int, rounds: int) -> Load:
    """One warm-up visit, then `rounds` rounds of `sessions` simultaneous visits."""
    async with fresh_context(browser) as context:
        await visit(context, url)
    idle_mb = rss_mb(pid)[0]
    sampler = PeakRss(pid)
    sampler.start()
    visits: list[Visit] = []
    for _ in range(rounds):
        visits += await asyncio.gather(*(new_session(browser, url) for _ in range(sessions)))
    sampler.stop.set()
    sampler.join()
    return Load(sessions, visits, idle_mb, sampler.peak_mb, rss_mb(pid)[0])


async def new_session(browser: object, url: str) -> Visit:
    """A new user (own context, empty browser cache) opening `url`."""
    async with fresh_context(browser) as context:
        return await visit(context, url)


def report_load(label: str, result: Load) -> None:
    """p50 / p95 latency and memory of one N."""
    name = f"{label}, {plural(result.sessions, 'session')}"
    drawn = [v.drawn_s for v in result.visits if v.drawn_s is not None]
    finished = [v.finished_s for v in result.visits if v.finished_s is not None]
    failed = len(result.visits) - len(drawn)
    note = plural(len(drawn), "load") + (f", {failed} never completed" if failed else "")
    if drawn:
        report(f"{name}: page complete p50", statistics.median(drawn), "s", note=note)
        report(f"{name}: page complete p95", percentile(drawn, P95), "s",
               note=f"script finished p50 {statistics.median(finished):.1f} s, p95 {percentile(finished, P95):.1f} s")
    else:
        report(f"{name}: page complete", None, "s", note=note)
    report(f"{name}: app RSS peak", result.peak_mb, "MB",
           note=f"{result.idle_mb:.0f} MB idle after one visit, {result.after_mb:.0f} MB after")


async def sessions_section(label: str, data_dir: Path, page: Page, counts: tuple[int, ...], rounds: int,
                           query: dict[str, str] | None = None) -> None:
    """A fresh server per N, so each N's memory is its own."""
    async with chromium() as browser:
        for n in counts:
            with served(data_dir) as (pid, url):
                started = time.perf_counter()
                result = await load(browser, page_url(url, page, query), pid, n, rounds)
                print(f"   ({label}, N={n}: {time.perf_counter() - started:.0f} s)", flush=True)
            report_load(label, result)


def server_sessions(label: str, data_dir: Path, page: Page, counts: tuple[int, ...]) -> None:
    """N AppTest sessions (own session state, the process's shared caches) rerun `page` at once."""
    from streamlit.testing.v1 import AppTest

    os.environ[DATA_DIR_ENV] = str(data_dir)
    for n in counts:
        sessions = []
        for _ in range(n):
            at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
            at.query_params.update(default_query(data_dir))
            at.run()
            at.switch_page(page.path)
            at.run()
            sessions.append(at)
        start, times = threading.Barrier(n), []

        def rerun(at: object) -> None:
            start.wait()
            began = time.perf_counter()
            at.run()
            times.append(time.perf_counter() - began)

        threads = [threading.Thread(target=rerun, args=(at,)) for at in sessions]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        name = f"{label}, {plural(n, 'session')} (server only, AppTest threads)"
        report(f"{name}: rerun p50", statistics.median(times), "s")
        report(f"{name}: rerun p95", percentile(times, P95), "s",
               note=f"process RSS {rss_mb(os.getpid())[0]:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 1, 2, 4 on the real cache, one round")
    quick = parser.parse_args().quick
    counts, rounds = (QUICK_SESSIONS, QUICK_ROUNDS) if quick else (SESSIONS, ROUNDS)
    page = next(p for p in app_pages() if p.url_path == PAGE)
    print(machine())
    with tempfile.TemporaryDirectory(prefix="cascade-sessions-bench-") as tmp:
        root = Path(tmp)
        real = real_cache(root / "real")
        if real is None:
            (root / "demo").mkdir()
        data, label = (real, "drawdowns, real 1h, 1 year") if real else (root / "demo", "drawdowns, demo market")
        asyncio.run(sessions_section(label, data, page, counts, rounds))
        server_sessions(label, data, page, (*counts, 16))
        if not quick:
            big = minute_store(root / "big", MINUTES_5Y)
            asyncio.run(sessions_section("drawdowns, 7.9M store, 1m for a year", big, page, counts, 1,
                                         default_query(big)))


if __name__ == "__main__":
    main()
