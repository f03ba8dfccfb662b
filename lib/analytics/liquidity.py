"""Weekend against weekday liquidity: per-bar measures, calendar keys and aggregates, in pure polars.

Pipeline (each step a pure function; inputs are never mutated)::

    bars ─with_measures─▶ per-bar measures ─with_calendar─▶ + weekend, weekday, hour, date, week, …
         ─aggregate(by=HOUR_OF_WEEK | DAY_OF_WEEK | (WEEKEND,) | (REGIME, WEEKEND) | (YEAR, …))
         ─daily─▶ one row per symbol, local date and weekend flag: the input of `liquidity_stats`

`depth_measures` turns the canonical `depth` dataset into the same kind of per-row measures, so the
calendar, the aggregates and the statistics work on it unchanged.

Measures (`MEASURES`: the name is the column; every value a fraction, a count, base units or USD):

- volume, quote_volume, trades: per bar, as the source reports them;
- volume_share: the bar's share of its UTC week's (Monday 00:00) base volume, Kaiko's metric; null
  in weeks with less than `MIN_WEEK_COVERAGE` of their bars (the first and last, outages);
- amihud: Amihud (2002) illiquidity ``|r_t| / quote_volume_t``, scaled by `AMIHUD_SCALE` (the
  absolute return per USD 1 M traded);
- edge_spread, cs_spread, ar_spread, roll_spread: effective-spread estimators from OHLC (fractions
  of price, 0.001 = 10 bps), see each function;
- realized_vol, parkinson_vol, garman_klass_vol: per-bar volatility (fraction per bar);
- taker_buy_share: taker-buy base volume / base volume, where the bars have it.

Bars with ``volume_reliable == False`` (e.g. a source whose volume is known to be unusable) get null
in every volume-based measure (volume, quote_volume, trades, volume_share, amihud,
taker_buy_share): they are left out of those aggregates, not counted as zero, and the ``n`` column
of `aggregate` shows how many bars each value rests on. A null flag counts as reliable.

Returns ``r_t = ln(close_t / close_{t-1})`` and every two-bar estimator are null when the previous
bar is missing (a data gap longer than one bar, or the first bar of a symbol): a move across an
outage is not one bar's move.

A bar belongs to the weekend or weekday, day and hour by its open time (``ts``).

Caveat on the OHLC spread estimators: on a pair as liquid as Binance BTCUSDT the true spread is a
fraction of a basis point, far below what hourly ranges can resolve, so Corwin-Schultz, Abdi-Ranaldo
and Roll mostly track volatility there (≈ 20 bp on 2024-2025 hourly bars, and 40 % lower at
weekends, like volatility). EDGE is built to separate the two and reads ≈ 0.2 bp. Quoted spreads
from the `depth` dataset, where they exist, are the direct measure.

Events: `weekend_moves` (Friday close → Monday open, per weekend) and `event_comparison` (each
measure in an event window against the same hours of the weeks before; defaults `CASCADES`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import polars as pl
import polars.selectors as cs
from bidask import edge_rolling

from lib.analytics.sessions import WEEKENDS, is_weekend
from lib.schema import SYMBOL, TIMEFRAME, TIMEFRAMES, TS, depth_column

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)

# Measure columns added by `with_measures` and `depth_measures`.
VOLUME, QUOTE_VOLUME, TRADES, VOLUME_SHARE = "volume", "quote_volume", "trades", "volume_share"
AMIHUD = "amihud"
EDGE_SPREAD, CS_SPREAD, AR_SPREAD, ROLL_SPREAD = "edge_spread", "cs_spread", "ar_spread", "roll_spread"
REALIZED_VOL, PARKINSON_VOL, GARMAN_KLASS_VOL = "realized_vol", "parkinson_vol", "garman_klass_vol"
TAKER_BUY_SHARE = "taker_buy_share"
DEPTH_USD, BID_DEPTH_USD, ASK_DEPTH_USD, QUOTED_SPREAD = "depth_usd", "bid_depth_usd", "ask_depth_usd", "quoted_spread"
RETURN = "log_return"
OHLC: tuple[str, ...] = ("open", "high", "low", "close")

# Calendar columns added by `with_calendar`.
WEEKEND, WEEKDAY, HOUR, DATE, WEEK, YEAR, REGIME = "weekend", "weekday", "hour", "date", "week", "year", "regime"
DAY_OF_WEEK: tuple[str, ...] = (WEEKDAY,)
HOUR_OF_WEEK: tuple[str, ...] = (WEEKDAY, HOUR)
WEEKEND_SPLIT: tuple[str, ...] = (WEEKEND,)
REGIMES: tuple[str, ...] = ("before", "after")
REGIME_TYPE = pl.Enum(REGIMES)

# Columns of `aggregate` (long format: one row per group and measure) and `daily`.
MEASURE, MEAN, MEDIAN, N, N_BARS = "measure", "mean", "median", "n", "n_bars"
WEEKEND_SHARE = "weekend_share"

_CELL, _ROW = "_cell", "_row"  # working columns of `by_cells`
# `aggregate` takes medians by cells from this many measures with values on (7.9M rows: 1 measure
# 0.29 s by cells against 0.17-0.21 s hashed, 6 measures 0.62 s either way, 10 measures 0.64-0.73
# s against 0.78-0.90 s)
SORTED_FROM_MEASURES = 6
_UNSIGNED = ((2**8, np.uint8), (2**16, np.uint16), (2**32, np.uint32))

# Assumptions, each a default the caller can override.
SPREAD_WINDOW_BARS = 24  # EDGE and Roll estimate over the trailing 24 bars: one day of hourly bars
MIN_WEEK_COVERAGE = 0.9  # volume_share needs 90 % of the week's bars present
AMIHUD_SCALE = 1_000_000  # Amihud per USD 1 M traded: hourly BTC is ~4e-5 (0.4 bp per USD 1 M), not ~4e-11
ETF_LAUNCH = date(2024, 1, 11)  # first trading day of the US spot bitcoin ETFs: the default regime split
DEPTH_BAND_PCT = 1.0  # Kaiko's headline depth: USD resting within ±1 % of mid
BPS = 10_000
MICROSECONDS_PER_HOUR = 3_600_000_000
MICROSECONDS_PER_DAY = 24 * MICROSECONDS_PER_HOUR
BASELINE_WEEKS = 4  # an event is compared with the same hours of the 4 weeks before it
ROLLING_RATIO_WINDOW = "28d"  # four weekends against twenty weekdays

LN2 = math.log(2)
CS_DENOMINATOR = 3 - 2 * math.sqrt(2)


@dataclass(frozen=True)
class Measure:
    """What a measure column means: a label (for chart titles), a short lower-case name (for a
    sentence), its unit (`UNITS`), and how bars pool into a group.

    ``pooling`` is "mean" (the mean of the per-bar values) or "rms" for volatilities: the root of the
    mean per-bar variance, ``sqrt(mean(x²))``, so a group's volatility is not biased down by Jensen.
    """

    label: str
    short: str
    unit: str
    pooling: str = "mean"
    volume_based: bool = False


# What a value is (charts choose how to show it): base-asset units, USD, a count, a share of a whole,
# a spread or a volatility as a fraction of price, and Amihud's fraction of price per USD 1 M.
UNITS = ("base", "usd", "count", "share", "spread", "volatility", "amihud")

MEASURES: dict[str, Measure] = {
    VOLUME: Measure("Base volume per bar", "base volume", "base", volume_based=True),
    QUOTE_VOLUME: Measure("Quote volume per bar", "quote volume", "usd", volume_based=True),
    TRADES: Measure("Trades per bar", "trade count", "count", volume_based=True),
    VOLUME_SHARE: Measure(
        "Share of the week's volume per bar", "share of the week's volume", "share", volume_based=True
    ),
    AMIHUD: Measure("Amihud illiquidity (|r| per USD 1 M)", "Amihud illiquidity", "amihud", volume_based=True),
    EDGE_SPREAD: Measure("EDGE spread estimate", "EDGE spread", "spread"),
    CS_SPREAD: Measure("Corwin-Schultz spread estimate", "Corwin-Schultz spread", "spread"),
    AR_SPREAD: Measure("Abdi-Ranaldo spread estimate", "Abdi-Ranaldo spread", "spread"),
    ROLL_SPREAD: Measure("Roll spread estimate", "Roll spread", "spread"),
    REALIZED_VOL: Measure("Realised volatility per bar", "realised volatility", "volatility", "rms"),
    PARKINSON_VOL: Measure("Parkinson volatility per bar", "Parkinson volatility", "volatility", "rms"),
    GARMAN_KLASS_VOL: Measure("Garman-Klass volatility per bar", "Garman-Klass volatility", "volatility", "rms"),
    TAKER_BUY_SHARE: Measure("Taker-buy share of volume", "taker-buy share", "share", volume_based=True),
    DEPTH_USD: Measure("Order-book depth, bid + ask", "order-book depth", "usd"),
    BID_DEPTH_USD: Measure("Bid depth", "bid depth", "usd"),
    ASK_DEPTH_USD: Measure("Ask depth", "ask depth", "usd"),
    QUOTED_SPREAD: Measure("Quoted spread", "quoted spread", "spread"),
}
BAR_MEASURES: tuple[str, ...] = (
    VOLUME,
    QUOTE_VOLUME,
    TRADES,
    VOLUME_SHARE,
    AMIHUD,
    EDGE_SPREAD,
    CS_SPREAD,
    AR_SPREAD,
    ROLL_SPREAD,
    REALIZED_VOL,
    PARKINSON_VOL,
    GARMAN_KLASS_VOL,
    TAKER_BUY_SHARE,
)
DEPTH_MEASURES: tuple[str, ...] = (DEPTH_USD, BID_DEPTH_USD, ASK_DEPTH_USD, QUOTED_SPREAD)


@dataclass(frozen=True)
class Event:
    """A stress episode, [start, end) in UTC, for `event_comparison`."""

    name: str
    start: datetime
    end: datetime


SATURDAY_CASCADE = Event("Sat 31 Jan 2026 cascade", datetime(2026, 1, 31, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
WEEKDAY_CASCADE = Event(
    "Thu-Fri 5-6 Feb 2026 cascade", datetime(2026, 2, 5, tzinfo=UTC), datetime(2026, 2, 7, tzinfo=UTC)
)
CASCADES: tuple[Event, ...] = (SATURDAY_CASCADE, WEEKDAY_CASCADE)


# ---------------------------------------------------------------------------------------------
# Estimators: expressions over log prices of the current bar and the previous one (null where it is
# missing). In formulas o, h, l, c are ln open, ln high, ln low, ln close; in code the low is `lo`.


def amihud(ret: pl.Expr, quote_volume: pl.Expr, scale: float = AMIHUD_SCALE) -> pl.Expr:
    """Amihud illiquidity ``|r_t| / quote_volume_t × scale``; null when nothing traded.

    Amihud (2002), "Illiquidity and stock returns", J. Financial Markets 5(1), 31-56 (there per day,
    here per bar).
    """
    return pl.when(quote_volume > 0).then(ret.abs() / quote_volume * scale)


def corwin_schultz(h: pl.Expr, lo: pl.Expr, h_prev: pl.Expr, lo_prev: pl.Expr) -> pl.Expr:
    """Corwin-Schultz high-low spread from two consecutive bars, negative estimates set to 0.

    ``β = (h_{t-1} − l_{t-1})² + (h_t − l_t)²``, ``γ = (max(h_{t-1}, h_t) − min(l_{t-1}, l_t))²``,
    ``α = (√(2β) − √β) / (3 − 2√2) − √(γ / (3 − 2√2))``, ``S = 2 (e^α − 1) / (1 + e^α) = 2 tanh(α/2)``.
    Corwin & Schultz (2012), "A simple way to estimate bid-ask spreads from daily high and low
    prices", J. Finance 67(2), 719-760, eq. 14 and 18. The overnight adjustment is skipped: crypto
    has no close.
    """
    beta = (h_prev - lo_prev) ** 2 + (h - lo) ** 2
    gamma = (pl.max_horizontal(h, h_prev) - pl.min_horizontal(lo, lo_prev)) ** 2
    alpha = ((2 * beta).sqrt() - beta.sqrt()) / CS_DENOMINATOR - (gamma / CS_DENOMINATOR).sqrt()
    return (2 * (alpha / 2).tanh()).clip(lower_bound=0)


def abdi_ranaldo(c_prev: pl.Expr, h_prev: pl.Expr, lo_prev: pl.Expr, h: pl.Expr, lo: pl.Expr) -> pl.Expr:
    """Abdi-Ranaldo spread from two consecutive bars, ``√max(4 (c_{t-1} − η_{t-1})(c_{t-1} − η_t), 0)``
    with ``η = (h + l) / 2`` the log mid-range.

    Abdi & Ranaldo (2017), "A simple estimation of bid-ask spreads from daily close, high, and low
    prices", RFS 30(12), 4437-4480: the two-day estimator with negative values set to 0, averaged
    over a group.
    """
    return (4 * (c_prev - (h_prev + lo_prev) / 2) * (c_prev - (h + lo) / 2)).clip(lower_bound=0).sqrt()


def roll(ret: pl.Expr, window: int = SPREAD_WINDOW_BARS) -> pl.Expr:
    """Roll spread ``2 √(−cov(r_t, r_{t-1}))`` over the trailing `window` bars, from log returns (so a
    fraction of price); null where the autocovariance is not negative (Roll's model does not hold)
    or a return in the window is missing. Roll (1984), "A simple implicit measure of the effective
    bid-ask spread in an efficient market", J. Finance 39(4), 1127-1139.
    """
    cov = pl.rolling_cov(ret, ret.shift(1), window_size=window, min_samples=window)
    return pl.when(cov < 0).then(2 * (-cov).sqrt())


def parkinson(h: pl.Expr, lo: pl.Expr) -> pl.Expr:
    """Parkinson volatility per bar ``√((h − l)² / (4 ln 2))``. Parkinson (1980), "The extreme value
    method for estimating the variance of the rate of return", J. Business 53(1), 61-65."""
    return (h - lo) / math.sqrt(4 * LN2)


def garman_klass(o: pl.Expr, h: pl.Expr, lo: pl.Expr, c: pl.Expr) -> pl.Expr:
    """Garman-Klass volatility per bar ``√(½ (h − l)² − (2 ln 2 − 1)(c − o)²)`` (never negative, as
    ``|c − o| <= h − l``). Garman & Klass (1980), "On the estimation of security price volatilities
    from historical data", J. Business 53(1), 67-78, estimator σ̂²₅."""
    return (0.5 * (h - lo) ** 2 - (2 * LN2 - 1) * (c - o) ** 2).sqrt()


def edge(open_: pl.Expr, high: pl.Expr, low: pl.Expr, close: pl.Expr, window: int = SPREAD_WINDOW_BARS) -> pl.Expr:
    """EDGE spread over the trailing `window` bars, from prices (not logs): null until the window is
    full or where the estimator is undefined. Computed by the `bidask` package's `edge_rolling`;
    apply per symbol (``.over(symbol)``) on rows sorted by time. Ardia, Guidotti & Kroencke (2024),
    "Efficient estimation of bid-ask spreads from open, high, low, and close prices", J. Financial
    Economics 161, 103916.

    A trailing window blurs calendar patterns: its first bars after a weekend starts still hold
    Friday's, which dilutes (never exaggerates) a weekend contrast, and an hour-of-week profile of
    EDGE lags by up to the window. Compare days rather than hours with it.
    """

    def estimate(prices: pl.Series) -> pl.Series:
        ohlc = pd.DataFrame({name: prices.struct.field(name).to_numpy() for name in OHLC})
        with warnings.catch_warnings():  # bidask 2.1 calls DataFrame.rename(inplace=False), deprecated in pandas 3.1
            warnings.filterwarnings("ignore", message="The inplace keyword")
            spread = edge_rolling(ohlc, window=window)
        return pl.Series(spread.to_numpy(), dtype=pl.Float64)

    ohlc = pl.struct(*(x.alias(name) for x, name in zip((open_, high, low, close), OHLC, strict=True)))
    return ohlc.map_batches(estimate, return_dtype=pl.Float64).fill_nan(None)


def taker_buy_share(taker_buy_volume: pl.Expr, volume: pl.Expr) -> pl.Expr:
    """Taker-buy base volume / base volume; null without volume or without taker data."""
    return pl.when(volume > 0).then(taker_buy_volume / volume)


def share_of_week(
    volume: pl.Expr, week: pl.Expr, expected_bars: pl.Expr, coverage: float = MIN_WEEK_COVERAGE
) -> pl.Expr:
    """``volume / Σ volume of its week`` per symbol; null in weeks with fewer than `coverage` ×
    `expected_bars` bars with volume."""
    keys = [pl.col(SYMBOL), week]
    complete = volume.count().over(keys) >= coverage * expected_bars
    return pl.when(complete).then(volume / volume.sum().over(keys))


# ---------------------------------------------------------------------------------------------
# Frames


# The measures read from quote volume, which `estimate_quote_volume` fills where it is missing.
FROM_QUOTE_VOLUME: tuple[str, ...] = (QUOTE_VOLUME, AMIHUD)
QUOTE_VOLUME_ESTIMATE = "volume × (high + low + close) / 3"


def estimated_quote_volume() -> pl.Expr:
    """A bar's quote volume from its base volume: ``volume × (H + L + C) / 3``, the typical price.

    On Binance spot hourly bars that report both (BTC, ETH, SOL 2018-2025, 157,552 bars) it is within
    0.08 % of the reported value at the median and 0.6 % at the 99th percentile, and a week's sum
    within 0.4 %: far finer than any weekend effect (tests/analytics/test_liquidity.py checks it).
    """
    return pl.col(VOLUME) * (pl.col("high") + pl.col("low") + pl.col("close")) / 3


def reliable_volume() -> pl.Expr:
    """A bar's volume is usable unless its source flagged it (``volume_reliable == False``)."""
    return pl.col("volume_reliable").fill_null(True)


def missing_quote_volume(bars: pl.DataFrame) -> int:
    """How many of `bars` have a usable base volume and no quote volume: the bars whose quote
    volume `with_measures(estimate_quote_volume=True)` estimates."""
    missing = pl.col(QUOTE_VOLUME).is_null() & pl.col(VOLUME).is_not_null() & reliable_volume()
    return bars.select(missing.sum()).item()


def with_measures(
    bars: Frame,
    *,
    spread_window: int = SPREAD_WINDOW_BARS,
    week_coverage: float = MIN_WEEK_COVERAGE,
    amihud_scale: float = AMIHUD_SCALE,
    estimate_quote_volume: bool = False,
    with_edge: bool = True,
) -> Frame:
    """Canonical `bars` sorted by (symbol, ts), with `log_return` and every `BAR_MEASURES` column.

    `estimate_quote_volume`: fill a null quote_volume with `estimated_quote_volume`, for sources
    that report base volume only (ccxt's OHLCV); off by default.
    `with_edge`: EDGE runs through `bidask`'s pandas code at ~9 µs of CPU per bar (over a minute for
    7.9 M 1-minute bars, where everything else here takes ~3 s); False leaves edge_spread null.
    """
    duration = pl.col(TIMEFRAME).replace_strict(TIMEFRAMES, return_dtype=pl.Duration("us"))
    contiguous = (pl.col(SYMBOL) == pl.col(SYMBOL).shift(1)) & (pl.col(TS) - pl.col(TS).shift(1) <= duration)
    reliable = reliable_volume()
    quote_volume = pl.col(QUOTE_VOLUME)
    if estimate_quote_volume:
        quote_volume = pl.coalesce(quote_volume, estimated_quote_volume())
    o, h, lo, c = (pl.col(f"_{name}") for name in OHLC)
    h1, lo1, c1 = (pl.col(f"_{name}_prev") for name in ("high", "low", "close"))
    result = (
        _by_symbol_and_time(bars)
        .with_columns(pl.col(name).log().alias(f"_{name}") for name in OHLC)
        .with_columns(
            *(
                pl.when(contiguous).then(pl.col(f"_{name}").shift(1)).alias(f"_{name}_prev")
                for name in ("high", "low", "close")
            ),
            pl.when(reliable).then(pl.col(VOLUME)).alias(VOLUME),
            pl.when(reliable).then(quote_volume).alias(QUOTE_VOLUME),
            pl.when(reliable).then(pl.col(TRADES)).alias(TRADES),
            pl.col(TS).dt.truncate("1w").alias("_week"),
            (pl.duration(weeks=1) / duration).alias("_bars_per_week"),
        )
        .with_columns(
            (c - c1).alias(RETURN),
            corwin_schultz(h, lo, h1, lo1).alias(CS_SPREAD),
            abdi_ranaldo(c1, h1, lo1, h, lo).alias(AR_SPREAD),
            (
                edge(*(pl.col(name) for name in OHLC), spread_window).over(SYMBOL)
                if with_edge
                else pl.lit(None, pl.Float64)
            ).alias(EDGE_SPREAD),
            parkinson(h, lo).alias(PARKINSON_VOL),
            garman_klass(o, h, lo, c).alias(GARMAN_KLASS_VOL),
            share_of_week(pl.col(VOLUME), pl.col("_week"), pl.col("_bars_per_week"), week_coverage).alias(VOLUME_SHARE),
            taker_buy_share(pl.col("taker_buy_volume"), pl.col(VOLUME)).alias(TAKER_BUY_SHARE),
        )
        .with_columns(
            amihud(pl.col(RETURN), pl.col(QUOTE_VOLUME), amihud_scale).alias(AMIHUD),
            roll(pl.col(RETURN), spread_window).alias(ROLL_SPREAD),  # a symbol's first return is null
            pl.col(RETURN).abs().alias(REALIZED_VOL),
        )
        .drop(cs.starts_with("_"))
    )
    return _like(result, bars)


def depth_measures(depth: Frame, *, band_pct: float = DEPTH_BAND_PCT) -> Frame:
    """Canonical `depth` rows with `DEPTH_MEASURES`: USD within ±`band_pct` % of mid on each side
    and both together, and the quoted spread as a fraction (``spread_bps / 10 000``)."""
    bid, ask = pl.col(depth_column("bid", band_pct)), pl.col(depth_column("ask", band_pct))
    result = (
        depth.lazy()
        .sort(SYMBOL, TS)
        .with_columns(
            (bid + ask).alias(DEPTH_USD),
            bid.alias(BID_DEPTH_USD),
            ask.alias(ASK_DEPTH_USD),
            (pl.col("spread_bps") / BPS).alias(QUOTED_SPREAD),
        )
    )
    return _like(result, depth)


def weekend_mask(ts: pl.Expr, definition: str = "utc") -> pl.Expr:
    """Weekend under `definition`: "utc" or "cme" (see `lib.analytics.sessions`), or an IANA time
    zone such as "Asia/Singapore" for the calendar weekend there (Saturday 00:00 to Monday 00:00
    local time, following its daylight saving)."""
    if definition in WEEKENDS:
        return is_weekend(ts, definition)
    _check_zone(definition)
    return ts.dt.convert_time_zone(definition).dt.weekday() >= 6


def with_calendar(
    frame: Frame,
    *,
    weekend: str = "utc",
    tz: str = "UTC",
    regime_split: date = ETF_LAUNCH,
) -> Frame:
    """`frame` with its calendar keys, all from the row's open time ``ts``:

    weekend (bool, under `weekend`, see `weekend_mask`); weekday (1 = Monday … 7 = Sunday), hour
    (0-23), date and week (the Monday of its week) in time zone `tz`; year (in `tz`); regime
    ("before" or "after" 00:00 UTC on `regime_split`).
    """
    _check_zone(tz)
    # Integer arithmetic on the local wall-clock time: 2-3x faster than the dt accessors on
    # millions of tz-aware rows. Day 0 (1970-01-01) was a Thursday, ISO weekday 4.
    wall = pl.col(TS).dt.convert_time_zone(tz).dt.replace_time_zone(None).dt.epoch("us")
    day = wall // MICROSECONDS_PER_DAY
    weekday = ((day + 3) % 7 + 1).cast(pl.Int8)
    split = datetime.combine(regime_split, datetime.min.time(), tzinfo=UTC)
    result = frame.lazy().with_columns(
        weekend_mask(pl.col(TS), weekend).alias(WEEKEND),
        weekday.alias(WEEKDAY),
        (wall // MICROSECONDS_PER_HOUR % 24).cast(pl.Int8).alias(HOUR),
        day.cast(pl.Int32).cast(pl.Date).alias(DATE),
        (day - weekday + 1).cast(pl.Int32).cast(pl.Date).alias(WEEK),
        day.cast(pl.Int32).cast(pl.Date).dt.year().alias(YEAR),
        pl.when(pl.col(TS) < split)
        .then(pl.lit(REGIMES[0]))
        .otherwise(pl.lit(REGIMES[1]))
        .cast(REGIME_TYPE)
        .alias(REGIME),
    )
    return _like(result, frame)


def pooled(name: str, where: pl.Expr | None = None) -> pl.Expr:
    """A group's value of measure `name` (over the rows `where` is true): the mean, or for
    volatilities the root mean square."""
    x = pl.col(name) if where is None else pl.col(name).filter(where)
    return (x**2).mean().sqrt() if MEASURES[name].pooling == "rms" else x.mean()


def aggregate(
    frame: pl.DataFrame | pl.LazyFrame,
    by: Sequence[str],
    measures: Sequence[str] = BAR_MEASURES,
    *,
    with_median: bool = True,
) -> pl.DataFrame:
    """Long table, one row per (symbol, `by`…, measure): mean (pooled, see `pooled`), median and n
    (bars with a value), sorted by symbol, `by`, then the order of `measures`.

    `frame` is a `with_calendar` frame of measures; `by` e.g. `HOUR_OF_WEEK`, `DAY_OF_WEEK`,
    ``(WEEKEND,)``, ``(REGIME, WEEKEND)`` or ``(YEAR, WEEKDAY)``. `with_median=False` leaves the
    medians null: they cost most (a selection per group and measure). They are taken after
    `drop_nulls`: polars' median of a group holding nulls is slower than of the same group without.

    Medians of several measures are taken over rows first put in cell order (`by_cells`): on 7.9M
    rows and 10 measures with values that is a tenth to a quarter faster than polars' hashed
    `group_by`, whose per-group gathers cost more than the sort; below `SORTED_FROM_MEASURES`
    measures the sort costs more than it saves.
    """
    keys = [SYMBOL, *by]
    data = frame.lazy().select(*keys, *measures).collect()

    def median(m: str) -> pl.Expr:
        return pl.col(m).drop_nulls().median() if with_median else pl.lit(None, pl.Float64)

    stats = {
        m: pl.struct(pooled(m).alias(MEAN), median(m).alias(MEDIAN), pl.col(m).count().alias(N)).alias(m)
        for m in measures
    }
    valued = [m for m in measures if data[m].null_count() < data.height]  # EDGE off, no trades: nothing to sort
    if with_median and len(valued) >= SORTED_FROM_MEASURES:
        empty = pl.struct(pl.lit(None, pl.Float64).alias(MEAN), pl.lit(None, pl.Float64).alias(MEDIAN),
                          pl.lit(0, pl.UInt32).alias(N))
        wide = by_cells(data, keys, [stats[m] for m in valued]).with_columns(
            empty.alias(m) for m in measures if m not in valued)
    else:
        wide = data.lazy().group_by(keys).agg(stats.values()).collect()  # a tenth faster than eager
    return _long(wide, keys, measures).sort(*keys, MEASURE)


def by_cells(frame: pl.DataFrame, keys: Sequence[str], aggs: Sequence[pl.Expr]) -> pl.DataFrame:
    """``frame.group_by(keys).agg(aggs)``, the groups taken as slices of the rows put in cell order
    (`cell_numbers`, a stable radix sort: numpy sorts 8- and 16-bit integers by radix)."""
    frame = frame.rechunk()  # gathers from one chunk are faster
    cells = cell_numbers(frame, keys)
    order = cells.argsort(kind="stable")
    in_cells = frame.select(pl.exclude(keys))[order].with_columns(
        pl.Series(_CELL, cells[order]).set_sorted(), pl.Series(_ROW, order))
    wide = in_cells.lazy().group_by(_CELL, maintain_order=True).agg(pl.col(_ROW).first(), *aggs).collect()
    return frame.select(keys)[wide[_ROW]].hstack(wide.drop(_CELL, _ROW))


def cell_numbers(frame: pl.DataFrame, keys: Sequence[str]) -> np.ndarray:
    """Each row's cell: the same number for the same values of `keys` (nulls included), a different
    one otherwise (mixed radix of `_key_codes`), in the smallest unsigned type that holds them."""
    codes = [_key_codes(frame[key]) for key in keys]
    radices = [(c.max() or 0) + 1 + c.has_nulls() for c in codes]  # a null is one more value
    size = math.prod(radices)
    if size > 2**32:  # the keys' ranges multiply beyond 32 bits: number the combinations densely
        return (frame.select(pl.struct(keys).rank("dense")).to_series() - 1).to_numpy()
    dtype = next(dtype for limit, dtype in _UNSIGNED if size <= limit)
    cells = np.zeros(frame.height, dtype)
    for c, radix in zip(codes, radices, strict=True):
        cells *= radix
        cells += c.fill_null(radix - 1).to_numpy().astype(dtype, copy=False)  # < radix: no overflow
    return cells


def _key_codes(column: pl.Series) -> pl.Series:
    """Codes from 0 for a key's values (null stays null), in the values' order: an integer-like key
    its offset from its minimum where that range is compact; a string key the rank of each run of
    equal values (a frame sorted by symbol has one run per symbol: a few ranks, not millions)."""
    if column.dtype == pl.String:
        runs = column.rle_id()
        starts = (runs != runs.shift(1)).fill_null(True)
        return (column.filter(starts).rank("dense") - 1).gather(runs)
    physical = column.to_physical()
    if physical.dtype.is_integer() or physical.dtype == pl.Boolean:
        offsets = physical.cast(pl.Int64) - physical.min()
        if (offsets.max() or 0) <= column.len():
            return offsets
    return column.rank("dense") - 1


def weekend_share(frame: pl.DataFrame | pl.LazyFrame, by: Sequence[str] = HOUR_OF_WEEK) -> pl.DataFrame:
    """Per (symbol, `by`…) of a `with_calendar` frame: the share of its bars that fall in the weekend
    (`WEEKEND_SHARE`). Between 0 and 1 where the weekend's ends move within a cell over the year:
    "cme" seen in UTC starts at 21:00 or 22:00 on Friday, as daylight saving time runs in Chicago."""
    return frame.lazy().group_by(SYMBOL, *by).agg(pl.col(WEEKEND).mean().alias(WEEKEND_SHARE)).collect().sort(SYMBOL, *by)


def daily(frame: pl.DataFrame | pl.LazyFrame, measures: Sequence[str] = BAR_MEASURES) -> pl.DataFrame:
    """One row per symbol, local date and weekend flag (a date split by the weekend boundary, as
    under "cme" on Fridays and Sundays, gives two rows), sorted by time: weekday, week, year,
    regime, n_bars and each measure pooled over the row's bars (see `pooled`).

    The unit of observation for the statistics: hours within a day are strongly autocorrelated,
    days much less so.
    """
    keys = [SYMBOL, DATE, WEEKEND]
    return (
        frame.lazy()
        .group_by(keys)
        .agg(
            pl.col(WEEKDAY, WEEK, YEAR, REGIME).first(),
            pl.col(TS).min().alias("_first_ts"),
            pl.len().alias(N_BARS),
            *(pooled(m).alias(m) for m in measures),
        )
        .sort(SYMBOL, "_first_ts")
        .drop("_first_ts")
        .collect()
    )


def rolling_weekend_ratio(days: pl.DataFrame, measure: str, *, window: str = ROLLING_RATIO_WINDOW) -> pl.DataFrame:
    """Per symbol and date of a `daily` frame: the mean of `measure` over the weekend rows in the
    trailing `window` (ending on that date) divided by the mean over its weekday rows; null until
    the data spans a whole window, and while either side has no value. Columns: symbol, date, ratio."""

    def trailing_mean(side: str) -> pl.Expr:
        total = pl.col(side).fill_null(0).rolling_sum_by(DATE, window_size=window)
        count = pl.col(side).is_not_null().cast(pl.Float64).rolling_sum_by(DATE, window_size=window)
        return pl.when(count > 0).then(total / count)

    return (
        days.group_by(SYMBOL, DATE)
        .agg(
            pl.col(measure).filter(pl.col(WEEKEND)).mean().alias("_weekend"),
            pl.col(measure).filter(~pl.col(WEEKEND)).mean().alias("_weekday"),
        )
        .sort(SYMBOL, DATE)
        .select(
            SYMBOL,
            DATE,
            pl.when(pl.col(DATE).dt.offset_by(f"-{window}") >= pl.col(DATE).min().over(SYMBOL) - timedelta(days=1))
            .then((trailing_mean("_weekend") / trailing_mean("_weekday")).over(SYMBOL))
            .alias("ratio"),
        )
    )


def share_of_volume(
    frame: pl.DataFrame | pl.LazyFrame,
    by: Sequence[str],
    *,
    within: Sequence[str] = (YEAR,),
    volume: str = QUOTE_VOLUME,
) -> pl.DataFrame:
    """Each `by` group's share of the `volume` traded in its (symbol, `within`…) total, e.g. the
    weekend share of each year's volume (``by=(WEEKEND,)``) or the share-of-week by day and year
    (``by=(WEEKDAY,)``), Kaiko's headline figures. Columns: symbol, `within`, `by`, share."""
    keys = [SYMBOL, *within]
    return (
        frame.lazy()
        .group_by(*keys, *by)
        .agg(pl.col(volume).sum())
        .with_columns((pl.col(volume) / pl.col(volume).sum().over(keys)).alias("share"))
        .drop(volume)
        .sort(*keys, *by)
        .collect()
    )


# ---------------------------------------------------------------------------------------------
# Events


def weekend_moves(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """One row per symbol and weekend of a `with_calendar` bars frame (a run of weekend bars):

    start, end (open time of the first and the bar after the last weekend bar), friday_close (the
    close of the last bar before it), monday_open (the open of the first bar after it), move
    (``monday_open / friday_close − 1``), low and max_drawdown (``min low / friday_close − 1``),
    quote_volume (summed over the weekend), last_close (the close of its last bar: where a weekend
    still under way at the end of the data stands). Weekends at the edges of the data have null ends.
    """
    run = (pl.col(WEEKEND) != pl.col(WEEKEND).shift(1)).fill_null(True).cum_sum().over(SYMBOL)
    per_run = (
        frame.lazy()
        .sort(SYMBOL, TS)
        .with_columns(run.alias("_run"))
        .group_by(SYMBOL, "_run")
        .agg(
            pl.col(WEEKEND).first(),
            pl.col(TS).first().alias("start"),
            pl.col("open").first().alias("_open"),
            pl.col("close").last().alias("_close"),
            pl.col("low").min().alias("low"),
            pl.col(QUOTE_VOLUME).sum(),
        )
        .sort(SYMBOL, "_run")
        .with_columns(
            pl.col("_close").shift(1).over(SYMBOL).alias("friday_close"),
            pl.col("_open").shift(-1).over(SYMBOL).alias("monday_open"),
            pl.col("start").shift(-1).over(SYMBOL).alias("end"),
        )
        .filter(pl.col(WEEKEND))
    )
    return per_run.select(
        SYMBOL,
        "start",
        "end",
        "friday_close",
        "monday_open",
        (pl.col("monday_open") / pl.col("friday_close") - 1).alias("move"),
        "low",
        (pl.col("low") / pl.col("friday_close") - 1).alias("max_drawdown"),
        QUOTE_VOLUME,
        pl.col("_close").alias("last_close"),
    ).collect()


def with_so_far(moves: pl.DataFrame) -> pl.DataFrame:
    """`weekend_moves` with ``so_far``: true for a weekend still under way at the end of the data
    (a Friday close, no Monday open yet), whose ``move`` is then to its last close,
    ``last_close / friday_close − 1``."""
    so_far = pl.col("monday_open").is_null() & pl.col("friday_close").is_not_null()
    return moves.with_columns(
        pl.when(so_far).then(pl.col("last_close") / pl.col("friday_close") - 1).otherwise("move").alias("move"),
        so_far.alias("so_far"),
    )


def event_comparison(
    frame: pl.DataFrame | pl.LazyFrame,
    events: Sequence[Event] = CASCADES,
    measures: Sequence[str] = BAR_MEASURES,
    *,
    baseline_weeks: int = BASELINE_WEEKS,
) -> pl.DataFrame:
    """Liquidity during each event against the same hours of the `baseline_weeks` weeks before it
    (a Saturday is compared with Saturdays, so weekly and intraday seasonality cancel).

    Columns: event, symbol, measure, event_value, baseline_value (both pooled, see `pooled`), ratio
    (event / baseline; null without a positive baseline). Pass a measured frame that starts at least
    `baseline_weeks` weeks, plus the spread window, before the first event.
    """
    tables = []
    for event in events:
        shifts = [timedelta(weeks=k) for k in range(baseline_weeks + 1)]
        in_event, *in_baselines = (_between(event.start - shift, event.end - shift) for shift in shifts)
        in_baseline = pl.any_horizontal(in_baselines) if in_baselines else pl.lit(False)
        stats = [
            pl.struct(pooled(m, in_event).alias("event_value"), pooled(m, in_baseline).alias("baseline_value")).alias(m)
            for m in measures
        ]
        wide = frame.lazy().filter(in_event | in_baseline).group_by(SYMBOL).agg(stats).collect()
        tables.append(_long(wide, [SYMBOL], measures).with_columns(pl.lit(event.name).alias("event")))
    ratio = pl.when(pl.col("baseline_value") > 0).then(pl.col("event_value") / pl.col("baseline_value"))
    return pl.concat(tables).select("event", SYMBOL, MEASURE, "event_value", "baseline_value", ratio.alias("ratio"))


# ---------------------------------------------------------------------------------------------
# Helpers


def _by_symbol_and_time(frame: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """`frame` as a LazyFrame sorted by (symbol, ts). An eager frame already in that order (as the
    store returns it) skips the sort, which costs seconds on millions of rows even when sorted."""
    if isinstance(frame, pl.DataFrame):
        symbol, ts = pl.col(SYMBOL), pl.col(TS)
        later = (symbol > symbol.shift(1)) | ((symbol == symbol.shift(1)) & (ts > ts.shift(1)))
        if frame.select(later.slice(1).all()).item():
            return frame.lazy()
    return frame.lazy().sort(SYMBOL, TS)


def _between(start: datetime, end: datetime) -> pl.Expr:
    return pl.col(TS).is_between(start, end, closed="left")


def _long(wide: pl.DataFrame, keys: Sequence[str], measures: Sequence[str]) -> pl.DataFrame:
    """One struct column per measure → one row per measure (an ordered `measure` enum), unnested."""
    return (
        wide.unpivot(index=list(keys), on=list(measures), variable_name=MEASURE, value_name="_stats")
        .unnest("_stats")
        .with_columns(pl.col(MEASURE).cast(pl.Enum(list(measures))))
    )


def _check_zone(tz: str) -> None:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown weekend definition or time zone {tz!r}; use one of {sorted(WEEKENDS)} or an IANA zone"
        ) from None


def _like(result: pl.LazyFrame, template: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame | pl.LazyFrame:
    """Collect when the caller passed an eager frame, so each function returns what it was given."""
    return result.collect() if isinstance(template, pl.DataFrame) else result
