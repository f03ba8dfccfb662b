"""Fewer points for the screen: a chart never needs more rows than it has pixel columns.

Min-max decimation per time bucket keeps every extreme a reader could see (a crash wick, a
drawdown's trough), so the line looks the same while the payload is bounded by the screen,
not by the data (TOOLCHAIN.md: ~2 MB of JSON per 26k points).
"""

from __future__ import annotations

import polars as pl

from lib.schema import SYMBOL

MAX_POINTS = 4_000  # per series: about two points per pixel column of a wide screen


def minmax(frame: pl.DataFrame, value: str, max_points: int = MAX_POINTS, by: str = SYMBOL) -> pl.DataFrame:
    """`frame` (sorted by `by`, ts) thinned to at most `max_points` rows per `by` group: in each
    of max_points / 2 equal-count buckets, the first row holding the bucket's minimum of `value`
    and the first holding its maximum. Groups that already fit are kept whole; row order and
    columns are kept."""
    size = pl.len().over(by)
    indexed = frame.select(
        pl.col(by, value),
        pl.int_range(pl.len()).alias("_row"),
        (pl.int_range(pl.len()).over(by) * (max_points // 2) // size).alias("_bucket"),
        (size <= max_points).alias("_fits"),
    )
    extremes = indexed.group_by(by, "_bucket").agg(
        pl.col("_row").get(pl.col(value).arg_min()).alias("low"), pl.col("_row").get(pl.col(value).arg_max()).alias("high")
    )
    keep = pl.concat([extremes["low"], extremes["high"], indexed.filter("_fits")["_row"]]).drop_nulls().unique().sort()
    return frame[keep.to_list()]
