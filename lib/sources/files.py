"""Import market data from files: Binance archives, ccxt/freqtrade OHLCV, Yahoo CSVs, Coinglass exports.

`read_import` reads a CSV (with or without a header) or a Parquet file, recognises its layout from
the column names (one declarative table, LAYOUTS, first fit wins), maps the columns to a canonical
dataset of lib.schema and fixes units at the boundary: every timestamp becomes UTC, funding becomes a
fraction, Yahoo's USD volume becomes quote volume. What it assumed or changed is returned as notes.
Duplicated rows keep the last copy; gaps stay gaps.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path

import polars as pl

from lib.schema import (
    ASSETS,
    BARS,
    DEPTH,
    DEPTH_BANDS,
    EVENT,
    EXCHANGE,
    FUNDING,
    LIQUIDATION_TOTALS,
    LIQUIDATIONS,
    OPEN_INTEREST,
    SNAPSHOT,
    SYMBOL,
    TIMEFRAME,
    TIMEFRAMES,
    TS,
    TS_TYPE,
    Dataset,
    SchemaError,
    conform,
    depth_column,
)
from lib.sources import CCXT_EXCHANGES

KINDS: tuple[str, ...] = ("bars", "liquidations", "open_interest", "funding", "depth")

PARQUET_MAGIC = b"PAR1"
ZIP_MAGIC = b"PK\x03\x04"
SNIFF_BYTES = 64 * 1024
INFER_SCHEMA_ROWS = 10_000

# Epoch unit by magnitude: |value| below the bound is in that unit. 1e11 s is the year 5138 and
# 1e11 ms is 1973, so real market data never sits on a boundary. (label, bound, µs = value * mul // div)
EPOCH_UNITS: tuple[tuple[str, float, int, int], ...] = (
    ("s", 1e11, 1_000_000, 1),
    ("ms", 1e14, 1_000, 1),
    ("µs", 1e17, 1, 1),
    ("ns", float("inf"), 1, 1_000),
)

# A median step within this fraction of a timeframe names that timeframe (feeds jitter by a few ms).
STEP_TOLERANCE = 0.01

QUOTES: tuple[str, ...] = ("USDT", "USDC", "USD")
PAIR_IN_NAME = re.compile(rf"(?<![a-z])([a-z]{{2,10}}?)[-_/]?(?:{'|'.join(QUOTES)})(?![a-z])", re.IGNORECASE)
PAIR_IN_VALUE = rf"^([A-Z0-9]+?)[-_/]?(?:{'|'.join(QUOTES)})(?::.*)?$"

# Filename hint -> exchange name, first match wins (so binance_usdm comes before binance).
EXCHANGE_HINTS: tuple[tuple[str, str], ...] = (
    ("binance_usdm", "binanceusdm"),
    ("binance_spot", "binance"),
    *((name, name) for name in CCXT_EXCHANGES),
    ("coinglass", "coinglass"),
    ("yahoo", "yfinance"),
    ("yfinance", "yfinance"),
)

# Liquidation side labels -> side of the liquidated position.
POSITION_SIDES: dict[str, str] = {"long": "long", "short": "short"}
FORCED_ORDER_SIDES: dict[str, str] = {"sell": "long", "buy": "short"}  # a BUY forced order closes a short

KLINE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
    "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)  # fmt: skip
OHLC = {"open": ("open",), "high": ("high",), "low": ("low",), "close": ("close",)}
TS_NAMES = ("open_time", "timestamp", "time", "date", "datetime")
SYMBOL_NAMES = ("symbol",)


class ImportFormatError(ValueError):
    """A file cannot be imported; the message is one line saying why and what to pass or fix."""


@dataclass(frozen=True)
class Layout:
    """One file layout: how to recognise it and how its columns map to a canonical dataset.

    `columns` maps a canonical (or intermediate) column to the source names it may have, after
    normalisation (snake case, lower case); the first one present is used. A layout fits when every
    column not in `optional` is present, none of `absent` is, and (with `title_case`) the matched
    header names are capitalised as the producer writes them. `finish` converts units after mapping;
    `key_extra` joins the dedupe key for columns that `finish` folds away (depth's range_pct).
    """

    name: str
    kind: str
    dataset: Dataset
    columns: Mapping[str, tuple[str, ...]]
    optional: frozenset[str] = frozenset()
    absent: tuple[str, ...] = ()
    headerless: tuple[str, ...] = ()
    title_case: bool = False
    exchange: str | None = None
    key_extra: tuple[str, ...] = ()
    finish: Callable[[pl.DataFrame], pl.DataFrame] | None = None
    note: str | None = None

    def source_columns(self, names: Iterable[str]) -> dict[str, str] | None:
        """Canonical column -> the source column that holds it, or None when the layout does not fit."""
        present = set(names)
        if present.intersection(self.absent):
            return None
        found = {col: next((n for n in aliases if n in present), None) for col, aliases in self.columns.items()}
        if any(src is None for col, src in found.items() if col not in self.optional):
            return None
        return {col: src for col, src in found.items() if src is not None}

    def describe(self) -> str:
        """'name (a|b, c)': the columns the layout needs."""
        needed = ("|".join(aliases) for col, aliases in self.columns.items() if col not in self.optional)
        return f"{self.name} ({', '.join(needed)})"


@dataclass(frozen=True)
class Imported:
    """The rows of one imported file in `dataset`'s canonical schema, sorted by symbol and ts."""

    dataset: Dataset
    frame: pl.DataFrame
    layout: str
    notes: tuple[str, ...] = ()


# --- unit conversions (Layout.finish): pure, frame in, frame out ----------------------------------


def _yahoo_volume(df: pl.DataFrame) -> pl.DataFrame:
    """Yahoo's crypto Volume is USD: it is the quote volume, and volume (base) = Volume / Close."""
    return df.with_columns(volume=pl.col("quote_volume") / pl.col("close"))


def _without_volume(df: pl.DataFrame) -> pl.DataFrame:
    """Price candles with no traded volume (mark or index price): volume stays null, flagged unusable."""
    return df.with_columns(volume_reliable=pl.lit(False))


def _percent_to_fraction(df: pl.DataFrame) -> pl.DataFrame:
    """funding_rate in percent per interval -> fraction (0.01 % -> 0.0001)."""
    return df.with_columns(pl.col("funding_rate") / 100)


def _depth_bands(df: pl.DataFrame) -> pl.DataFrame:
    """Rows of (range_pct, bids_usd, asks_usd) -> one row per (symbol, ts) with the bid/ask USD per band."""
    unknown = sorted(set(df["range_pct"].unique().to_list()) - set(DEPTH_BANDS))
    if unknown:
        bands = ", ".join(f"{b:g}" for b in DEPTH_BANDS)
        values = ", ".join(f"{v:g}" for v in unknown)
        raise ImportFormatError(f"range_pct value(s) {values} are not depth bands ({bands} %)")
    in_band = [(band, pl.col("range_pct") == band) for band in DEPTH_BANDS]
    return df.group_by(SYMBOL, TS, maintain_order=True).agg(
        pl.col(src).filter(is_band).last().alias(depth_column(side, band))
        for band, is_band in in_band
        for side, src in (("bid", "bids_usd"), ("ask", "asks_usd"))
    )


def _liquidation_events(df: pl.DataFrame, sides: Mapping[str, str], sampled: bool | None) -> pl.DataFrame:
    """Map side labels to the liquidated position's side; notional_usd = price × qty (linear USD-margined)."""
    labels = pl.col("side").str.strip_chars().str.to_lowercase()
    unknown = sorted(set(df.select(labels.unique()).to_series().drop_nulls().to_list()) - set(sides))
    if set(unknown) & {"buy", "sell"}:
        raise ImportFormatError(
            "side has buy/sell values, which are ambiguous (order side or position side?): "
            "write long/short, the side of the liquidated position"
        )
    if unknown or df["side"].null_count():
        raise ImportFormatError(f"side must be one of {', '.join(sides)}; found {', '.join(unknown) or 'empty values'}")
    return df.with_columns(
        side=labels.replace_strict(sides),
        notional_usd=pl.col("price") * pl.col("qty"),
        sampled=pl.lit(sampled, pl.Boolean),
    )


# --- the layouts, most specific first --------------------------------------------------------------

LAYOUTS: tuple[Layout, ...] = (
    Layout(
        "binance_klines", "bars", BARS,
        columns={
            TS: ("open_time",), **OHLC, "volume": ("volume",), "close_time": ("close_time",),
            "quote_volume": ("quote_volume", "quote_asset_volume"),
            "trades": ("count", "number_of_trades"),
            "taker_buy_volume": ("taker_buy_volume", "taker_buy_base_asset_volume"),
        },
        headerless=KLINE_COLUMNS,
    ),
    Layout(
        "yfinance", "bars", BARS,
        columns={TS: ("date", "datetime"), **OHLC, "quote_volume": ("volume",)},
        title_case=True, exchange="yfinance", finish=_yahoo_volume,
        note="Yahoo Volume is USD: quote_volume = Volume, volume = Volume / Close",
    ),
    Layout(
        "ohlcv", "bars", BARS,
        columns={TS: TS_NAMES, **OHLC, "volume": ("volume",)},
        headerless=("timestamp", "open", "high", "low", "close", "volume"),
    ),
    Layout(
        "price_candles", "bars", BARS,
        columns={TS: TS_NAMES, **OHLC}, absent=("volume",),
        headerless=("timestamp", "open", "high", "low", "close"), finish=_without_volume,
        note="no volume column (mark or index price candles): volume is null and volume_reliable false",
    ),
    Layout(
        "binance_forced_orders", "liquidations", LIQUIDATIONS,
        columns={
            TS: ("time", "timestamp", "trade_time"), "side": ("side",), "order_type": ("order_type",),
            "price": ("average_price", "avg_price", "price"), "qty": ("original_quantity", "orig_qty", "qty"),
        },
        finish=partial(_liquidation_events, sides=FORCED_ORDER_SIDES, sampled=True),
        note="Binance forced orders: a SELL liquidates a long, a BUY a short; "
        "sampled (Binance sends at most one forced order per second per symbol)",
    ),
    Layout(
        "liquidation_events", "liquidations", LIQUIDATIONS,
        columns={
            TS: ("timestamp", "time"), "side": ("side",), "price": ("price",), "qty": ("qty", "quantity", "amount"),
        },
        finish=partial(_liquidation_events, sides=POSITION_SIDES, sampled=None),
    ),
    Layout(
        "coinglass_liquidations", "liquidations", LIQUIDATION_TOTALS,
        columns={TS: ("date", "timestamp", "time"), "long_usd": ("liq_long_usd", "long_usd"),
                 "short_usd": ("liq_short_usd", "short_usd")},
        exchange="coinglass",
    ),
    Layout(
        "coinglass_open_interest", "open_interest", OPEN_INTEREST,
        columns={TS: ("date", "timestamp", "time"), "open_interest_usd": ("oi_total_close",)},
        exchange="coinglass",
        note="open_interest_usd = oi_total_close (USD); oi_stable_close and oi_coinm_close not imported",
    ),
    Layout(
        "open_interest", "open_interest", OPEN_INTEREST,
        columns={
            TS: ("timestamp", "time", "date", "create_time"),
            "open_interest": ("open_interest", "sum_open_interest"),
            "open_interest_usd": ("open_interest_usd", "open_interest_value", "sum_open_interest_value"),
        },
        optional=frozenset({"open_interest_usd"}),
    ),
    Layout(
        "coinglass_funding", "funding", FUNDING,
        columns={TS: ("date", "timestamp", "time"), "funding_rate": ("funding_close",)},
        exchange="coinglass", finish=_percent_to_fraction,
        note="funding_close is percent per 8 h: divided by 100",
    ),
    Layout(
        "funding", "funding", FUNDING,
        columns={TS: ("funding_time", "calc_time", "timestamp", "time", "date"),
                 "funding_rate": ("funding_rate", "last_funding_rate")},
    ),
    Layout(
        "coinglass_depth", "depth", DEPTH,
        columns={TS: ("date", "timestamp", "time"), "range_pct": ("range_pct",),
                 "bids_usd": ("bids_usd",), "asks_usd": ("asks_usd",)},
        exchange="coinglass", key_extra=("range_pct",), finish=_depth_bands,
    ),
)  # fmt: skip

# Mapped columns that hold text, not numbers.
TEXT_COLUMNS = frozenset({TS, SYMBOL, "side", "order_type"})


# --- reading ---------------------------------------------------------------------------------------


def _normalise_name(name: str) -> str:
    """'Stock Splits' -> 'stock_splits', 'longUsd' -> 'long_usd', ' open_time' -> 'open_time'."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip().lstrip("\ufeff"))
    return re.sub(r"[^0-9a-z]+", "_", snake.lower()).strip("_")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _headerless_names(first_line: str, kind: str | None) -> tuple[str, ...] | None:
    """Column names for a CSV whose first line is data (all numeric), or None when it is a header."""
    fields = first_line.split(",")
    if not all(_is_number(f.strip().strip('"')) for f in fields):
        return None
    widths = {len(lay.headerless): lay.headerless for lay in LAYOUTS if lay.headerless and kind in (None, lay.kind)}
    if len(fields) not in widths:
        known = ", ".join(f"{lay.name} ({len(lay.headerless)})" for lay in LAYOUTS if lay.headerless)
        raise ImportFormatError(f"headerless CSV with {len(fields)} columns; headerless layouts (columns): {known}")
    return widths[len(fields)]


def _first_line(head: bytes) -> str | None:
    """The first line of a text file, or None when `head` looks binary (a NUL byte, or not UTF-8)."""
    try:
        line = head.split(b"\n", 1)[0].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if b"\x00" in head else line.lstrip("\ufeff").strip()


def _read_csv(path: Path, first_line: str, kind: str | None) -> pl.DataFrame:
    """A CSV with or without a header, types inferred; all text when inference trips on a late row."""
    names = _headerless_names(first_line, kind)
    options = {"has_header": names is None, "new_columns": list(names) if names else None}
    try:
        return pl.read_csv(path, infer_schema_length=INFER_SCHEMA_ROWS, **options)
    except pl.exceptions.ComputeError:
        return pl.read_csv(path, infer_schema=False, **options)


def _read_table(path: Path, kind: str | None) -> pl.DataFrame:
    """The file as a frame with its own column names: Parquet by its magic bytes, else CSV."""
    try:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        raise ImportFormatError(f"cannot read {path.name}: {exc.strerror or exc}") from exc
    if not head.strip():
        raise ImportFormatError(f"{path.name} is empty")
    if head.startswith(ZIP_MAGIC):
        raise ImportFormatError(f"{path.name} is a zip archive: unzip it and import the CSV inside")
    first_line = _first_line(head)
    if first_line is None and not head.startswith(PARQUET_MAGIC):
        raise ImportFormatError(f"{path.name} is neither CSV text nor Parquet (binary content)")
    try:
        return pl.read_parquet(path) if first_line is None else _read_csv(path, first_line, kind)
    except pl.exceptions.PolarsError as exc:
        reason = str(exc).strip().splitlines()[0]
        raise ImportFormatError(f"cannot read {path.name}: {reason}") from exc


def _normalised(raw: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, str]]:
    """The frame with normalised column names, and normalised -> original name."""
    names = [_normalise_name(c) for c in raw.columns]
    if len(set(names)) != len(names):
        raise ImportFormatError(f"column names clash once normalised: {', '.join(raw.columns)}")
    return raw.rename(dict(zip(raw.columns, names, strict=True))), dict(zip(names, raw.columns, strict=True))


# --- recognising the layout ------------------------------------------------------------------------


def _fits(layout: Layout, originals: Mapping[str, str]) -> dict[str, str] | None:
    """The layout's column mapping when `originals`' columns fit it, else None."""
    mapping = layout.source_columns(originals)
    if mapping and layout.title_case and not all(originals[src][:1].isupper() for src in mapping.values()):
        return None
    return mapping


def detect_layout(originals: Mapping[str, str], kind: str | None = None) -> tuple[Layout, dict[str, str]]:
    """The first layout (of `kind`, if given) that `originals` (normalised -> original names) fit."""
    candidates = [lay for lay in LAYOUTS if kind in (None, lay.kind)]
    for layout in candidates:
        mapping = _fits(layout, originals)
        if mapping:
            return layout, mapping
    found = ", ".join(originals.values())
    if kind is not None:
        expected = "; ".join(lay.describe() for lay in candidates)
        raise ImportFormatError(f"columns ({found}) don't fit kind {kind!r}; expected {expected}")
    known = ", ".join(lay.name for lay in LAYOUTS)
    raise ImportFormatError(f"unknown layout: columns found {found}; known layouts {known}")


def _mapped(df: pl.DataFrame, mapping: Mapping[str, str]) -> pl.DataFrame:
    """The mapped columns under their canonical names, plus the file's symbol column if it has one."""
    symbol = next((n for n in SYMBOL_NAMES if n in df.columns), None)
    columns = {**mapping, **({SYMBOL: symbol} if symbol else {})}
    return df.select(pl.col(src).alias(col) for col, src in columns.items())


def _check_numeric(df: pl.DataFrame, originals: Mapping[str, str], mapping: Mapping[str, str]) -> pl.DataFrame:
    """Text columns that should hold numbers, cast to Float64; raises on the first value that is not one."""
    for col in df.columns:
        if col in TEXT_COLUMNS or df.schema[col] != pl.String:
            continue
        parsed = df[col].str.strip_chars().cast(pl.Float64, strict=False)
        bad = df[col].is_not_null() & parsed.is_null()
        if bad.any():
            row = bad.arg_true()[0]
            raise ImportFormatError(
                f"column {originals[mapping[col]]!r} is not numeric: {df[col][row]!r} in data row {row + 1}"
            )
        df = df.with_columns(parsed.alias(col))
    return df


# --- timestamps ------------------------------------------------------------------------------------


def _by_epoch_unit(x: pl.Expr, value: Callable[[tuple[str, float, int, int]], pl.Expr]) -> pl.Expr:
    """`value(unit)` for each row, the epoch unit chosen by the magnitude of x."""
    (first, *middle, last) = EPOCH_UNITS
    chain = pl.when(x.abs() < first[1]).then(value(first))
    for unit in middle:
        chain = chain.when(x.abs() < unit[1]).then(value(unit))
    return chain.otherwise(value(last))


def epoch_to_utc(x: pl.Expr) -> pl.Expr:
    """Epoch numbers in s, ms, µs or ns (per row, by magnitude) -> Datetime('us', 'UTC')."""
    micros = _by_epoch_unit(x, lambda unit: x * unit[2] // unit[3]).cast(pl.Int64)
    return pl.from_epoch(micros, time_unit="us").dt.replace_time_zone("UTC")


def _epoch_note(values: pl.Series) -> str:
    """'timestamps were epoch ms', or 'timestamps were epoch ms (9,000 rows) and µs (1,000 rows)'."""
    counts = (
        values.to_frame("x")
        .select(_by_epoch_unit(pl.col("x"), lambda unit: pl.lit(unit[0])).alias("unit"))
        .group_by("unit")
        .len()
    )
    order = [u[0] for u in EPOCH_UNITS]
    rows = sorted(counts.drop_nulls().iter_rows(), key=lambda r: order.index(r[0]))
    if len(rows) == 1:
        return f"timestamps were epoch {rows[0][0]}"
    return "timestamps were epoch " + " and ".join(f"{u} ({n:,} rows)" for u, n in rows)


def _parse_text_times(values: pl.Series) -> tuple[pl.Series, tuple[str, ...]]:
    """Epoch numbers written as text, or ISO date-times and YYYY-MM-DD dates (naive taken as UTC).
    Values that do not parse become null."""
    text = values.str.strip_chars()
    as_int = text.str.to_integer(strict=False)
    if as_int.null_count() < len(as_int):
        return _parse_times(as_int)
    try:
        parsed = text.str.to_datetime(time_unit="us", strict=False)
    except pl.exceptions.ComputeError:  # no value looks like a date-time
        return pl.Series(values.name, [None] * len(values), TS_TYPE), ()
    if parsed.dtype.time_zone is None:  # type: ignore[attr-defined]
        return parsed.dt.replace_time_zone("UTC"), ("timestamps without a time zone were taken as UTC",)
    return parsed.dt.convert_time_zone("UTC"), ()


def _parse_times(values: pl.Series) -> tuple[pl.Series, tuple[str, ...]]:
    """Any timestamp column -> Datetime('us', 'UTC'), with a note on the unit or zone assumed."""
    dtype = values.dtype
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return values.dt.replace_time_zone("UTC").dt.cast_time_unit("us"), ("naive datetimes taken as UTC",)
        return values.dt.convert_time_zone("UTC").dt.cast_time_unit("us"), ()
    if dtype == pl.Date:
        return values.cast(pl.Datetime("us")).dt.replace_time_zone("UTC"), ()
    if dtype.is_numeric():
        return values.to_frame("x").select(epoch_to_utc(pl.col("x"))).to_series(), (_epoch_note(values),)
    if dtype == pl.String:
        return _parse_text_times(values)
    raise ImportFormatError(f"timestamps of type {dtype} are not supported")


def _with_utc_ts(df: pl.DataFrame, source: str) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """`df` with ts as UTC datetimes; raises naming the first value that is not a timestamp."""
    ts, notes = _parse_times(df[TS])
    bad = ts.is_null()
    if bad.any():
        row = bad.arg_true()[0]
        raise ImportFormatError(f"unparseable timestamp {df[TS][row]!r} in column {source!r}, data row {row + 1}")
    return df.with_columns(ts.alias(TS)), notes


# --- symbol, exchange and timeframe ---------------------------------------------------------------


def base_from_name(stem: str) -> str | None:
    """The base asset a filename names: 'BTCUSDT', 'BTC-USD', 'BTC_USDT' or a bare 'BTC' -> 'BTC'.

    Raises ImportFormatError when the name mentions several bases."""
    pairs = {m.group(1).upper() for m in PAIR_IN_NAME.finditer(stem)} - set(QUOTES)
    bare = {t.upper() for t in re.split(r"[^0-9A-Za-z]+", stem)} & set(ASSETS)
    bases = pairs | bare
    if len(bases) > 1:
        raise ImportFormatError(f"filename {stem!r} names several symbols ({', '.join(sorted(bases))}): pass symbol=")
    return bases.pop() if bases else None


def base_asset(symbol: pl.Expr) -> pl.Expr:
    """Market ids -> base asset: 'BTCUSDT', 'btc', 'BTC/USDT:USDT', 'ETH-USD' -> 'BTC', 'BTC', 'BTC', 'ETH'."""
    return symbol.str.strip_chars().str.to_uppercase().str.replace(PAIR_IN_VALUE, "${1}")


def exchange_from_name(stem: str) -> str | None:
    """The exchange a filename names ('binance_spot' -> 'binance', 'binance_usdm' -> 'binanceusdm')."""
    name = stem.lower().replace("-", "_")
    return next((ex for hint, ex in EXCHANGE_HINTS if re.search(rf"(?<![a-z]){hint}(?![a-z])", name)), None)


def timeframe_from_name(stem: str) -> str | None:
    """The first timeframe token of a filename ('BTCUSDT-1m-2024-01' -> '1m'), if any."""
    return next((t for t in re.split(r"[^0-9A-Za-z]+", stem) if t in TIMEFRAMES), None)


def timeframe_from_steps(df: pl.DataFrame) -> str | None:
    """The timeframe whose length is the median step between consecutive rows of each symbol."""
    steps = df.select(pl.col(TS).diff().over(SYMBOL, order_by=TS).alias("step")).to_series()
    median = steps.filter(steps > timedelta(0)).median()
    if median is None:
        return None
    return next((tf for tf, step in TIMEFRAMES.items() if abs(median - step) <= step * STEP_TOLERANCE), None)


def _with_symbol(df: pl.DataFrame, symbol: str | None, stem: str) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """The symbol column: the option (filtering a multi-symbol file), the file's column, or the filename."""
    chosen = None if symbol is None else pl.select(base_asset(pl.lit(symbol))).item()
    if SYMBOL in df.columns:
        df = df.with_columns(base_asset(pl.col(SYMBOL)))
        if chosen is None:
            return df, ()
        kept = df.filter(pl.col(SYMBOL) == chosen)
        if kept.is_empty():
            found = ", ".join(df[SYMBOL].unique(maintain_order=True).to_list())
            raise ImportFormatError(f"no rows for symbol {chosen} (the file has {found})")
        return kept, (f"kept the {kept.height:,} {chosen} rows of {df.height:,}",)
    if chosen is None:
        chosen = base_from_name(stem)
        if chosen is None:
            raise ImportFormatError(f"cannot infer the symbol from filename {stem!r}: pass symbol= (e.g. BTC)")
    return df.with_columns(pl.lit(chosen).alias(SYMBOL)), ()


def _dedupe(df: pl.DataFrame, key: list[str]) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """Keep the last row of each duplicated key, noting how many were dropped."""
    kept = df.unique(subset=key, keep="last", maintain_order=True)
    dropped = df.height - kept.height
    return kept, ((f"{dropped:,} duplicated rows dropped (kept the last of each)",) if dropped else ())


def _choose_timeframe(df: pl.DataFrame, layout: Layout, option: str | None, stem: str) -> tuple[str, str | None]:
    """(timeframe, how it was inferred or None). Events have none; an option wins; bars trust the
    filename before the rows' step, other series the step first (freqtrade names 8 h funding '-1h-')."""
    if layout.dataset is LIQUIDATIONS:
        return EVENT, None
    if option is not None:
        return option, None
    named = (timeframe_from_name(stem), "the filename")
    stepped = (timeframe_from_steps(df), "the median step between rows")
    for timeframe, source in (named, stepped) if layout.kind == "bars" else (stepped, named):
        if timeframe:
            return timeframe, source
    if layout.kind == "bars":
        raise ImportFormatError(f"cannot infer the timeframe of {stem!r} from its name or rows: pass timeframe=")
    return SNAPSHOT, "rows at irregular times"


def _unaligned_note(df: pl.DataFrame, timeframe: str) -> tuple[str, ...]:
    """A note counting rows whose ts is not on the timeframe's grid (kept as they are)."""
    if timeframe not in TIMEFRAMES:
        return ()
    count = df.select((pl.col(TS) != pl.col(TS).dt.truncate(timeframe)).sum()).item()
    return (f"{count:,} rows not aligned to the {timeframe} grid (kept as they are)",) if count else ()


# --- the import ------------------------------------------------------------------------------------


def _check_options(kind: str | None, timeframe: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise ImportFormatError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    if timeframe is not None and timeframe not in (*TIMEFRAMES, EVENT, SNAPSHOT):
        raise ImportFormatError(f"unknown timeframe {timeframe!r}; known: {', '.join(TIMEFRAMES)}")


def read_import(
    path: Path,
    kind: str | None = None,
    exchange: str | None = None,
    symbol: str | None = None,
    timeframe: str | None = None,
) -> Imported:
    """Read one market-data file into its canonical dataset.

    `kind` (bars, liquidations, open_interest, funding, depth) restricts the layouts tried; None
    detects it. exchange, symbol and timeframe default to what the filename, the layout or the rows
    say; explicit values always win (liquidation events have no timeframe: always 'event').
    Raises ImportFormatError with a one-line reason.
    """
    path = Path(path)
    _check_options(kind, timeframe)
    df, originals = _normalised(_read_table(path, kind))
    if df.is_empty():
        raise ImportFormatError(f"{path.name} has a header but no rows")
    layout, mapping = detect_layout(originals, kind)
    df = _check_numeric(_mapped(df, mapping), originals, mapping)
    df, ts_notes = _with_utc_ts(df, originals[mapping[TS]])
    df, symbol_notes = _with_symbol(df, symbol, path.stem)
    key = [c for c in (*layout.dataset.key, *layout.key_extra) if c in df.columns]
    df, dup_notes = _dedupe(df, key)
    if layout.finish is not None:
        df = layout.finish(df)
    exchange = exchange or exchange_from_name(path.stem) or layout.exchange
    if exchange is None:
        raise ImportFormatError(f"cannot infer the exchange from filename {path.stem!r}: pass exchange= (e.g. binance)")
    timeframe, timeframe_source = _choose_timeframe(df, layout, timeframe, path.stem)
    df = df.with_columns(pl.lit(exchange).alias(EXCHANGE), pl.lit(timeframe).alias(TIMEFRAME))
    try:
        frame = conform(df, layout.dataset).sort(SYMBOL, TS, maintain_order=True)
    except SchemaError as exc:
        raise ImportFormatError(str(exc)) from exc
    notes = (
        *((layout.note,) if layout.note else ()),
        *ts_notes,
        *symbol_notes,
        *dup_notes,
        *((f"timeframe {timeframe} inferred from {timeframe_source}",) if timeframe_source else ()),
        *_unaligned_note(frame, timeframe),
    )
    return Imported(dataset=layout.dataset, frame=frame, layout=layout.name, notes=notes)
