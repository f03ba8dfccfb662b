"""Overview benchmark: how fast the default page renders, cold and warm, through AppTest.

    .venv/bin/python bench/overview_bench.py [--demo]

Builds a cache in a temporary folder from ../shared/data (the hourly Binance bars of BTC, ETH and
SOL, Coinglass liquidation totals, funding) as tests/test_app.py does, or uses the demo market with
`--demo` or when that data is absent; then runs the app once (cold: reads, analytics, the story
chart) and reruns it `REPEATS` times in the same session (warm: the cached overview). Goal (issue
9): a warm rerun under 0.3 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from run_all import Goal, report  # noqa: E402

from lib.config import PROJECT_ROOT  # noqa: E402
from lib.sources.files import read_import  # noqa: E402
from lib.store import Store  # noqa: E402

SHARED = PROJECT_ROOT.parent / "shared" / "data"
FILES = (  # the REST bars first, then the richer archive files over them, as tests/test_app.py imports them
    "ohlcv/binance_spot_*USDT_1h_ohlcv.parquet",
    "ohlcv/binance_spot_*USDT_1h.parquet",
    "liquidations/coinglass_BTC_liquidations_agg_1h.parquet",
    "derivatives/binance_usdm_*USDT_funding_rate.parquet",
)
REPEATS = 10
TIMEOUT_S = 300
WARM_GOAL = Goal(0.3, "s")


def build_cache(root: Path) -> int:
    """Import `FILES` from ../shared/data into a store at `root`; return the rows stored."""
    store = Store(root)
    added = 0
    for pattern in FILES:
        for path in sorted(SHARED.glob(pattern)):
            imported = read_import(path)
            added += store.write(imported.dataset, imported.frame, source=f"file:{path.name}")
    return added


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def import_app() -> None:
    """What app.py's first run would otherwise import (seconds on a busy machine); not lib.ui,
    whose caches must be made inside the app's runtime."""
    import streamlit  # noqa: F401

    import lib.brief  # noqa: F401


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true", help="the demo market instead of ../shared/data")
    args = parser.parse_args()
    demo = args.demo or not SHARED.is_dir()
    with tempfile.TemporaryDirectory(prefix="cascade-overview-bench-") as tmp:
        root = Path(tmp)
        if not demo:
            print(f"cache: {build_cache(root):,} rows imported from {SHARED}", flush=True)
        os.environ["CASCADE_DATA_DIR"] = str(root)
        report("overview: importing the app's modules (streamlit, polars, scipy, statsmodels, plotly)",
               timed(import_app), "s")
        from streamlit.testing.v1 import AppTest

        app = AppTest.from_file(str(PROJECT_ROOT / "app.py"), default_timeout=TIMEOUT_S)
        data = "demo market" if demo else "real cache"
        report(f"overview: cold first run ({data})", timed(app.run), "s")
        if app.exception:
            raise SystemExit(f"the overview failed: {app.exception[0].message}")
        warm = [timed(app.run) for _ in range(REPEATS)]
        report(f"overview: warm rerun, median of {REPEATS} ({data})", statistics.median(warm), "s", WARM_GOAL)
        report(f"overview: warm rerun, best of {REPEATS} ({data})", min(warm), "s")


if __name__ == "__main__":
    main()
