"""Liquidity benchmarks on 3 assets x 5 years x 1-minute bars (7.9M rows, the seeded random walks
of store_bench.py, with quote volume = volume x close), side by side with the plain Parquet scan
of the columns each step reads (the floor) and the straightforward pandas way (the peer):

- aggregates: hour-of-week and day-of-week means, medians and counts of quote volume, the daily
  table and the plain weekend / weekday ratio (`with_calendar`, `aggregate`, `daily`);
- statistics: what the page tests on them (`weekend_effect` with its block bootstrap,
  `hour_of_week_tests`, `day_of_week_means`, `day_of_week_tests`);
- measures: every per-bar measure of the page (`with_measures`, EDGE off as on the page);
- issue 5's figures: hour-of-week aggregates of all those measures, with medians (mean, median, n)
  and without (mean and n), the medians alone, and 2,000
  block-bootstrap resamples (the weekend effect of every measure on the daily table, and one CI
  straight from the 2.6M one-minute values of an asset, blocked by week).

    .venv/bin/python bench/liquidity_bench.py [--quick]

Goals (issue 8): each within 3x of its floor; the aggregates at least 5x faster than pandas.
The peer gets its frame already in pandas (conversion not timed), as ours gets a polars frame.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import lib  # noqa: E402, F401  (before polars: lib sets the allocator polars reads once)

import numpy as np
import pandas as pd
import polars as pl

from drawdowns_bench import best_of, machine  # noqa: E402
from run_all import Goal, report  # noqa: E402
from store_bench import MINUTES_5Y, minute_bars  # noqa: E402

from lib.analytics import liquidity as liq  # noqa: E402
from lib.analytics import liquidity_stats as stats  # noqa: E402
from lib.schema import ASSETS, BARS, SYMBOL, TIMEFRAME, TS, conform  # noqa: E402

MINUTES_1Y = 365 * 24 * 60
MEASURE = liq.QUOTE_VOLUME
AGGREGATE_COLUMNS = (SYMBOL, TS, MEASURE)
MEASURE_COLUMNS = (SYMBOL, TIMEFRAME, TS, "open", "high", "low", "close", "volume", "quote_volume", "trades",
                   "taker_buy_volume", "volume_reliable")
FLOOR_GOAL = Goal(3, "× floor")
PEER_GOAL = Goal(5, "×", at_least=True)
BOOTSTRAP_GOAL = Goal(3, "s")
RESAMPLES = 2_000
WEEKEND_DAY = 6  # ISO weekday: Saturday and Sunday are >= 6 (the "utc" weekend)


def bars(minutes: int) -> pl.DataFrame:
    """`minutes` one-minute bars per asset in the canonical bars schema, with what Binance's bars
    have besides OHLCV: quote volume (volume x close), trades (about 40 per unit of volume) and
    taker-buy volume (30-70 % of the volume), so that every measure but EDGE (off, as on the page)
    has values."""
    walks = pl.concat([minute_bars(symbol, minutes, 10 + i) for i, symbol in enumerate(ASSETS)])
    rng = np.random.default_rng(5)
    return conform(walks.with_columns(
        quote_volume=pl.col("volume") * pl.col("close"),
        trades=pl.Series(rng.poisson(40 * walks["volume"].to_numpy()) + 1),
        taker_buy_volume=pl.col("volume") * pl.Series(rng.uniform(0.3, 0.7, walks.height)),
    ), BARS)


def scan(path: Path, columns: tuple[str, ...]) -> pl.DataFrame:
    """The floor: read `columns` and nothing else."""
    return pl.scan_parquet(path).select(columns).collect()


def weekend_ratio(days: pl.DataFrame, measure: str) -> pl.DataFrame:
    """Per symbol: mean of the weekend days' `measure` over the weekday days' (no interval)."""
    return days.group_by(SYMBOL).agg(
        (pl.col(measure).filter(pl.col(liq.WEEKEND)).mean() / pl.col(measure).filter(~pl.col(liq.WEEKEND)).mean())
        .alias("ratio")
    )


def aggregates(frame: pl.DataFrame) -> tuple[pl.DataFrame, ...]:
    """Ours: calendar keys, hour-of-week and day-of-week tables, daily rows and the weekend ratio."""
    measured = liq.with_calendar(frame)
    days = liq.daily(measured, [MEASURE])
    return (liq.aggregate(measured, liq.HOUR_OF_WEEK, [MEASURE]), liq.aggregate(measured, liq.DAY_OF_WEEK, [MEASURE]),
            days, weekend_ratio(days, MEASURE))


def pandas_aggregates(frame: pd.DataFrame) -> tuple[pd.DataFrame | pd.Series, ...]:
    """The peer: the same tables with pandas groupbys, as one would write them."""
    ts = frame[TS]
    keyed = frame.assign(weekday=ts.dt.day_of_week + 1, hour=ts.dt.hour, date=ts.dt.floor("D"))
    keyed["weekend"] = keyed["weekday"] >= WEEKEND_DAY
    stats_ = ["mean", "median", "count"]
    hour_of_week = keyed.groupby([SYMBOL, "weekday", "hour"])[MEASURE].agg(stats_)
    day_of_week = keyed.groupby([SYMBOL, "weekday"])[MEASURE].agg(stats_)
    days = keyed.groupby([SYMBOL, "date", "weekend"])[MEASURE].mean().reset_index()
    sides = days.groupby([SYMBOL, "weekend"])[MEASURE].mean().unstack()
    return hour_of_week, day_of_week, days, sides[True] / sides[False]


def statistics(measured: pl.DataFrame, days: pl.DataFrame) -> tuple[pl.DataFrame, ...]:
    """What the page tests: the weekend effect (bootstrap CI, three tests), the 168 hour-of-week
    cells (Mann-Whitney + BH), and the day-of-week means and tests (HAC)."""
    return (stats.weekend_effect(days, [MEASURE]), stats.hour_of_week_tests(measured, MEASURE),
            stats.day_of_week_means(days, MEASURE), stats.day_of_week_tests(days, MEASURE))


def compare(label: str, ours: float, floor: float, peer: float | None = None) -> None:
    """Report ours, ours against the floor and (when there is one) the peer against ours."""
    report(f"liquidity: {label}", ours, "s")
    report(f"liquidity: {label} / floor", ours / floor, "×", FLOOR_GOAL)
    if peer is not None:
        report(f"liquidity: pandas peer for {label}", peer, "s")
        report(f"liquidity: {label}, faster than pandas", peer / ours, "×", PEER_GOAL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 year of minutes instead of 5")
    minutes = MINUTES_1Y if parser.parse_args().quick else MINUTES_5Y
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bars_1m.parquet"
        frame = bars(minutes)
        frame.write_parquet(path, compression="zstd")
        print(f"dataset: {frame.height:,} one-minute bars ({len(ASSETS)} assets x {minutes // MINUTES_1Y} years), "
              f"{path.stat().st_size / 2**20:.0f} MB of Parquet")
        narrow_floor, narrow = best_of(lambda: scan(path, AGGREGATE_COLUMNS))
        wide_floor, _ = best_of(lambda: scan(path, MEASURE_COLUMNS))
    report(f"liquidity: floor, scan of {', '.join(AGGREGATE_COLUMNS)} ({frame.height:,} rows)", narrow_floor, "s")
    report(f"liquidity: floor, scan of the {len(MEASURE_COLUMNS)} bar columns", wide_floor, "s")

    ours_s, (_, _, days, _) = best_of(lambda: aggregates(narrow))
    as_pandas = narrow.to_pandas()
    peer_s, _ = best_of(lambda: pandas_aggregates(as_pandas), repeats=2)
    compare("aggregates (hour-of-week, day-of-week, daily, ratio)", ours_s, narrow_floor, peer_s)

    measured = liq.with_calendar(narrow)
    stats_s, _ = best_of(lambda: statistics(measured, days), repeats=2)
    compare("statistics (bootstrap CI, tests, 168 cells)", stats_s, narrow_floor)

    measures_s, every = best_of(lambda: liq.with_measures(frame, with_edge=False), repeats=2)
    compare("per-bar measures (with_measures, 13 measures, no EDGE)", measures_s, wide_floor)
    calendar = liq.with_calendar(every)
    hour_of_week_all(calendar)
    bootstrap(calendar)


def hour_of_week_all(measured: pl.DataFrame) -> None:
    """Issue 5's figure: hour-of-week mean, median and n of every per-bar measure, against the scan
    of those columns (floor) and pandas' groupby on the same frame (peer)."""
    names = [m for m in liq.MEASURES if m in measured.columns and measured[m].dtype.is_numeric()]
    keys = [SYMBOL, *liq.HOUR_OF_WEEK]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "measured.parquet"
        measured.select(*keys, *names).write_parquet(path)
        floor, _ = best_of(lambda: scan(path, (*keys, *names)))
    as_pandas = measured.select(*keys, *names).to_pandas()
    for with_median, stats_ in ((True, ("mean", "median", "count")), (False, ("mean", "count"))):
        ours_s, _ = best_of(lambda: liq.aggregate(measured, liq.HOUR_OF_WEEK, names, with_median=with_median))
        peer_s, _ = best_of(lambda: pandas_hour_of_week(as_pandas, keys, names, stats_), repeats=3)
        label = "mean, median, n" if with_median else "mean and n, no median"
        compare(f"hour-of-week aggregates of all {len(names)} measures ({label})", ours_s, floor, peer_s)
    ours_s, _ = best_of(lambda: measured.group_by(keys).agg(pl.col(names).median()))
    peer_s, _ = best_of(lambda: as_pandas.groupby(keys)[names].median(), repeats=3)
    report(f"liquidity: hour-of-week medians alone ({len(names)} measures), faster than pandas", peer_s / ours_s, "×",
           note=f"polars {ours_s:.2f} s, pandas {peer_s:.2f} s")


