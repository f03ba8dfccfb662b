"""Liquidation benchmarks on one year of a seeded random-walk market (the 1-minute bars of
store_bench.py, and hourly bars made from them):

- estimated liquidation levels for a year of hourly bars with hourly open interest, ~200 buckets,
  and their range over other assumptions (9 answers, as the page's fragility table), also on a
  year of 1-minute bars;
- the realised heatmap of a year of 1-minute liquidation totals, placed by each minute's range
  and summed into hourly rows (as the page does with ``every="1h"``);
- the page's replay of a 20-day window of hourly bars (60 days of warm-up before it, as the page
  loads): the model re-run at 60 steps, each with its range over the 9 assumption sets, and the
  animated figure's JSON;
- the size of that heatmap's figure JSON (what Streamlit sends to the browser) with the price line
  the page draws over it (hourly or 1-minute, min-max decimated to the screen by
  `lib.charts.downsample.minmax`), and with all 525,600 minutes undecimated for contrast.

    .venv/bin/python bench/liquidations_bench.py

Prints one line per figure. Goals: levels < 1 s, heatmap < 0.5 s (issue 6), figure < 1.5 MB (issue 8; issue 6 asks < 2 MB).
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import lib  # noqa: E402, F401  (before polars: lib sets the allocator polars reads once)

import numpy as np
import plotly.graph_objects as go
import polars as pl

from drawdowns_bench import best_of, machine  # noqa: E402
from store_bench import minute_bars  # noqa: E402

from lib.analytics.liquidation_levels import SPLIT_RULES, TILTS, WARM_UP, estimate_levels  # noqa: E402
from lib.analytics.liquidations import nice_bucket_usd, realised_heatmap  # noqa: E402
from lib.charts.liquidations import realised_heatmap_figure  # noqa: E402
from lib.charts.downsample import minmax  # noqa: E402
from lib.schema import TS  # noqa: E402
from lib.views import LiquidationOptions, replay, sensitivity  # noqa: E402

MINUTES_1Y = 365 * 24 * 60
SEED = 21
OI_USD = 8e9  # open interest the walk starts from
OI_HOURLY_SIGMA = 0.01
LONG_MEAN_USD, SHORT_MEAN_USD = 20_000.0, 15_000.0  # mean liquidated USD per minute
QUIET_MINUTES = 0.6  # share of minutes with no liquidation at all
LEVEL_BUCKETS = 200
GOALS = {"levels": 1.0, "heatmap": 0.5, "figure_mb": 1.5}


def hourly(bars: pl.DataFrame) -> pl.DataFrame:
    """1-minute bars summed into hourly bars."""
    return bars.group_by_dynamic(TS, every="1h").agg(
        pl.col("exchange", "symbol").first(),
        pl.col("open").first(),
        pl.col("high").max(),
        pl.col("low").min(),
        pl.col("close").last(),
        pl.col("volume").sum(),
    ).with_columns(timeframe=pl.lit("1h"))


def open_interest(bars: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """A random walk of open interest (USD), one value per bar."""
    walk = OI_USD * np.exp(np.cumsum(rng.normal(0, OI_HOURLY_SIGMA, bars.height)))
    return bars.select(TS, pl.Series("open_interest_usd", walk))


def minute_totals(bars: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Liquidated USD per minute and side: exponential sizes, none in `QUIET_MINUTES` of minutes."""
    n = bars.height
    active = rng.random(n) >= QUIET_MINUTES
    return bars.select(
        "exchange", "symbol", TS,
        pl.Series("long_usd", np.where(active, rng.exponential(LONG_MEAN_USD, n), 0.0)),
        pl.Series("short_usd", np.where(active, rng.exponential(SHORT_MEAN_USD, n), 0.0)),
    ).with_columns(timeframe=pl.lit("1m"))


def verdict(value: float, goal: float, unit: str) -> str:
    return f"{value:.3f} {unit}; goal < {goal:g} {unit} {'met' if value < goal else 'NOT met'}"


def level_bucket_usd(hours: pl.DataFrame, oi: pl.DataFrame) -> float:
    """The bucket size giving `LEVEL_BUCKETS` buckets over the span of the estimate's levels."""
    grid = estimate_levels(hours, oi).density
    return grid.price.size * grid.bucket_usd / LEVEL_BUCKETS


def replay_window(hours: pl.DataFrame, oi: pl.DataFrame, totals: pl.DataFrame) -> go.Figure:
    """`views.replay` of the year's last 20 days, on the bars and open interest the page loads for
    them (from `WARM_UP` before), with the window's liquidation totals summed into hours."""
    since = hours[TS].max() - timedelta(days=20)
    loaded = pl.col(TS) >= since - WARM_UP
    hourly_totals = totals.filter(pl.col(TS) >= since).group_by_dynamic(TS, every="1h").agg(
        pl.col("long_usd", "short_usd").sum())
    bars = hours.filter(loaded)
    return replay(bars, since, hourly_totals, oi.filter(loaded), LiquidationOptions(),
                  nice_bucket_usd(bars["low"].min(), bars["high"].max()))


def main() -> None:
    print(machine())
    rng = np.random.default_rng(SEED)
    minutes = minute_bars("BTC", MINUTES_1Y, SEED)
    hours = hourly(minutes)
    oi = open_interest(hours, rng)
    totals = minute_totals(minutes, rng)

    level_bucket = level_bucket_usd(hours, oi)
    levels_s, estimate = best_of(lambda: estimate_levels(hours, oi, bucket_usd=level_bucket))
    print(f"estimated levels, {hours.height:,} hourly bars x {estimate.density.price.size} buckets of "
          f"{level_bucket:.0f} USD: {verdict(levels_s, GOALS['levels'], 's')}")

    sensitivity_s, _ = best_of(lambda: sensitivity(hours, oi, level_bucket, LiquidationOptions(), hours[TS].max()),
                               repeats=2)
    print(f"range over other assumptions (views.sensitivity: {len(SPLIT_RULES) * len(TILTS)} answers from "
          f"{len(SPLIT_RULES)} runs of the levels above): {sensitivity_s:.2f} s")
    minute_s, _ = best_of(lambda: sensitivity(minutes, oi.clear(), level_bucket, LiquidationOptions(),
                                              minutes[TS].max()), repeats=2)
    print(f"the same on a year of 1-minute bars ({minutes.height:,}, no open interest): {minute_s:.2f} s")

    replay_s, replayed = best_of(lambda: replay_window(hours, oi, totals), repeats=2)
    print(f"replay of 20 days of hourly bars (60 steps, each with its range): {replay_s:.2f} s, figure JSON "
          f"{len(replayed.to_json()) / 1e6:.2f} MB")

    bucket = nice_bucket_usd(minutes["low"].min(), minutes["high"].max())
    heatmap_s, realised = best_of(lambda: realised_heatmap(totals, minutes, bucket_usd=bucket, every="1h"))
    print(f"realised heatmap, {totals.height:,} one-minute totals into {len(realised.ts):,} hourly rows x "
          f"{realised.price.size} buckets of {bucket:g} USD: {verdict(heatmap_s, GOALS['heatmap'], 's')}")

    lines = (("hourly", minmax(hours, "close")), ("1-minute min-max", minmax(minutes, "close")),
             ("1-minute raw (not what the page sends)", minutes))
    for label, price in lines:
        size_mb = len(realised_heatmap_figure(realised, price).to_json()) / 1e6
        print(f"realised heatmap figure JSON with the {label} price line ({price.height:,} points): "
              f"{verdict(size_mb, GOALS['figure_mb'], 'MB')}")


if __name__ == "__main__":
    main()
