"""The reports of `python -m lib report`: frames in, a JSON-ready summary and one table out.

Pure: the CLI loads the frames from the store and prints what comes back. Every timestamp is a
bar open time rendered as ISO-8601 UTC with a ``Z`` (null where there is none); every amount is a
fraction or USD, as the analytics return it.

- `drawdown_report`: desk metrics of one series (max drawdown with its peak, trough and recovery,
  current drawdown, ...) and its deepest episodes with their attribution shares;
- `liquidation_report`: realised totals, the heatmap grid summary and its non-empty cells, the
  largest bursts, and the estimated-level summary with every assumption used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
import polars.selectors as cs

from lib.analytics import drawdowns as dd
from lib.analytics import liquidity as liq
from lib.analytics import liquidity_stats as stats
from lib.analytics.liquidation_levels import (
    SPLIT_RULES,
    TILTS,
    LevelEstimate,
    Spread,
    estimate_levels,
    fragility,
    fragility_by_weekend,
    spread_over_assumptions,
    tier_table,
)
from lib.analytics.liquidations import (
    DEFAULT_BURSTS,
    grid_cells,
    grid_summary,
    largest_bursts,
    nice_bucket_usd,
    realised_heatmap,
    window_totals,
)
from lib.schema import EXCHANGE, SYMBOL, TIMEFRAME, TS

ISO_UTC = "%Y-%m-%dT%H:%M:%S%.fZ"  # chrono: "%.f" prints fractional seconds only when there are some
DEFAULT_TOP = 10

# desk_metrics names the dates of the max drawdown's episode; the report's top level uses the short names.
MAX_DRAWDOWN_DATES = {
    "max_drawdown_peak_ts": dd.PEAK_TS,
    "max_drawdown_trough_ts": dd.TROUGH_TS,
    "max_drawdown_recovery_ts": dd.RECOVERY_TS,
}


@dataclass(frozen=True)
class Report:
    """What `--format json` prints (`summary`) and what `--format csv` prints (`table`)."""

    summary: dict[str, Any]
    table: pl.DataFrame


def json_ready(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with datetimes as ISO-8601 UTC strings ending in Z, dates as YYYY-MM-DD and float NaN as null."""
    return frame.with_columns(cs.datetime().dt.to_string(ISO_UTC), cs.date().dt.to_string("%Y-%m-%d"),
                              cs.float().fill_nan(None))


def records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """The rows of `frame` as JSON-ready dicts."""
    return json_ready(frame).to_dicts()


def span(ts: pl.Series, first: str = "start", last: str = "end") -> dict[str, str | None]:
    """The earliest and latest of `ts` as ISO-8601 UTC strings, under the names `first` and `last`."""
    (row,) = records(ts.to_frame(TS).select(pl.col(TS).min().alias(first), pl.col(TS).max().alias(last)))
    return row


def series_header(frame: pl.DataFrame) -> dict[str, str]:
    """symbol, exchange and timeframe of a frame holding one series; ValueError when it mixes them."""
    header = {}
    for column in (SYMBOL, EXCHANGE, TIMEFRAME):
        values = frame[column].unique().to_list()
        if len(values) != 1:
            raise ValueError(f"one series at a time: {column} has {sorted(values)}")
        header[column] = values[0]
    return header


def pick_series(
    entries: Sequence[dict[str, Any]], start: datetime | None, end: datetime | None
) -> dict[str, Any] | None:
    """Of manifest entries (`Store.status()`), the one with the most rows among those whose cached
    range [first_ts, last_ts] meets the window [start, end) (None: unbounded); ties go to the
    exchange name first in order. None when no entry meets the window."""

    def meets(entry: dict[str, Any]) -> bool:
        first, last = datetime.fromisoformat(entry["first_ts"]), datetime.fromisoformat(entry["last_ts"])
        return (start is None or last >= start) and (end is None or first < end)

    candidates = sorted((e for e in entries if meets(e)), key=lambda e: (-e["rows"], e[EXCHANGE], e[TIMEFRAME]))
    return candidates[0] if candidates else None


# ---------------------------------------------------------------------------------------------
# Drawdowns


def drawdown_report(
    bars: pl.DataFrame,
    *,
    top: int = DEFAULT_TOP,
    liquidations: pl.DataFrame | None = None,
    notes: Sequence[str] = (),
) -> Report:
    """Desk metrics of one series of `bars` (close-based drawdowns) and its `top` deepest episodes,
    deepest first, each with its attribution shares (weekend, sessions, and liquidation bursts when
    `liquidations`, per-bar totals, are given; see `lib.analytics.drawdowns.attribution`)."""
    header = series_header(bars)
    frame = dd.with_drawdown(bars)
    every = dd.episodes(frame)
    table = dd.top_episodes(every, top)
    shares = dd.attribution(frame, table, liquidations=liquidations).drop(dd.PEAK_TS, dd.TROUGH_TS, dd.DEPTH)
    episodes = table.join(shares, on=[SYMBOL, dd.EPISODE], how="left").sort(dd.DEPTH, dd.PEAK_TS).drop(SYMBOL)
    (metrics,) = records(dd.desk_metrics(frame, table=every).drop(SYMBOL).rename(MAX_DRAWDOWN_DATES))
    summary = {
        **header,
        **metrics,
        "liquidation_attribution": liquidations is not None,
        "notes": list(notes),
        "episodes": records(episodes),
    }
    return Report(summary, json_ready(episodes))


# ---------------------------------------------------------------------------------------------
# Liquidations


