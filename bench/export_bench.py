"""Export benchmarks: "Export all charts" of each page, as the page's button builds it (every chart
to PNG at 2x with kaleido and the system Chromium, plus the standalone HTML, then the zip).

On the real cache imported from ../shared/data (as `make sample-data` does), else the demo market,
for each page's default view (the last year of the preferred exchange). *Cold* is the first export
of the process (kaleido starts Chromium); *warm* is the median of the next `WARM_RUNS`. The page's
figures are built once before timing, as the page has them already when the button is pressed.

    .venv/bin/python bench/export_bench.py

Goal (issue 7): "Export all charts" for one page under 5 s warm.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drawdowns_bench import machine  # noqa: E402
from pages_bench import real_cache  # noqa: E402
from run_all import Goal, report  # noqa: E402

from lib import export  # noqa: E402
from lib.config import load_settings  # noqa: E402
from lib.refresh import write_demo_market  # noqa: E402
from lib.store import Store  # noqa: E402
from lib.viewstate import choices_from_status  # noqa: E402
from lib.views import PAGES, PageExport, badge_maker, page_exports  # noqa: E402

WARM_RUNS = 3
EXPORT_GOAL = Goal(5, "s")


def export_all(made: PageExport, page: str) -> bytes:
    """The zip the page's "Export all charts" button offers."""
    return export.zip_bytes(export.bundle(made.figures, made.footers, f"Cascade: {page}", assumptions=made.assumptions))


def timed(run: object) -> tuple[float, bytes]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def main() -> None:
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        root = real_cache(Path(tmp) / "real")
        store = Store(root) if root else Store(Path(tmp) / "demo")
        if root is None:
            write_demo_market(store)
        label = "real cache" if root else "demo market (../shared/data absent)"
        settings = load_settings(data_dir=store.root)
        view = choices_from_status(store.status(), settings.assets, settings.default_exchange).default()
        print(f"{label}: {', '.join(view.assets)} {view.exchange} {view.timeframe} {view.start} .. {view.end}")
        badge = badge_maker(store.status(), view, is_demo=root is None)
        for page in PAGES:
            made = page_exports(store.read, badge, page, view)
            cold, _ = timed(lambda: export_all(made, page))
            warm_runs = [timed(lambda: export_all(made, page)) for _ in range(WARM_RUNS)]
            warm = statistics.median(seconds for seconds, _ in warm_runs)
            size_mb = len(warm_runs[-1][1]) / 1e6
            note = f"{len(made.figures)} charts, zip {size_mb:.1f} MB"
            report(f"export all, {page} page, cold (first export of the process)", cold, "s", note=note)
            report(f"export all, {page} page, warm (median of {WARM_RUNS})", warm, "s", EXPORT_GOAL, note=note)


if __name__ == "__main__":
    main()
