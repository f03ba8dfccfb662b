"""Archive import benchmark: one year of Binance 1-minute spot klines (525,600 rows) as the archive
ships it, 12 monthly zips (headerless 12-column CSV, µs timestamps as since 2025, a .CHECKSUM
beside each), imported into an empty cache through `python -m lib import`. Goal: under 10 s.

    .venv/bin/python bench/archive_bench.py [--workdir DIR]

Prints one line: rows, files, seconds, rows per second.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import lib  # noqa: E402, F401  (before polars: lib sets the allocator polars reads once)

import numpy as np
import polars as pl

from lib.cli import main  # noqa: E402
from lib.sources.binance_archive import archive_relpath, checksum_path  # noqa: E402
from lib.store import Store  # noqa: E402

YEAR = 2025  # not a leap year: 365 * 24 * 60 = 525,600 minutes
MINUTE_US = 60_000_000
GOAL_S = 10.0
SEED = 1


def minute_klines(year: int, seed: int) -> pl.DataFrame:
    """A seeded random walk of one-minute klines over `year`, in Binance's 12 columns (times in µs)."""
    start = pl.datetime(year, 1, 1, time_zone="UTC")
    first = pl.select(start.dt.epoch("us")).item()
    n = (pl.select(pl.datetime(year + 1, 1, 1, time_zone="UTC").dt.epoch("us")).item() - first) // MINUTE_US
    rng = np.random.default_rng(seed)
    close = 40_000 * np.exp(np.cumsum(rng.normal(0, 6e-4, n)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    wick = np.abs(rng.normal(0, 3e-4, n)) * close
    volume = rng.gamma(2.0, 4.0, n)
    open_time = first + np.arange(n, dtype=np.int64) * MINUTE_US
    return pl.DataFrame({
        "open_time": open_time, "open": open_.round(2), "high": (np.maximum(open_, close) + wick).round(2),
        "low": (np.minimum(open_, close) - wick).round(2), "close": close.round(2), "volume": volume.round(5),
        "close_time": open_time + MINUTE_US - 1, "quote_volume": (volume * close).round(8),
        "count": rng.poisson(900, n), "taker_buy_volume": (volume * rng.uniform(0.3, 0.7, n)).round(5),
        "taker_buy_quote_volume": 0.0, "ignore": 0,
    })  # fmt: skip


def write_month_zips(klines: pl.DataFrame, root: Path) -> list[Path]:
    """One zip per calendar month in the archive's tree, each with its .CHECKSUM."""
    months = klines.with_columns(month=pl.from_epoch("open_time", time_unit="us").dt.strftime("%Y-%m"))
    paths = []
    for (month,), rows in months.partition_by("month", as_dict=True, maintain_order=True).items():
        path = root / archive_relpath("spot", "klines", "BTCUSDT", "1m", month)
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{path.stem}.csv", rows.drop("month").write_csv(include_header=False))
        checksum_path(path).write_text(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n")
        paths.append(path)
    return paths


def bench(workdir: Path) -> None:
    paths = write_month_zips(minute_klines(YEAR, SEED), workdir / "archive")
    data_dir = workdir / "data"
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # one "ok" line per file
        code = main(["--data-dir", str(data_dir), "--quiet", "import", *map(str, paths)])
    seconds = time.perf_counter() - started
    rows = sum(entry["rows"] for entry in Store(data_dir).status())
    verdict = "ok" if code == 0 and seconds < GOAL_S else "OVER GOAL" if code == 0 else f"FAILED (exit {code})"
    print(f"archive import: {rows:,} one-minute rows from {len(paths)} monthly zips in {seconds:.2f} s "
          f"({rows / seconds:,.0f} rows/s; goal < {GOAL_S:.0f} s: {verdict})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="where to write the archives and the cache (default: a temp dir)")
    args = parser.parse_args()
    if args.workdir:
        bench(args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="cascade-archive-bench-") as folder:
            bench(Path(folder))
