"""Drawdowns: how far each asset sits below its running peak, the episodes, and desk metrics.

Pure polars, on the canonical `bars` frame (any timeframe from 1m to 1d, one or many symbols).
Everything is a fraction or a UTC timestamp; formatting belongs to charts and pages.

Definitions used throughout (bars sorted by time within each symbol; ``t`` is a bar):

- running peak ``P_t = max(close_1 .. close_t)``; drawdown ``D_t = close_t / P_t - 1`` (0 at a peak,
  -0.25 when 25 % below it). Intrabar mode uses ``low_t / max(high_1 .. high_t) - 1``: the order
  of high and low inside a bar is unknown, so the bar's own high counts (the worst case).
- an episode starts at a bar that reaches its running peak (close >= every earlier close) and is
  followed by bars under water; it recovers at the next bar that reaches that peak again. Two
  equal peaks therefore make two episodes. An episode with no such bar is *active*.
- durations are real elapsed hours between bar open times (crypto trades 24/7: no business days,
  no dates collapsed to days). Gaps in the data are not filled; a duration spans them.

What is here: expressions (`drawdown`, `trailing_drawdown`, `ulcer_index`, `pain_index`,
`conditional_drawdown_at_risk`, `cagr`, ...); frames (`with_drawdown` -> `episodes` ->
`top_episodes`, `desk_metrics`); attribution of each decline to weekends, sessions and
liquidation bursts (`attribution`, `decline_by_period`, `liquidation_bursts`); and the cross-asset
view (`aligned_drawdowns`, `underwater_together`). Functions return the kind of frame they get
(lazy in, lazy out); collect lazy results with ``engine=ENGINE``.

The quantstats and pyfolio pitfalls this module avoids are listed in PRODUCT-RESEARCH.md §3.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from itertools import combinations
from typing import TypeVar

import polars as pl

from lib.analytics.sessions import SESSIONS, is_weekend, session
from lib.schema import SYMBOL, TIMEFRAMES, TS

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)
By = str | Sequence[str]

CLOSE, HIGH, LOW = "close", "high", "low"

# Columns added to bars by `with_drawdown`.
PEAK, DRAWDOWN, EPISODE = "peak", "drawdown", "episode"
_RUN = "_run"  # a temporary group key (see `_runs`)

# Columns of the episodes table.
PEAK_TS, TROUGH_TS, RECOVERY_TS = "peak_ts", "trough_ts", "recovery_ts"
PEAK_PRICE, TROUGH_PRICE, DEPTH, BARS = "peak_price", "trough_price", "depth", "bars"
PEAK_TO_TROUGH_HOURS = "peak_to_trough_hours"
TROUGH_TO_RECOVERY_HOURS = "trough_to_recovery_hours"
UNDERWATER_HOURS = "underwater_hours"
ACTIVE = "active"

# Assumptions, each a default the caller can override.
HOURS_PER_DAY = 24
DAYS_PER_YEAR = 365  # crypto trades every day of the year
MIN_DAYS_TO_ANNUALISE = 30  # an annualised 8-hour return means nothing; CAGR and ratios stay null
MICROSECONDS_PER_HOUR = 3_600_000_000
CDAR_CONFIDENCE = 0.95
DEEP_DRAWDOWN = -0.20  # "deeper than 20 %": a bear-market-sized fall
RISK_FREE_RATE = 0.0  # annual, for the Ulcer performance index
TRAILING_WINDOWS: tuple[str, ...] = ("30d", "90d")
BURST_QUANTILE = 0.95
LIQUIDATION_TIMEFRAME = "1h"

# polars 2's default ("auto") engine streams, and runs the per-symbol windows here about 3x slower
# than the in-memory engine; collect lazy results from this module with `engine=ENGINE`.
ENGINE = "in-memory"


def _keys(by: By) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


def _runs(columns: Sequence[str]) -> pl.Expr:
    """An integer that steps wherever `columns` change, flagged sorted: on a frame sorted by those
    columns, the same groups as the columns themselves, and polars groups a sorted integer by
    slicing instead of hashing (7.9M rows: 0.02 s instead of 0.12 s for symbol and episode)."""
    return pl.struct(columns).rle_id().set_sorted()


def _like(result: pl.LazyFrame, template: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame | pl.LazyFrame:
    """Collect when the caller passed an eager frame, so each function returns what it was given."""
    return result.collect(engine=ENGINE) if isinstance(template, pl.DataFrame) else result


# ---------------------------------------------------------------------------------------------
# Expressions


def drawdown(price: pl.Expr, peak: pl.Expr | None = None) -> pl.Expr:
    """Fraction below the running peak, ``price / cum_max(price) - 1``: 0.0 at a peak, -0.25 when
    25 % down. Pass `peak` to measure against another series (intrabar: low against high)."""
    return price / (price.cum_max() if peak is None else peak.cum_max()) - 1


def trailing_drawdown(price: pl.Expr, ts: pl.Expr, window: str) -> pl.Expr:
    """Fraction below the highest price of the trailing time `window` (e.g. "30d"), the trader's
    "off the 30-day high". The window is (t - window, t] in real time, so gaps shorten it."""
    return price / price.rolling_max_by(ts, window_size=window) - 1


def hours_between(start: pl.Expr, end: pl.Expr) -> pl.Expr:
    """Real elapsed hours from `start` to `end` (float; null when either is null)."""
    return (end - start).dt.total_microseconds() / MICROSECONDS_PER_HOUR


def ulcer_index(dd: pl.Expr) -> pl.Expr:
    """Ulcer index ``sqrt(mean(D_t^2))`` over every bar, as a positive fraction.

    Martin & McCann (1989), *The Investor's Guide to Fidelity Funds*; Martin (1987). Martin's
    mean divides by N; quantstats' `ulcer_index` divides by N - 1.
    """
    return (dd**2).mean().sqrt()


def pain_index(dd: pl.Expr) -> pl.Expr:
    """Pain index ``mean(|D_t|)`` over every bar, as a positive fraction.

    Bacon (2008), *Practical Portfolio Performance Measurement and Attribution*, 2nd ed., §4
    (after Zephyr Associates).
    """
    return dd.abs().mean()


def conditional_drawdown_at_risk(dd: pl.Expr, confidence: float = CDAR_CONFIDENCE) -> pl.Expr:
    """CDaR: the mean of the worst ``ceil((1 - confidence) * N)`` drawdown observations (at least
    one), as a negative fraction; ``max_drawdown <= CDaR <= 0``.

    Chekhlov, Uryasev & Zabarankin (2005), "Drawdown measure in portfolio optimization", IJTAF 8(1),
    discrete form over the bars of the series (not over episodes, as R's `CDD` does).
    """
    worst = ((1 - confidence) * pl.len()).ceil().clip(lower_bound=1).cast(pl.Int64)
    return dd.bottom_k(worst).mean()


def _since(values: pl.Expr, ts: pl.Expr, start: pl.Expr) -> pl.Expr:
    """`values` of the bars after `start`, for `ts` in time order: a binary search and a slice (a
    filter would test every bar: 0.06 s per window on 7.9M rows, against 0.01 s)."""
    return values.slice(ts.search_sorted(start, side="right").first())


def total_return(price: pl.Expr) -> pl.Expr:
    """Compounded return from the first to the last price, ``last / first - 1``."""
    return price.last() / price.first() - 1


def years_elapsed(ts: pl.Expr, days_per_year: float = DAYS_PER_YEAR) -> pl.Expr:
    """Years from the first to the last timestamp, in real time, so any bar size works."""
    return hours_between(ts.first(), ts.last()) / (HOURS_PER_DAY * days_per_year)


def cagr(
    price: pl.Expr,
    ts: pl.Expr,
    days_per_year: float = DAYS_PER_YEAR,
    min_days: float = MIN_DAYS_TO_ANNUALISE,
) -> pl.Expr:
    """Annualised compounded return ``(last / first) ** (1 / years) - 1``, years in real elapsed time
    (``hours / (24 * days_per_year)``); null when less than `min_days` (and always for 0) elapsed."""
    years = years_elapsed(ts, days_per_year)
    long_enough = (years > 0) & (years * days_per_year >= min_days)
    return pl.when(long_enough).then((price.last() / price.first()) ** (1 / years) - 1)


def _ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """numerator / denominator, null (not inf) when the denominator is 0 or null."""
    return pl.when(denominator > 0).then(numerator / denominator)


# ---------------------------------------------------------------------------------------------
# Frames


def with_drawdown(bars: Frame, *, price: str = CLOSE, intrabar: bool = False, by: By = SYMBOL) -> Frame:
    """`bars` sorted by (`by`, ts) with three columns added, per symbol:

    - ``peak``: the running peak (of `price`, or of ``high`` when `intrabar`);
    - ``drawdown``: ``price / peak - 1`` (``low / peak - 1`` when `intrabar`), <= 0;
    - ``episode``: a counter (UInt32, from 1) that steps at every bar reaching its running peak.

    Pass ``by=("exchange", "symbol")`` when the frame holds several exchanges.
    """
    keys = _keys(by)
    peak_source, low_source = (pl.col(HIGH), pl.col(LOW)) if intrabar else (pl.col(price), pl.col(price))
    result = (
        bars.lazy()
        .sort([*keys, TS])
        .with_columns(_runs(keys).alias(_RUN))
        .with_columns(peak_source.cum_max().over(_RUN).alias(PEAK))
        .with_columns(
            (low_source / pl.col(PEAK) - 1).alias(DRAWDOWN),
            (peak_source >= pl.col(PEAK)).cum_sum().over(_RUN).alias(EPISODE),
        )
        .drop(_RUN)
    )
    return _like(result, bars)


def episodes(drawdowns: Frame, *, by: By = SYMBOL) -> Frame:
    """One row per episode of a `with_drawdown` frame, sorted by (`by`, peak_ts).

    Columns: `by`, episode, peak_ts, trough_ts, recovery_ts (null while active), peak_price,
    trough_price, depth (negative fraction, ``trough / peak - 1``), bars, peak_to_trough_hours,
    trough_to_recovery_hours (null while active), underwater_hours (peak to recovery, or peak to the
    last bar of the data while active: a lower bound), active.
    The trough is the first bar at the episode's lowest drawdown.
    """
    keys = _keys(by)
    lowest = pl.col(DRAWDOWN).arg_min()
    result = (
        drawdowns.lazy()
        .group_by(_runs([*keys, EPISODE]).alias(_RUN))
        .agg(
            *(pl.col(key).first() for key in (*keys, EPISODE)),
            pl.col(TS).first().alias(PEAK_TS),
            pl.col(TS).get(lowest).alias(TROUGH_TS),
            pl.col(PEAK).first().alias(PEAK_PRICE),
            pl.col(DRAWDOWN).min().alias(DEPTH),
            pl.len().alias(BARS),
            pl.col(TS).last().alias("_last_ts"),
        )
        .sort([*keys, EPISODE])
        .with_columns(
            pl.col(PEAK_TS).shift(-1).over(keys).alias(RECOVERY_TS),
            pl.col("_last_ts").last().over(keys).alias("_data_end"),
        )
        .filter(pl.col(DEPTH) < 0)
        .select(
            *keys,
            EPISODE,
            PEAK_TS,
            TROUGH_TS,
            RECOVERY_TS,
            PEAK_PRICE,
            (pl.col(PEAK_PRICE) * (1 + pl.col(DEPTH))).alias(TROUGH_PRICE),
            DEPTH,
            BARS,
            hours_between(pl.col(PEAK_TS), pl.col(TROUGH_TS)).alias(PEAK_TO_TROUGH_HOURS),
            hours_between(pl.col(TROUGH_TS), pl.col(RECOVERY_TS)).alias(TROUGH_TO_RECOVERY_HOURS),
            hours_between(pl.col(PEAK_TS), pl.coalesce(RECOVERY_TS, "_data_end")).alias(UNDERWATER_HOURS),
            pl.col(RECOVERY_TS).is_null().alias(ACTIVE),
        )
    )
    return _like(result, drawdowns)


def top_episodes(table: Frame, n: int, *, by: By = SYMBOL) -> Frame:
    """The `n` deepest episodes per symbol, deepest first (ties: the earlier one first)."""
    keys = _keys(by)
    rank = pl.struct(DEPTH, PEAK_TS).rank("ordinal").over(keys)
    return table.filter(rank <= n).sort([*keys, DEPTH, PEAK_TS])


def desk_metrics(
    drawdowns: Frame,
    *,
    table: pl.DataFrame | pl.LazyFrame | None = None,
    price: str = CLOSE,
    by: By = SYMBOL,
    deeper_than: float = DEEP_DRAWDOWN,
    days_per_year: float = DAYS_PER_YEAR,
    min_days: float = MIN_DAYS_TO_ANNUALISE,
    confidence: float = CDAR_CONFIDENCE,
    risk_free_rate: float = RISK_FREE_RATE,
    trailing_windows: Sequence[str] = TRAILING_WINDOWS,
) -> Frame:
    """One row per symbol of a `with_drawdown` frame; every value a fraction, hours or UTC time.
    `table`: its `episodes`, when the caller has them already (they are not built twice).

    ===============================  ===========================================================
    start, end, bars                 first and last bar open time; number of bars
    current_drawdown                 D at the last bar
    max_drawdown                     min D (negative); max_drawdown_{peak,trough,recovery}_ts
                                     are its episode's dates (recovery null if still active)
    average_drawdown                 mean episode depth (null without episodes); it falls with
                                     the bar size, as shorter bars see more, shallower episodes
    deep_drawdowns                   episodes with depth <= `deeper_than`
    longest_underwater_hours         max underwater_hours, active episodes counted to the end
    total_return, cagr               last / first - 1; annualised over the real elapsed time
                                     with `days_per_year` (365); cagr and the ratios built on
                                     it are null for windows shorter than `min_days` (30)
    calmar                           cagr / |max_drawdown| (Young 1991), over the whole window
    ulcer_index, pain_index          see `ulcer_index`, `pain_index` (positive fractions)
    ulcer_performance_index          (cagr - `risk_free_rate`) / ulcer_index (Martin's UPI;
                                     quantstats uses the total, not annualised, return)
    cdar                             `conditional_drawdown_at_risk` at `confidence`
    recovery_factor                  total_return / |max_drawdown| (quantstats sums simple
                                     returns instead of compounding them)
    drawdown_from_{w}_high           last price / max price of the trailing window w - 1
    ===============================  ===========================================================
    """
    keys = _keys(by)
    frame = drawdowns.lazy()
    dd, px, ts = pl.col(DRAWDOWN), pl.col(price), pl.col(TS)
    series = frame.group_by(_runs(keys).alias(_RUN)).agg(
        *(pl.col(key).first() for key in keys),
        ts.first().alias("start"),
        ts.last().alias("end"),
        pl.len().alias(BARS),
        dd.last().alias("current_drawdown"),
        dd.min().alias("max_drawdown"),
        total_return(px).alias("total_return"),
        cagr(px, ts, days_per_year, min_days).alias("cagr"),
        ulcer_index(dd).alias("ulcer_index"),
        pain_index(dd).alias("pain_index"),
        conditional_drawdown_at_risk(dd, confidence).alias("cdar"),
        *(
            (px.last() / _since(px, ts, ts.last().dt.offset_by(f"-{w}")).max() - 1).alias(f"drawdown_from_{w}_high")
            for w in trailing_windows
        ),
    )
    deepest = pl.col(DEPTH).arg_min()
    spells = (episodes(frame, by=by) if table is None else table.lazy()).group_by(keys).agg(
        pl.col(PEAK_TS).get(deepest).alias("max_drawdown_peak_ts"),
        pl.col(TROUGH_TS).get(deepest).alias("max_drawdown_trough_ts"),
        pl.col(RECOVERY_TS).get(deepest).alias("max_drawdown_recovery_ts"),
        pl.col(DEPTH).mean().alias("average_drawdown"),
        (pl.col(DEPTH) <= deeper_than).sum().alias("deep_drawdowns"),
        pl.col(UNDERWATER_HOURS).max().alias("longest_underwater_hours"),
    )
    loss = -pl.col("max_drawdown")
    result = (
        series.join(spells, on=keys, how="left")
        .with_columns(
            pl.col("deep_drawdowns").fill_null(0).cast(pl.UInt32),
            pl.col("longest_underwater_hours").fill_null(0.0),
            _ratio(pl.col("cagr"), loss).alias("calmar"),
            _ratio(pl.col("cagr") - risk_free_rate, pl.col("ulcer_index")).alias("ulcer_performance_index"),
            _ratio(pl.col("total_return"), loss).alias("recovery_factor"),
        )
        .select(
            *keys,
            "start",
            "end",
            BARS,
            "current_drawdown",
            "max_drawdown",
            "max_drawdown_peak_ts",
            "max_drawdown_trough_ts",
            "max_drawdown_recovery_ts",
            "average_drawdown",
            "deep_drawdowns",
            "longest_underwater_hours",
            "total_return",
            "cagr",
            "calmar",
            "ulcer_index",
            "ulcer_performance_index",
            "pain_index",
            "cdar",
            "recovery_factor",
            *(f"drawdown_from_{w}_high" for w in trailing_windows),
        )
        .sort(keys)
    )
    return _like(result, drawdowns)


# ---------------------------------------------------------------------------------------------
# Attribution: where in the calendar, and during which liquidations, each decline happened


def liquidation_bursts(
    liquidations: Frame,
    *,
    quantile: float = BURST_QUANTILE,
    usd: float | None = None,
) -> Frame:
    """Liquidation totals (`liquidation_totals`: ts, long_usd, short_usd[, symbol]) per symbol and
    bar, summed over exchanges, with ``total_usd`` and ``burst``.

    The burst rule: a bar is a burst when its total liquidated notional (long + short) is at or
    above `usd` when given, else at or above the `quantile` (0.95) of that symbol's bars in the
    frame passed, and above zero. The quantile is relative to the window the caller loaded, so
    pass a fixed `usd` to compare windows. A frame without a symbol column is taken as
    market-wide.
    """
    keys = [SYMBOL] if SYMBOL in liquidations.collect_schema().names() else []
    total = pl.col("total_usd")
    cutoff = total.quantile(quantile, "linear")
    threshold = pl.lit(usd, pl.Float64) if usd is not None else cutoff.over(keys) if keys else cutoff
    result = (
        liquidations.lazy()
        .group_by([*keys, TS])
        .agg((pl.col("long_usd").fill_null(0) + pl.col("short_usd").fill_null(0)).sum().alias("total_usd"))
        .with_columns(((total >= threshold) & (total > 0)).alias("burst"))
        .sort([*keys, TS])
    )
    return _like(result, liquidations)


def attribution(
    drawdowns: Frame,
    table: pl.DataFrame | pl.LazyFrame,
    *,
    price: str = CLOSE,
    by: By = SYMBOL,
    weekend: str = "utc",
    liquidations: pl.DataFrame | pl.LazyFrame | None = None,
    burst_quantile: float = BURST_QUANTILE,
    burst_usd: float | None = None,
    liquidation_timeframe: str = LIQUIDATION_TIMEFRAME,
) -> Frame:
    """Where each episode's decline happened: one row per episode of `table` (e.g. `top_episodes`).

    The decline of an episode is the sum of the bar log returns ``ln(close_t / close_{t-1})`` over
    the bars after its peak up to and including its trough; it equals ``ln(1 + depth)`` for
    close-based drawdowns. Each bar's return is credited to its open time (a return across a gap in
    the data is credited to the bar after the gap). Columns:

    - ``decline_log_return``: the sum above (negative);
    - ``weekend_share`` / ``weekday_share``: the part of it on weekend / weekday bars (`weekend`:
      "utc" or "cme", see `lib.analytics.sessions`); they add up to 1. A share can exceed 1 or be
      negative when the other part rallied;
    - ``weekend_time_share``: the part of the decline's *time* on weekends, the baseline to
      compare weekend_share with (2/7 of a long window);
    - ``{session}_share`` for each of `SESSIONS` (asia, europe, us, late_us), adding up to 1;
    - with `liquidations` (see `liquidation_bursts` for the burst rule): ``burst_share`` and
      ``burst_time_share``, and ``liquidation_coverage``, the part of the decline's bars with
      liquidation data; the shares are over covered bars and null when none is covered.
    """
    keys = _keys(by)
    ret, ts = pl.col("_log_return"), pl.col(TS)
    decline = _decline_bars(drawdowns, table, price, keys).with_columns(
        is_weekend(ts, weekend).alias("_weekend"), session(ts).alias("_session")
    )
    burst_columns: list[pl.Expr] = []
    if liquidations is not None:
        decline = _with_burst(decline, liquidations, burst_quantile, burst_usd, liquidation_timeframe)
        covered = pl.col("_burst").is_not_null()
        burst_columns = [
            covered.mean().alias("liquidation_coverage"),
            _share(ret.filter(pl.col("_burst")).sum(), ret.filter(covered).sum()).alias("burst_share"),
            _share(pl.col("_hours").filter(pl.col("_burst")).sum(), pl.col("_hours").filter(covered).sum()).alias(
                "burst_time_share"
            ),
        ]
    total = ret.sum()
    result = (
        decline.group_by([*keys, EPISODE, PEAK_TS, TROUGH_TS, DEPTH])
        .agg(
            total.alias("decline_log_return"),
            _share(ret.filter(pl.col("_weekend")).sum(), total).alias("weekend_share"),
            _share(ret.filter(~pl.col("_weekend")).sum(), total).alias("weekday_share"),
            _share(pl.col("_hours").filter(pl.col("_weekend")).sum(), pl.col("_hours").sum()).alias(
                "weekend_time_share"
            ),
            *(_share(ret.filter(pl.col("_session") == name).sum(), total).alias(f"{name}_share") for name in SESSIONS),
            *burst_columns,
        )
        .sort([*keys, PEAK_TS])
    )
    return _like(result, drawdowns)


def decline_by_period(
    drawdowns: Frame,
    table: pl.DataFrame | pl.LazyFrame,
    *,
    every: str = "1d",
    price: str = CLOSE,
    by: By = SYMBOL,
    weekend: str = "utc",
) -> Frame:
    """The legs of each episode's decline: its bar log returns (as in `attribution`) summed per
    calendar period of length `every` (UTC, e.g. "1d", "4h"), one row per episode and period with
    ``period_start``, ``log_return``, ``share`` (of the episode's whole decline) and ``weekend``
    (the period starts on a weekend). Sorted by (`by`, peak_ts, period_start)."""
    keys = _keys(by)
    decline = _decline_bars(drawdowns, table, price, keys)
    result = (
        decline.with_columns(pl.col(TS).dt.truncate(every).alias("period_start"))
        .group_by([*keys, EPISODE, PEAK_TS, "period_start"])
        .agg(pl.col("_log_return").sum().alias("log_return"))
        .with_columns(
            _share(pl.col("log_return"), pl.col("log_return").sum().over([*keys, EPISODE])).alias("share"),
            is_weekend(pl.col("period_start"), weekend).alias("weekend"),
        )
        .sort([*keys, PEAK_TS, "period_start"])
        .select(*keys, EPISODE, PEAK_TS, "period_start", "log_return", "share", "weekend")
    )
    return _like(result, drawdowns)


def _decline_bars(
    drawdowns: pl.DataFrame | pl.LazyFrame, table: pl.DataFrame | pl.LazyFrame, price: str, keys: list[str]
) -> pl.LazyFrame:
    """The bars after each episode's peak up to its trough, with their log return and span in hours.

    An episode's first bar is its peak, so every decline bar finds its previous bar inside its own
    episode: the returns are taken within the selected episodes only, not over the whole series.
    """
    ts = pl.col(TS)
    episodes_ = table.lazy().select(*keys, EPISODE, PEAK_TS, TROUGH_TS, DEPTH)
    within = [*keys, EPISODE]
    return (
        drawdowns.lazy()
        .join(episodes_, on=within, how="inner")
        .filter(ts <= pl.col(TROUGH_TS))
        .with_columns(
            (pl.col(price) / pl.col(price).shift(1)).log().over(within, order_by=TS).alias("_log_return"),
            hours_between(ts.shift(1), ts).over(within, order_by=TS).alias("_hours"),
        )
        .filter(ts > pl.col(PEAK_TS))
    )


def _share(part: pl.Expr, whole: pl.Expr) -> pl.Expr:
    """part / whole, null when the whole is 0 (a flat decline has no shares)."""
    return pl.when(whole != 0).then(part / whole + 0.0)  # + 0.0 turns -0.0 into 0.0


def _with_burst(
    decline: pl.LazyFrame,
    liquidations: pl.DataFrame | pl.LazyFrame,
    quantile: float,
    usd: float | None,
    timeframe: str,
) -> pl.LazyFrame:
    """Add ``_burst`` to each bar: the burst flag of the liquidation bar it opens in, null when
    there is none (no data for that time)."""
    bursts = liquidation_bursts(liquidations.lazy(), quantile=quantile, usd=usd)
    market_wide = SYMBOL not in bursts.collect_schema().names()
    # A bar opening at 10:59 belongs to the liquidation bar of 10:00, not to the one of 11:00.
    within = TIMEFRAMES[timeframe] - timedelta(microseconds=1)
    return (
        decline.sort(TS)
        .join_asof(
            bursts.select(*([] if market_wide else [SYMBOL]), TS, pl.col("burst").alias("_burst")).sort(TS),
            on=TS,
            by=None if market_wide else SYMBOL,
            strategy="backward",
            tolerance=within,
            check_sortedness=False,  # both sides are sorted by ts just above; polars cannot check it per group
        )
    )


# ---------------------------------------------------------------------------------------------
# Cross-asset


def aligned_drawdowns(bars: Frame, *, price: str = CLOSE, intrabar: bool = False) -> Frame:
    """`with_drawdown` of every symbol over the timestamps that *all* symbols have, so the running
    peaks start together at the first common bar and each row has a partner in every symbol.
    Timestamps missing from any symbol are dropped, never filled."""
    frame = bars.lazy()
    # One row per (symbol, ts) in a bars frame, so a timestamp is common when it has one row per symbol.
    common = frame.filter(pl.len().over(TS) == pl.col(SYMBOL).n_unique())
    return _like(with_drawdown(common, price=price, intrabar=intrabar), bars)


def underwater_together(aligned: pl.DataFrame | pl.LazyFrame, *, deeper_than: float = 0.0) -> pl.DataFrame:
    """For every combination of the symbols in an `aligned_drawdowns` frame, the share of common
    bars on which all of them sit below `deeper_than` (0.0: any distance under the peak; -0.2: more
    than 20 % down). Columns: assets (list of symbols, sorted), share, deeper_than. Bars count equally, so
    for evenly spaced bars this is the share of time. Raises ValueError when the symbols do not
    share the same timestamps.
    """
    frame = (
        aligned.lazy()
        .select(SYMBOL, TS, (pl.col(DRAWDOWN) < deeper_than).alias("_under"))
        .sort(SYMBOL, TS)
        .collect(engine=ENGINE)
    )
    # Aligned symbols hold the same timestamps, so their sorted blocks line up row by row.
    parts = {key[0]: part for key, part in frame.partition_by(SYMBOL, as_dict=True, maintain_order=True).items()}
    symbols = sorted(parts)
    if any(not parts[s][TS].equals(parts[symbols[0]][TS]) for s in symbols):
        raise ValueError("symbols do not share the same timestamps: pass an aligned_drawdowns() frame")
    wide = pl.DataFrame({s: parts[s]["_under"] for s in symbols})
    groups = [list(g) for size in range(1, len(symbols) + 1) for g in combinations(symbols, size)]
    means = [pl.all_horizontal(g).mean().alias(str(i)) for i, g in enumerate(groups)]
    shares = wide.select(means).row(0) if groups else ()
    return pl.DataFrame(
        {"assets": groups, "share": list(shares), "deeper_than": [deeper_than] * len(groups)},
        schema={"assets": pl.List(pl.String), "share": pl.Float64, "deeper_than": pl.Float64},
    )
