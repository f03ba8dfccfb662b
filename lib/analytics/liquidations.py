"""Realised liquidations: when and at what price positions were actually liquidated (measured).

Everything here is what venues reported; nothing is estimated except where a per-bar total has no
price (then the placement rule below says where it is drawn, and the grid carries that rule).

Inputs are the two canonical liquidation datasets (one symbol at a time):

- events (`liquidations`: ts, side, price, qty, notional_usd): each event lands in the cell of its
  time slot and price; ``usd = notional_usd``, or ``price × qty`` where the notional is missing.
- per-bar totals (`liquidation_totals`: ts, long_usd, short_usd, e.g. Coinglass hourly or daily
  files): a bar's notional is placed on the price axis from the `bars` row with the same ts, by a
  placement rule (`PLACEMENTS`):

  - ``range`` (default): uniform over the bar's [low, high]; bucket ``k`` gets
    ``usd × |[low, high] ∩ [k·b, (k+1)·b)| / (high − low)`` (all of it in one bucket when high = low);
  - ``close``: all of it in the close's bucket;
  - ``wick``: longs at the bar's low, shorts at its high (longs are liquidated as price falls).

  Totals whose bar is missing cannot be placed: they are counted in ``Grid.unplaced_usd``.

The grid: rows are bar open times (UTC), columns price buckets ``[k·b, (k+1)·b)`` of a fixed size
``b = bucket_usd`` in USD, anchored at zero so that any two grids with the same ``b`` line up.
Conservation: ``long_usd.sum() + short_usd.sum() + unplaced_usd`` equals the notional put in, for
any bucket size (up to float rounding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
import polars as pl

from lib.schema import SYMBOL, TS, TS_TYPE

LONG, SHORT = "long", "short"
SIDES: tuple[str, ...] = (LONG, SHORT)
Side = Literal["long", "short", "both"]

PLACEMENTS: dict[str, str] = {
    "range": "each bar's liquidations spread evenly over its low-high range",
    "close": "each bar's liquidations placed at its close",
    "wick": "each bar's long liquidations at its low, short liquidations at its high",
}
DEFAULT_PLACEMENT = "range"
SAMPLED_NOTE = ("includes sampled feeds (Binance forceOrder, OKX: at most one event per symbol per second), "
                "so these totals are a lower bound")
EVENTS_METHOD = "liquidation events at their reported prices"

TARGET_BUCKETS = 200  # default grid height: fine enough to see clusters, light enough to draw
NICE_STEPS: tuple[float, ...] = (1.0, 2.0, 2.5, 5.0, 10.0)
MIN_SPAN_FRACTION = 0.01  # a flat price range is sized as if it spanned 1 % of the price
MAX_BUCKETS = 5_000  # a guard against a bucket size far too small for the price range
DEFAULT_TIMEFRAME = "1h"
DEFAULT_BURSTS = 10


@dataclass(frozen=True)
class Grid:
    """USD per (time, price bucket), one matrix per side: rows follow `ts`, columns `price`.

    `price` holds the buckets' lower edges: column ``j`` covers ``[price[j], price[j] + bucket_usd)``.
    `method` says how the USD got there (placement rule, or the estimate's assumptions), for charts.
    """

    ts: pl.Series
    price: np.ndarray
    bucket_usd: float
    long_usd: np.ndarray
    short_usd: np.ndarray
    method: str
    unplaced_usd: float = 0.0

    @property
    def centre(self) -> np.ndarray:
        """Bucket centres, USD."""
        return self.price + self.bucket_usd / 2

    def side(self, side: Side) -> np.ndarray:
        """The matrix of one side, or of both summed."""
        if side == "both":
            return self.long_usd + self.short_usd
        return self.long_usd if side == LONG else self.short_usd


def nice_bucket_usd(low: float, high: float, target: int = TARGET_BUCKETS) -> float:
    """A round bucket size (1, 2, 2.5 or 5 × 10^n USD) giving about `target` buckets over [low, high]."""
    raw = max(high - low, abs(high) * MIN_SPAN_FRACTION, 1e-9) / target
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(step * magnitude for step in NICE_STEPS if step * magnitude >= raw * (1 - 1e-9))


def bucket_index(price: np.ndarray, bucket_usd: float) -> np.ndarray:
    """Index ``k = floor(price / b)`` of the bucket ``[k·b, (k+1)·b)`` holding each price."""
    return np.floor(np.asarray(price, dtype=np.float64) / bucket_usd).astype(np.int64)


def build_grid(
    ts: pl.Series,
    row: np.ndarray,
    bucket: np.ndarray,
    long_usd: np.ndarray,
    short_usd: np.ndarray,
    *,
    bucket_usd: float,
    method: str,
    unplaced_usd: float = 0.0,
) -> Grid:
    """Sum cells given as (row index into `ts`, bucket index, long USD, short USD) into a Grid whose
    columns run from the lowest to the highest bucket present."""
    if bucket_usd <= 0:
        raise ValueError(f"bucket_usd must be positive, got {bucket_usd}")
    if bucket.size == 0:
        empty = np.zeros((len(ts), 0))
        return Grid(ts, np.zeros(0), bucket_usd, empty, empty.copy(), method, unplaced_usd)
    first, last = int(bucket.min()), int(bucket.max())
    width = last - first + 1
    if width > MAX_BUCKETS:
        raise ValueError(f"{width} price buckets of {bucket_usd:g} USD: choose a bucket of at least "
                         f"{nice_bucket_usd(first * bucket_usd, (last + 1) * bucket_usd, MAX_BUCKETS):g} USD")
    flat = row * width + (bucket - first)
    size = len(ts) * width

    def summed(usd: np.ndarray) -> np.ndarray:
        return np.bincount(flat, weights=usd, minlength=size).reshape(len(ts), width)

    price = (first + np.arange(width)) * bucket_usd
    return Grid(ts, price, bucket_usd, summed(long_usd), summed(short_usd), method, unplaced_usd)


# ---------------------------------------------------------------------------------------------
# Realised heatmaps


def heatmap_from_events(
    events: pl.DataFrame, *, bucket_usd: float, timeframe: str = DEFAULT_TIMEFRAME
) -> Grid:
    """Events (ts, side, price, qty[, notional_usd]) summed per `timeframe` slot and price bucket.
    Rows are every slot from the first event's to the last's, empty ones included. Where any event
    comes from a sampled feed (`sampled`), the method says so: the totals are then a lower bound."""
    require_one_symbol(events)
    sampled = "sampled" in events.columns and bool(events["sampled"].any())
    method = f"{EVENTS_METHOD} · {SAMPLED_NOTE}" if sampled else EVENTS_METHOD
    usd = pl.col("notional_usd") if "notional_usd" in events.columns else pl.lit(None, pl.Float64)
    cells = events.select(
        pl.col(TS).dt.truncate(timeframe).alias(TS),
        pl.col("side"),
        pl.col("price"),
        pl.coalesce(usd, pl.col("price") * pl.col("qty")).alias("usd"),
    )
    if cells.is_empty():
        none = np.zeros(0, dtype=np.int64)
        return build_grid(pl.Series(TS, [], TS_TYPE), none, none, none, none,
                          bucket_usd=bucket_usd, method=method)
    axis = pl.datetime_range(cells[TS].min(), cells[TS].max(), timeframe, eager=True).alias(TS)
    usd_values = cells["usd"].to_numpy()
    is_long = (cells["side"] == LONG).to_numpy()
    return build_grid(
        axis,
        _rows(axis, cells[TS]),
        bucket_index(cells["price"].to_numpy(), bucket_usd),
        np.where(is_long, usd_values, 0.0),
        np.where(is_long, 0.0, usd_values),
        bucket_usd=bucket_usd,
        method=method,
    )


def heatmap_from_totals(
    totals: pl.DataFrame,
    bars: pl.DataFrame,
    *,
    bucket_usd: float,
    placement: str = DEFAULT_PLACEMENT,
    every: str | None = None,
) -> Grid:
    """Per-bar totals (ts, long_usd, short_usd) placed on the price axis by `placement` (see the
    module docstring), using the `bars` row (same timeframe) with the same ts; totals without a bar
    go to ``unplaced_usd``. Rows are the totals' times (summed over exchanges), or `every` windows
    (e.g. "1h" for a year of 1-minute totals): each bar is placed by its own range, then summed."""
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}")
    require_one_symbol(totals)
    require_one_symbol(bars)
    placed = (
        totals.group_by(TS)
        .agg(pl.col("long_usd").fill_null(0).sum(), pl.col("short_usd").fill_null(0).sum())
        .join(bars.select(TS, "low", "high", "close").unique(TS, keep="first"), on=TS, how="left")
        .with_columns(_slot(every))
        .sort(TS)
    )
    has_bar = pl.all_horizontal(pl.col("low", "high", "close").is_not_null())
    unplaced = float(placed.filter(~has_bar).select(pl.sum_horizontal("long_usd", "short_usd")).sum().item() or 0)
    axis = placed["_slot"].unique().sort().alias(TS)
    inside = placed.filter(has_bar)
    row = _rows(axis, inside["_slot"])
    long_usd, short_usd = inside["long_usd"].to_numpy(), inside["short_usd"].to_numpy()
    low, high, close = (inside[c].to_numpy() for c in ("low", "high", "close"))
    method = f"placement '{placement}': {PLACEMENTS[placement]}"
    if placement == "range":
        cell_row, bucket, weight = spread_over_range(low, high, bucket_usd)
        return build_grid(axis, row[cell_row], bucket, long_usd[cell_row] * weight, short_usd[cell_row] * weight,
                          bucket_usd=bucket_usd, method=method, unplaced_usd=unplaced)
    long_price, short_price = (close, close) if placement == "close" else (low, high)
    zeros = np.zeros_like(long_usd)
    return build_grid(
        axis,
        np.concatenate([row, row]),
        np.concatenate([bucket_index(long_price, bucket_usd), bucket_index(short_price, bucket_usd)]),
        np.concatenate([long_usd, zeros]),
        np.concatenate([zeros, short_usd]),
        bucket_usd=bucket_usd,
        method=method,
        unplaced_usd=unplaced,
    )


def realised_heatmap(
    liquidations: pl.DataFrame,
    bars: pl.DataFrame | None = None,
    *,
    bucket_usd: float,
    placement: str = DEFAULT_PLACEMENT,
    every: str | None = None,
) -> Grid:
    """The realised heatmap of either liquidations dataset: events (have a price; rows of `every`,
    by default `DEFAULT_TIMEFRAME`) or per-bar totals (long_usd, short_usd; need `bars` to be placed;
    rows of `every`, by default the bars' own)."""
    if "price" in liquidations.columns:
        return heatmap_from_events(liquidations, bucket_usd=bucket_usd, timeframe=every or DEFAULT_TIMEFRAME)
    if bars is None:
        raise ValueError("per-bar liquidation totals have no price: pass the matching bars to place them")
    return heatmap_from_totals(liquidations, bars, bucket_usd=bucket_usd, placement=placement, every=every)


def spread_over_range(
    low: np.ndarray, high: np.ndarray, bucket_usd: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split each interval [low_i, high_i] into the buckets it touches: (interval index, bucket
    index, weight) with weight = overlap length / interval length, renormalised so that each
    interval's weights sum to exactly 1 (a zero-length interval puts weight 1 in its bucket)."""
    first = bucket_index(low, bucket_usd)
    last = np.maximum(first, np.ceil(high / bucket_usd).astype(np.int64) - 1)
    count = last - first + 1
    row = np.repeat(np.arange(low.size), count)
    bucket = first[row] + np.arange(row.size) - np.repeat(np.cumsum(count) - count, count)
    overlap = np.minimum(high[row], (bucket + 1) * bucket_usd) - np.maximum(low[row], bucket * bucket_usd)
    overlap = np.where(high[row] > low[row], np.clip(overlap, 0.0, None), 0.0)
    total = np.bincount(row, weights=overlap, minlength=low.size)
    is_point = total[row] <= 0
    share = overlap / np.where(is_point, 1.0, total[row])
    weight = np.where(is_point, (bucket == first[row]).astype(np.float64), share)
    return row, bucket, weight


def resample_grid(grid: Grid, rows_per_cell: int, how: Literal["sum", "last"]) -> Grid:
    """Merge every `rows_per_cell` consecutive rows: ``sum`` for flows (realised notional; keeps
    the total), ``last`` for stocks (estimated open levels, as of the end of each merged span).
    Rows are labelled with the first time of their span."""
    if rows_per_cell <= 1:
        return grid
    starts = np.arange(0, len(grid.ts), rows_per_cell)

    def merged(matrix: np.ndarray) -> np.ndarray:
        if how == "sum":
            return np.add.reduceat(matrix, starts, axis=0) if len(starts) else matrix
        return matrix[np.minimum(starts + rows_per_cell, len(grid.ts)) - 1]

    return Grid(grid.ts.gather(starts), grid.price, grid.bucket_usd, merged(grid.long_usd), merged(grid.short_usd),
                grid.method, grid.unplaced_usd)


def grid_since(grid: Grid, start: datetime | None) -> Grid:
    """The rows at or after `start` (all of them when None): e.g. hide an estimate's warm-up."""
    if start is None:
        return grid
    first = int(_rows(grid.ts, pl.Series([start]))[0])
    return Grid(grid.ts.slice(first), grid.price, grid.bucket_usd, grid.long_usd[first:], grid.short_usd[first:],
                grid.method, grid.unplaced_usd)


def grid_between(grid: Grid, low: float, high: float) -> Grid:
    """The price buckets that overlap [low, high]; what falls outside is dropped (a view, not a total)."""
    keep = (grid.price + grid.bucket_usd > low) & (grid.price <= high)
    return Grid(grid.ts, grid.price[keep], grid.bucket_usd, grid.long_usd[:, keep], grid.short_usd[:, keep],
                grid.method, grid.unplaced_usd)


def grid_cells(grid: Grid) -> pl.DataFrame:
    """The non-empty cells as rows (ts, price = bucket lower edge, side, usd), for export."""
    frames = []
    for side in SIDES:
        matrix = grid.side(side)
        row, col = np.nonzero(matrix)
        cells = {TS: grid.ts.gather(row), "price": grid.price[col], "side": side, "usd": matrix[row, col]}
        frames.append(pl.DataFrame(cells))
    return pl.concat(frames).sort(TS, "price", "side")


def grid_summary(grid: Grid) -> dict[str, object]:
    """Size and totals of a grid (the CLI report's "grid" block): cells sum to the side totals."""
    long_usd, short_usd = float(grid.long_usd.sum()), float(grid.short_usd.sum())
    return {
        "bucket_usd": grid.bucket_usd,
        "buckets": int(grid.price.size),
        "times": len(grid.ts),
        "price_low": float(grid.price[0]) if grid.price.size else None,
        "price_high": float(grid.price[-1] + grid.bucket_usd) if grid.price.size else None,
        "long_usd": long_usd,
        "short_usd": short_usd,
        "cell_total_usd": long_usd + short_usd,
        "unplaced_usd": grid.unplaced_usd,
        "method": grid.method,
    }


# ---------------------------------------------------------------------------------------------
# Totals and bursts


def window_totals(liquidations: pl.DataFrame, every: str = DEFAULT_TIMEFRAME) -> pl.DataFrame:
    """Long, short and total liquidated USD per `every` window (polars duration, e.g. "1h", "1d",
    "1w"; windows start at the window's UTC boundary), with ``long_share = long / total``. Takes
    events or per-bar totals; windows with no data are absent."""
    if "price" in liquidations.columns:
        usd = pl.col("notional_usd") if "notional_usd" in liquidations.columns else pl.lit(None, pl.Float64)
        usd = pl.coalesce(usd, pl.col("price") * pl.col("qty"))
        long_usd = usd.filter(pl.col("side") == LONG).sum()
        short_usd = usd.filter(pl.col("side") == SHORT).sum()
    else:
        long_usd, short_usd = pl.col("long_usd").fill_null(0).sum(), pl.col("short_usd").fill_null(0).sum()
    return (
        liquidations.group_by(pl.col(TS).dt.truncate(every))
        .agg(long_usd.alias("long_usd"), short_usd.alias("short_usd"))
        .with_columns((pl.col("long_usd") + pl.col("short_usd")).alias("total_usd"))
        .with_columns((pl.col("long_usd") / pl.col("total_usd")).fill_nan(None).alias("long_share"))
        .sort(TS)
    )


def largest_bursts(
    liquidations: pl.DataFrame,
    *,
    n: int = DEFAULT_BURSTS,
    every: str = DEFAULT_TIMEFRAME,
    bars: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The `n` windows of `every` with the most liquidated USD, largest first, ranked from 1. With
    `bars` (same windows), adds the window's open, low, high, close and ``move = close / open − 1``."""
    top = window_totals(liquidations, every).filter(pl.col("total_usd") > 0).top_k(n, by="total_usd")
    top = top.sort("total_usd", descending=True).with_row_index("rank", offset=1)
    if bars is None:
        return top
    ohlc = bars.group_by(pl.col(TS).dt.truncate(every)).agg(
        pl.col("open").sort_by(TS).first(),
        pl.col("low").min(),
        pl.col("high").max(),
        pl.col("close").sort_by(TS).last(),
    )
    return top.join(ohlc, on=TS, how="left").with_columns((pl.col("close") / pl.col("open") - 1).alias("move"))


def _slot(every: str | None) -> pl.Expr:
    """The grid row a time falls in: itself, or the start of its `every` window."""
    return (pl.col(TS) if every is None else pl.col(TS).dt.truncate(every)).alias("_slot")


def _rows(axis: pl.Series, ts: pl.Series) -> np.ndarray:
    """Row index of each ts on a sorted time axis that contains it."""
    return np.searchsorted(axis.to_physical().to_numpy(), ts.cast(axis.dtype).to_physical().to_numpy())


def require_one_symbol(frame: pl.DataFrame) -> None:
    """Raise ValueError when `frame` mixes symbols (prices of different assets cannot share an axis)."""
    if SYMBOL in frame.columns and frame[SYMBOL].n_unique() > 1:
        raise ValueError(f"one symbol at a time: got {', '.join(sorted(frame[SYMBOL].unique().to_list()))}")
