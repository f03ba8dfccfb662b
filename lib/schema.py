"""Canonical datasets: column names, polars types and keys, declared once (see DESIGN.md).

Every frame that crosses a module boundary is in one of these schemas. `conform` is the one place
that casts and checks them; sources call it at their boundary, the store calls it before writing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import polars as pl

TS_TYPE = pl.Datetime("us", "UTC")

ASSETS: tuple[str, ...] = ("BTC", "ETH", "SOL")

# Partition columns: stored in the directory names, present in every dataset.
EXCHANGE, SYMBOL, TIMEFRAME, TS = "exchange", "symbol", "timeframe", "ts"
PARTITIONS: dict[str, pl.DataType] = {EXCHANGE: pl.String(), SYMBOL: pl.String(), TIMEFRAME: pl.String()}

# Timeframe labels for rows that are not bars: single events, and snapshots at irregular times.
EVENT = "event"
SNAPSHOT = "snapshot"

TIMEFRAMES: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "3m": timedelta(minutes=3),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "2h": timedelta(hours=2),
    "4h": timedelta(hours=4),
    "6h": timedelta(hours=6),
    "8h": timedelta(hours=8),
    "12h": timedelta(hours=12),
    "1d": timedelta(days=1),
    "1w": timedelta(weeks=1),
}

# Depth bands, in percent of mid, for the `depth` dataset.
DEPTH_BANDS: tuple[float, ...] = (0.5, 1.0, 2.0)


def depth_column(side: str, band_pct: float) -> str:
    """Column name of the USD resting on `side` ('bid' or 'ask') within `band_pct` % of mid."""
    label = f"{band_pct:g}".replace(".", "p")
    return f"{side}_usd_{label}pct"


@dataclass(frozen=True)
class Dataset:
    """One canonical dataset: its value columns (besides the partitions) and its dedupe key."""

    name: str
    columns: dict[str, pl.DataType]
    key: tuple[str, ...]
    required: tuple[str, ...]

    @property
    def schema(self) -> dict[str, pl.DataType]:
        return {**PARTITIONS, **self.columns}


BARS = Dataset(
    name="bars",
    columns={
        TS: TS_TYPE,
        "open": pl.Float64(),
        "high": pl.Float64(),
        "low": pl.Float64(),
        "close": pl.Float64(),
        "volume": pl.Float64(),  # base asset
        "quote_volume": pl.Float64(),  # quote currency (USD or USDT)
        "trades": pl.Int64(),
        "taker_buy_volume": pl.Float64(),  # base asset
        "volume_reliable": pl.Boolean(),  # False where the source's volume is known to be unusable
    },
    key=(EXCHANGE, SYMBOL, TIMEFRAME, TS),
    required=(TS, "open", "high", "low", "close"),
)

LIQUIDATIONS = Dataset(
    name="liquidations",
    columns={
        TS: TS_TYPE,
        "side": pl.String(),  # side of the liquidated position: "long" or "short"
        "price": pl.Float64(),
        "qty": pl.Float64(),  # base asset
        "notional_usd": pl.Float64(),
        "sampled": pl.Boolean(),  # True where the feed throttles (Binance forceOrder: 1 event/s/symbol)
    },
    key=(EXCHANGE, SYMBOL, TS, "side", "price", "qty"),
    required=(TS, "side", "price", "qty"),
)

LIQUIDATION_TOTALS = Dataset(
    name="liquidation_totals",
    columns={TS: TS_TYPE, "long_usd": pl.Float64(), "short_usd": pl.Float64()},
    key=(EXCHANGE, SYMBOL, TIMEFRAME, TS),
    required=(TS, "long_usd", "short_usd"),
)

OPEN_INTEREST = Dataset(
    name="open_interest",
    columns={TS: TS_TYPE, "open_interest": pl.Float64(), "open_interest_usd": pl.Float64()},
    key=(EXCHANGE, SYMBOL, TIMEFRAME, TS),
    required=(TS,),
)

FUNDING = Dataset(
    name="funding",
    columns={TS: TS_TYPE, "funding_rate": pl.Float64()},  # fraction per funding interval
    key=(EXCHANGE, SYMBOL, TIMEFRAME, TS),
    required=(TS, "funding_rate"),
)

DEPTH = Dataset(
    name="depth",
    columns={
        TS: TS_TYPE,
        "mid": pl.Float64(),
        "spread_bps": pl.Float64(),
        **{depth_column(side, band): pl.Float64() for band in DEPTH_BANDS for side in ("bid", "ask")},
    },
    key=(EXCHANGE, SYMBOL, TIMEFRAME, TS),
    required=(TS,),
)

DATASETS: dict[str, Dataset] = {
    d.name: d for d in (BARS, LIQUIDATIONS, LIQUIDATION_TOTALS, OPEN_INTEREST, FUNDING, DEPTH)
}


class SchemaError(ValueError):
    """A frame does not fit its canonical dataset; the message says which columns and why."""


def conform(df: pl.DataFrame, dataset: Dataset) -> pl.DataFrame:
    """Select, order and cast `df` to `dataset`'s schema; absent optional columns become null.

    Raises SchemaError for a missing required column, a value that cannot be cast, or a null in
    a required column. `ts` may be naive (taken as UTC) or in any timezone (converted to UTC).
    """
    schema = dataset.schema
    missing = [c for c in (*PARTITIONS, *dataset.required) if c not in df.columns]
    if missing:
        raise SchemaError(f"{dataset.name}: missing column(s) {', '.join(missing)}; have {', '.join(df.columns)}")
    ts = df.schema[TS]
    if not isinstance(ts, pl.Datetime):
        raise SchemaError(f"{dataset.name}: column ts must be a datetime, got {ts}")
    ts_expr = pl.col(TS).dt.replace_time_zone("UTC") if ts.time_zone is None else pl.col(TS).dt.convert_time_zone("UTC")
    try:
        out = df.select(
            [
                (ts_expr.dt.cast_time_unit("us") if name == TS else pl.col(name).cast(dtype, strict=True)).alias(name)
                if name in df.columns
                else pl.lit(None, dtype).alias(name)
                for name, dtype in schema.items()
            ]
        )
    except pl.exceptions.PolarsError as exc:
        raise SchemaError(f"{dataset.name}: a column cannot be cast to its type: {exc}") from exc
    nulls = [c for c in (*PARTITIONS, *dataset.required) if out[c].null_count()]
    if nulls:
        raise SchemaError(f"{dataset.name}: null values in required column(s) {', '.join(nulls)}")
    return out


def empty(dataset: Dataset) -> pl.DataFrame:
    """A frame with no rows in `dataset`'s schema."""
    return pl.DataFrame(schema=dataset.schema)
