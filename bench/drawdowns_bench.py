"""Drawdown benchmarks: episodes and desk metrics for 3 assets x 5 years x 1-minute bars (7.9M rows,
the seeded random walks of store_bench.py), side by side with quantstats' `drawdown_details` on
the same series, and the plain Parquet scan of the columns read (the floor).

    .venv/bin/python bench/drawdowns_bench.py

Prints one line per figure. Goals (issue 4): under 1 s, and at least 20x faster than quantstats.
quantstats is timed once per asset (it takes seconds); ours is the best of `REPEATS`.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import lib  # noqa: E402, F401  (before polars: lib sets the allocator polars reads once)

import pandas as pd
import polars as pl

from store_bench import MINUTES_5Y, minute_bars  # noqa: E402

from lib.analytics import drawdowns as dd  # noqa: E402
from lib.schema import ASSETS, SYMBOL, TS  # noqa: E402

REPEATS = 5
COLUMNS = (SYMBOL, TS, dd.CLOSE)
GOAL_S = 1.0
GOAL_RATIO = 20.0

T = TypeVar("T")


def best_of(run: Callable[[], T], repeats: int = REPEATS) -> tuple[float, T]:
    """The fastest of `repeats` runs in seconds, and the last result."""
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        timings.append(time.perf_counter() - started)
    return min(timings), result


def machine() -> str:
    """The context of the figures: cores, and how busy the machine was."""
    return f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"


def write_dataset(path: Path) -> int:
    """3 assets x 5 years of 1-minute bars in one Parquet file; returns the row count."""
    bars = pl.concat([minute_bars(symbol, MINUTES_5Y, 10 + i) for i, symbol in enumerate(ASSETS)])
    bars.write_parquet(path, compression="zstd")
    return bars.height


def scan(path: Path) -> pl.DataFrame:
    return pl.scan_parquet(path).select(COLUMNS).collect()


def ours(bars: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Episodes and desk metrics of every symbol."""
    frame = dd.with_drawdown(bars)
    table = dd.episodes(frame)
    return table, dd.desk_metrics(frame, table=table)


def quantstats_details(bars: pl.DataFrame) -> list[pd.DataFrame]:
    """quantstats' drawdown series and drawdown table of each symbol (what it offers for episodes)."""
    import quantstats as qs

    tables = []
    for (_,), series in bars.partition_by(SYMBOL, as_dict=True, maintain_order=True).items():
        prices = pd.Series(series[dd.CLOSE].to_numpy(), index=pd.DatetimeIndex(series[TS].to_list()))
        tables.append(qs.stats.drawdown_details(qs.stats.to_drawdown_series(prices)))
    return tables


def main() -> None:
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bars_1m.parquet"
        rows = write_dataset(path)
        floor, bars = best_of(lambda: scan(path))
        print(f"dataset: {rows:,} one-minute bars ({len(ASSETS)} assets x 5 years), "
              f"{path.stat().st_size / 2**20:.0f} MB of Parquet")
        print(f"floor: Parquet scan of {', '.join(COLUMNS)}: {floor:.3f} s")
        end_to_end, _ = best_of(lambda: ours(scan(path)))
        print(f"scan + episodes + desk metrics: {end_to_end:.3f} s")

    elapsed, (table, metrics) = best_of(lambda: ours(bars))
    verdict = "met" if elapsed < GOAL_S else "NOT met"
    print(f"episodes + desk metrics, all {len(ASSETS)} assets, from memory: {elapsed:.3f} s "
          f"({table.height:,} episodes); goal < {GOAL_S:g} s {verdict}")
    frame_s, frame = best_of(lambda: dd.with_drawdown(bars))
    episodes_s, table = best_of(lambda: dd.episodes(frame))
    metrics_s, _ = best_of(lambda: dd.desk_metrics(frame, table=table))
    print(f"  of which with_drawdown {frame_s:.3f} s, episodes {episodes_s:.3f} s, desk_metrics {metrics_s:.3f} s")

    try:
        import quantstats  # noqa: F401
    except ImportError:
        print("quantstats: not installed (pip install quantstats==0.0.86), no ratio")
        return
    theirs, tables = best_of(lambda: quantstats_details(bars), repeats=2)  # the best of each side
    ratio = theirs / elapsed
    verdict = "met" if ratio >= GOAL_RATIO else "NOT met"
    print(f"quantstats 0.0.86 to_drawdown_series + drawdown_details, same {len(ASSETS)} series: {theirs:.3f} s "
          f"({sum(len(t) for t in tables):,} episodes)")
    print(f"ratio: ours {ratio:.1f}x faster (episodes + metrics against its episodes alone); "
          f"goal >= {GOAL_RATIO:g}x {verdict}")


if __name__ == "__main__":
    main()
