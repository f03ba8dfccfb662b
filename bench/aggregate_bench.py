"""Aggregation benchmark: synthetic trades in Binance's daily files (Parquet) -> 1-minute bars, three ways:
streamed on this machine (what `python -m lib aggregate trades` does), an eager collect of every trade
into memory first, and partition-parallel on a Dask LocalCluster (2 worker processes, 1 thread each).

    .venv/bin/python bench/aggregate_bench.py [--rows 20000000] [--quick] [--workdir DIR]

Each way runs in a fresh process, so each peak RSS is its own (the Dask workers' memory is theirs
and not counted). The three results are checked equal before the figures are reported.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import lib  # noqa: E402, F401  (before polars: lib sets the allocator polars reads once)

import numpy as np
import polars as pl
from polars.testing import assert_frame_equal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from run_all import Goal, report  # noqa: E402

from lib.aggregate import aggregate, dask_client, trade_bars, trade_file  # noqa: E402
from lib.schema import BARS, conform  # noqa: E402

PAIRS = ("BTCUSDT", "ETHUSDT")
DAYS = 10
FIRST_DAY = datetime(2024, 3, 1, tzinfo=timezone.utc)
TIMEFRAME = "1m"
WORKERS = 2
WAYS = ("streaming", "eager", "dask")
STREAMING_RSS_GOAL_MB = 1024


def write_trades(folder: Path, rows: int) -> list[Path]:
    """rows trades split evenly over PAIRS x DAYS daily files (id, price, qty, quote_qty, time, is_buyer_maker)."""
    per_file = rows // (len(PAIRS) * DAYS)
    rng = np.random.default_rng(8)
    paths = []
    for pair_index, pair in enumerate(PAIRS):
        for day in range(DAYS):
            start_ms = int((FIRST_DAY + timedelta(days=day)).timestamp() * 1000)
            price = 30_000 / (pair_index + 1) * np.exp(np.cumsum(rng.normal(0, 2e-5, per_file)))
            qty = rng.exponential(0.05, per_file)
            path = folder / f"{pair}-trades-{FIRST_DAY + timedelta(days=day):%Y-%m-%d}.parquet"
            pl.DataFrame({
                "id": np.arange(per_file) + day * per_file,
                "price": price, "qty": qty, "quote_qty": price * qty,
                "time": start_ms + np.sort(rng.integers(0, 86_400_000, per_file)),
                "is_buyer_maker": rng.random(per_file) < 0.5,
            }).write_parquet(path)  # fmt: skip
            paths.append(path)
    return paths


def measure(way: str, inputs: list[Path], out: Path) -> None:
    """Aggregate `inputs` one way, write the bars to `out`, print seconds and this process's peak RSS as JSON."""
    sources = [trade_file(path) for path in inputs]
    started = time.perf_counter()
    if way == "streaming":
        bars = aggregate("trades", sources, TIMEFRAME)
    elif way == "eager":
        with tempfile.TemporaryDirectory() as folder:
            trades = pl.concat([source.scan(Path(folder), None) for source in sources]).collect()
        bars = conform(trade_bars(trades.lazy(), TIMEFRAME).collect(), BARS).sort("exchange", "symbol", "ts")
    else:
        with dask_client("local", WORKERS) as client:
            ready = time.perf_counter()
            bars = aggregate("trades", sources, TIMEFRAME, client)
            print(f"(LocalCluster started in {ready - started:.1f} s)", file=sys.stderr)
    seconds = time.perf_counter() - started
    bars.write_parquet(out)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "bars": bars.height}))


def run_way(way: str, inputs: list[Path], out: Path) -> dict:
    command = [sys.executable, __file__, "--measure", way, "--out", str(out), *map(str, inputs)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--quick", action="store_true", help="2M trades instead of 20M")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--measure", choices=WAYS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("inputs", nargs="*", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.inputs, args.out)
        return
    rows = 2_000_000 if args.quick else args.rows
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        folder = Path(tmp)
        inputs = write_trades(folder, rows)
        size_mb = sum(p.stat().st_size for p in inputs) / 2**20
        print(f"{rows:,} trades in {len(inputs)} daily Parquet files ({size_mb:.0f} MB) -> {TIMEFRAME} bars")
        figures = {way: run_way(way, inputs, folder / f"{way}.parquet") for way in WAYS}
        results = {way: pl.read_parquet(folder / f"{way}.parquet") for way in WAYS}
    for way in ("eager", "dask"):
        assert_frame_equal(results[way], results["streaming"], check_exact=False, rel_tol=1e-12)
    print(f"the three results are equal ({figures['streaming']['bars']:,} bars)")
    millions = f"{rows / 1e6:g}M trades"
    report(f"aggregate: streaming, {millions} -> {TIMEFRAME} bars", figures["streaming"]["seconds"], "s")
    report("aggregate: streaming, peak RSS", figures["streaming"]["peak_mb"], "MB",
           Goal(STREAMING_RSS_GOAL_MB, "MB"))
    report(f"aggregate: eager collect, {millions}", figures["eager"]["seconds"], "s")
    report("aggregate: eager collect, peak RSS", figures["eager"]["peak_mb"], "MB")
    report(f"aggregate: Dask LocalCluster ({WORKERS} workers), {millions}, with cluster start",
           figures["dask"]["seconds"], "s")


if __name__ == "__main__":
    main()
