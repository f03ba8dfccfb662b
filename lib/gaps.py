"""Gaps in a time series: spans where rows are missing. Recorded and shown, never filled."""

from __future__ import annotations

import polars as pl

from lib.schema import TIMEFRAMES, TS

# A step longer than this many timeframes is a gap: tolerates the few-ms jitter of real feeds
# (Binance SOL funding times) and the 2018 Binance bars that sit at :28:14 past the hour.
GAP_TOLERANCE = 1.5


def find_gaps(df: pl.DataFrame | pl.LazyFrame, timeframe: str) -> pl.DataFrame:
    """Missing spans of one series (one exchange, symbol, timeframe) as rows of
    gap_start (first missing bar: previous ts + timeframe), gap_end (the next ts present) and
    missing (how many bars fit in between). Empty for event or snapshot data with no timeframe."""
    schema = {"gap_start": pl.Datetime("us", "UTC"), "gap_end": pl.Datetime("us", "UTC"), "missing": pl.Int64}
    step = TIMEFRAMES.get(timeframe)
    if step is None:
        return pl.DataFrame(schema=schema)
    return (
        df.lazy()
        .select(pl.col(TS).sort().unique(maintain_order=True))
        .select(prev=pl.col(TS).shift(1), next=pl.col(TS))
        .filter((pl.col("next") - pl.col("prev")) > step * GAP_TOLERANCE)
        .select(
            gap_start=pl.col("prev") + step,
            gap_end=pl.col("next"),
            missing=((pl.col("next") - pl.col("prev")) / step).floor().cast(pl.Int64) - 1,
        )
        .collect()
        .cast(schema)
    )