def bootstrap(measured: pl.DataFrame) -> None:
    """Issue 5's figure: 2,000 block-bootstrap resamples, (1) for the weekend effect of every
    measure of every asset on the daily table, as the page computes it (3 x 13 intervals, each with
    its tests), and (2) for one interval straight from one asset's one-minute bars, blocked by week."""
    names = [m for m in liq.MEASURES if m in measured.columns and measured[m].dtype.is_numeric()]
    days = liq.daily(measured, names)
    effect_s, _ = best_of(lambda: stats.weekend_effect(days, names, n_resamples=RESAMPLES), repeats=2)
    report(f"liquidity: weekend effect of {len(names)} measures x {len(ASSETS)} assets, {RESAMPLES:,} resamples "
           f"each ({days.height:,} days)", effect_s, "s", BOOTSTRAP_GOAL)
    one = measured.filter(pl.col(SYMBOL) == ASSETS[0])
    values, weekend = one[MEASURE].to_numpy(), one[liq.WEEKEND].to_numpy()
    weeks = one[liq.WEEK].to_physical().to_numpy()
    minute_s, _ = best_of(lambda: stats.bootstrap_ratio_ci(values, weekend, weeks, n_resamples=RESAMPLES), repeats=2)
    report(f"liquidity: {RESAMPLES:,} weekly-block resamples of {one.height:,} one-minute {ASSETS[0]} bars", minute_s,
           "s", BOOTSTRAP_GOAL)


def pandas_hour_of_week(frame: pd.DataFrame, keys: list[str], names: list[str],
                        stats_: tuple[str, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The peer: `stats_` per cell, and the root mean square of the volatilities (as `liq.pooled`
    pools them)."""
    grouped = frame.groupby(keys)
    volatilities = [m for m in names if liq.MEASURES[m].pooling == "rms"]
    return grouped[names].agg(list(stats_)), (frame[volatilities] ** 2).groupby(
        [frame[k] for k in keys]).mean() ** 0.5


if __name__ == "__main__":
    main()
