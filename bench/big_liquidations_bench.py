"""The Liquidations page on a year of 1-minute bars: what its first run costs on a cold server.

The level model's grids are (bars x price buckets), about 105M cells for a year of 1m bars, and the
page runs the model for every asset of the view (the others only for their largest cell, which the
shared colour scale needs). Each case runs in its own process (a cold server: empty caches) under
AppTest on the bench's minute store (2021 of 3 assets x 5 years of 1m bars), and reports the run's
time and the process's peak RSS, for the view's three assets and for one alone.

    .venv/bin/python bench/big_liquidations_bench.py
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drawdowns_bench import machine  # noqa: E402
from pages_bench import MINUTES_1Y, default_query, minute_store  # noqa: E402
from run_all import report  # noqa: E402

APP = Path(__file__).resolve().parent.parent / "app.py"
PAGE = "pages/liquidations.py"


def one_run(data_dir: Path, assets: str | None) -> None:
    """In this process: the page once for the default view (or `assets` only); prints a JSON line."""
    from streamlit.testing.v1 import AppTest

    os.environ["CASCADE_DATA_DIR"] = str(data_dir)
    at = AppTest.from_file(str(APP), default_timeout=1800)
    at.query_params.update(default_query(data_dir) | ({"assets": assets} if assets else {}))
    started = time.perf_counter()
    at.switch_page(PAGE).run()
    seconds, peak_mb = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    errors = [e.message[:200] for e in at.exception] + [e.value[:200] for e in at.error]
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "errors": errors}))


def main() -> None:
    print(machine())
    with tempfile.TemporaryDirectory(prefix="cascade-big-liquidations-") as tmp:
        store = minute_store(Path(tmp) / "big", MINUTES_1Y)
        for label, assets in (("3 assets", None), ("1 asset", "BTC")):
            command = [sys.executable, __file__, "--one", str(store), *([assets] if assets else [])]
            line = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            run = json.loads(line)
            failed = f"; the page showed: {run['errors'][0]}" if run["errors"] else ""
            report(f"liquidations, a year of 1m bars, {label}: first run on a cold server", run["seconds"], "s",
                   note=f"peak RSS {run['peak_mb']:,.0f} MB{failed}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        one_run(Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
    else:
        main()
