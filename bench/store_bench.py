"""Store benchmarks: import of 1M one-minute rows, and reading one asset's closes for a date
range from 3 assets x 5 years x 1-minute bars (7.9M rows), with the read's peak memory.

    .venv/bin/python bench/store_bench.py [--workdir DIR]

Prints one line per figure. The read is timed in a fresh process so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import lib  # noqa: E402, F401  (before polars: lib sets the allocator polars reads once)

import numpy as np
import polars as pl

from lib.schema import ASSETS, BARS  # noqa: E402
from lib.sources.files import read_import  # noqa: E402
from lib.store import Store  # noqa: E402

MINUTES_5Y = 5 * 365 * 24 * 60  # 2,628,000 per asset, 7,884,000 for three
START = datetime(2021, 1, 1, tzinfo=timezone.utc)
READ_RANGE = (datetime(2023, 3, 1, tzinfo=timezone.utc), datetime(2023, 9, 1, tzinfo=timezone.utc))
REPEATS = 5


def minute_bars(symbol: str, n: int, seed: int) -> pl.DataFrame:
    """A random walk of `n` one-minute bars (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 8e-4, n)))
    spread = np.abs(rng.normal(0, 5e-4, n)) * close
    return pl.DataFrame(
        {
            "exchange": "bench",
            "symbol": symbol,
            "timeframe": "1m",
            "ts": pl.Series(np.arange(n, dtype="int64") * 60_000_000 + int(START.timestamp() * 1e6)).cast(
                pl.Datetime("us", "UTC")
            ),
            "open": close,
            "high": close + spread,
            "low": close - spread,
            "close": close,
            "volume": rng.gamma(2.0, 5.0, n),
        }
    )


def bench_import(workdir: Path) -> None:
    csv = workdir / "bench_BTCUSDT_1m.csv"
    minute_bars("BTC", 1_000_000, 1).select(
        timestamp=pl.col("ts").dt.epoch("ms"), open="open", high="high", low="low", close="close", volume="volume"
    ).write_csv(csv)
    store = Store(workdir / "import")
    started = time.perf_counter()
    imported = read_import(csv, "bars", "coinbase", "BTC", "1m")
    parsed = time.perf_counter()
    store.write(imported.dataset, imported.frame, source="bench")
    done = time.perf_counter()
    print(f"import 1,000,000 one-minute rows (CSV): {done - started:.2f} s "
          f"(parse {parsed - started:.2f} s, store {done - parsed:.2f} s); goal < 5 s")


def build_big_store(root: Path) -> None:
    store = Store(root)
    for i, symbol in enumerate(ASSETS):
        store.write(BARS, minute_bars(symbol, MINUTES_5Y, 10 + i), source="bench")
    rows = sum(e["rows"] for e in store.status())
    print(f"built store: {rows:,} rows, {sum(f.stat().st_size for f in root.rglob('*.parquet')) / 2**20:.0f} MB on disk")


def read_closes(root: Path) -> None:
    """Runs in its own process: time the read, then report this process's peak RSS."""
    lo, hi = READ_RANGE
    timings = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        closes = (
            Store(root).scan(BARS, symbol="ETH")
            .filter(pl.col("ts").is_between(lo, hi, closed="left"))
            .select("ts", "close")
            .collect()
        )
        timings.append(time.perf_counter() - started)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"read ETH closes {lo:%Y-%m-%d}..{hi:%Y-%m-%d} ({closes.height:,} rows) from 7.9M: "
          f"best {min(timings):.3f} s, first {timings[0]:.3f} s of {REPEATS}; goal < 0.5 s; "
          f"peak RSS of the reading process {peak_mb:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--read-only-from", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.read_only_from:
        read_closes(args.read_only_from)
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        bench_import(workdir)
        build_big_store(workdir / "big")
        subprocess.run([sys.executable, __file__, "--read-only-from", str(workdir / "big")], check=True)


if __name__ == "__main__":
    main()