def liquidation_report(
    liquidations: pl.DataFrame,
    bars: pl.DataFrame,
    *,
    start: datetime,
    open_interest: pl.DataFrame | None = None,
    depth: pl.DataFrame | None = None,
    bucket_usd: float | None = None,
    bursts: int = DEFAULT_BURSTS,
    notes: Sequence[str] = (),
) -> Report:
    """Realised liquidations from `start` (events or per-bar totals of one symbol, summed over
    their rows) placed on the price axis with the `bars` of the same timeframe, and the estimated
    levels from all of `bars` (pass a warm-up before `start`, see `liquidation_levels.WARM_UP`) and
    `open_interest`, with cascade fragility against `depth` where given.

    `bucket_usd` defaults to a round size giving about 200 buckets over the window's price range.
    The grid conserves the notional: ``cell_total_usd + unplaced_usd = total_long_usd +
    total_short_usd``. The table is the grid's non-empty cells.
    """
    header = series_header(bars)
    timeframe = header[TIMEFRAME]
    window = bars.filter(pl.col(TS) >= start)
    realised = liquidations.filter(pl.col(TS) >= start)
    if window.is_empty() or realised.is_empty():
        raise ValueError(f"no {timeframe} bars or no liquidations from {start:%Y-%m-%d %H:%M} UTC")
    bucket = bucket_usd or nice_bucket_usd(window["low"].min(), window["high"].max())
    grid = realised_heatmap(realised, window, bucket_usd=bucket, every=timeframe)
    totals = window_totals(realised, timeframe).select(pl.col("long_usd", "short_usd", "total_usd").sum())
    (total,) = totals.to_dicts()
    estimate = estimate_levels(bars, open_interest, bucket_usd=bucket, history=False)  # the levels open now
    ranges = spread_over_assumptions(bars, open_interest, tier_table(), bucket_usd=bucket)
    summary = {
        **header,
        **span(window[TS]),
        "liquidation_exchanges": sorted(realised[EXCHANGE].unique().to_list()),
        **span(realised[TS], "liquidations_start", "liquidations_end"),
        "total_long_usd": total["long_usd"],
        "total_short_usd": total["short_usd"],
        "total_usd": total["total_usd"],
        "grid": grid_summary(grid),
        "largest_bursts": records(largest_bursts(realised, n=bursts, every=timeframe, bars=window)),
        "estimated": estimated_summary(estimate, bars[TS], depth, ranges),
        "notes": list(notes),
    }
    return Report(summary, json_ready(grid_cells(grid)))


def estimated_summary(estimate: LevelEstimate, run_over: pl.Series, depth: pl.DataFrame | None = None,
                      ranges: Spread | None = None) -> dict[str, Any]:
    """The estimate after its last bar, run over the bars of times `run_over`: levels still open
    per side, cascade fragility (against the weekday and weekend 1 % depth when `depth` is given)
    with its range over other assumptions (`ranges`, null above `liquidation_levels.SPREAD_MAX_BARS`
    bars), and the assumptions and notes behind it."""
    table = fragility(estimate) if depth is None else fragility_by_weekend(estimate, depth)
    return {
        "kind": estimate.assumptions["kind"],
        **span(run_over, "from", "as_of"),
        "last_price": estimate.last_price,
        "open_long_usd": float(estimate.open_long_usd.sum()),
        "open_short_usd": float(estimate.open_short_usd.sum()),
        "fragility": records(table),
        "fragility_range": None if ranges is None else {
            "runs": ranges.runs, "split_rules": list(SPLIT_RULES), "leverage_tilts": list(TILTS),
            "bands": records(ranges.fragility)},
        "assumptions": estimate.assumptions,
        "notes": list(estimate.notes),
    }


LIQUIDITY_MEASURES: tuple[str, ...] = (
    liq.VOLUME, liq.QUOTE_VOLUME, liq.TRADES, liq.AMIHUD, liq.EDGE_SPREAD, liq.CS_SPREAD, liq.REALIZED_VOL,
    liq.PARKINSON_VOL, liq.TAKER_BUY_SHARE,
)


def liquidity_report(bars: pl.DataFrame, weekend: str = "utc", notes: Sequence[str] = (), *,
                     estimate_quote_volume: bool = True) -> Report:
    """Weekend against weekday for one series of `bars`: per measure the daily means and medians of
    each side, the weekend / weekday ratio with its block-bootstrap CI, the Mann-Whitney, Welch and
    HAC p-values and the day counts (`liquidity_stats.weekend_effect`), plus a one-line verdict.
    A bar is weekend or weekday by its open time under `weekend` ("utc" or "cme"). `weekend_moves`:
    each weekend's Friday close -> Monday open move and low (`liquidity.weekend_moves`).
    `estimate_quote_volume`: as on the page, bars with base volume only get an estimated quote
    volume (`liquidity.estimated_quote_volume`); `quote_volume_estimated_bars` counts them."""
    header = series_header(bars)
    estimated = liq.missing_quote_volume(bars) if estimate_quote_volume else 0
    if estimated:
        notes = [*notes, f"quote volume estimated for {estimated} of {bars.height} bars as {liq.QUOTE_VOLUME_ESTIMATE}"]
    measured = liq.with_calendar(liq.with_measures(bars, estimate_quote_volume=estimate_quote_volume), weekend=weekend)
    effects = stats.weekend_effect(liq.daily(measured), LIQUIDITY_MEASURES)
    moves = liq.weekend_moves(measured).filter(pl.col("move").is_not_null())
    summary = {
        **header,
        **span(bars[TS]),
        "weekend_definition": weekend,
        "quote_volume_estimated_bars": estimated,
        "metrics": {row.pop("measure"): row for row in records(effects.drop(SYMBOL))},
        "verdicts": {row["measure"]: stats.verdict(row) for row in effects.iter_rows(named=True)},
        "weekend_moves": records(moves.select("start", "end", "friday_close", "monday_open", "move", "low",
                                              "max_drawdown")),
        "notes": list(notes),
    }
    return Report(summary, json_ready(effects))
