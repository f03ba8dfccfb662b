"""Tick-level inputs aggregated into bars, for inputs bigger than memory: `python -m lib aggregate`.

Two jobs: liquidation events already in the store -> `liquidation_totals` (long_usd, short_usd per
bar), and Binance public-archive trade files (`trades` or `aggTrades`, CSV, zip or Parquet) -> OHLCV
`bars`. On one machine a job is one polars LazyFrame over every input, collected by the streaming
engine, so memory stays bounded whatever the input size. When one machine is not enough the same job
runs partition-parallel on Dask's distributed scheduler: one task per (symbol x day) partition, each
the very same polars job (`collect_bars`) on its slice; the caller concatenates what the tasks return
and writes it once. Bars never span a partition (a day, or the bar itself when it is longer), so both
paths give the same bars: OHLC, counts and timestamps to the bit, float sums up to the order in which
they were added (the last few bits).
"""

from __future__ import annotations

import importlib.util
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import reduce
from operator import or_
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import polars as pl

from lib.analytics.liquidations import LONG, SHORT
from lib.schema import BARS, EVENT, EXCHANGE, LIQUIDATION_TOTALS, LIQUIDATIONS, SYMBOL, TIMEFRAME, TIMEFRAMES, TS
from lib.schema import Dataset, conform, empty
from lib.sources.binance_archive import MARKET_EXCHANGES, checksum_path, market_of, readable_csv, verify_checksum
from lib.sources.files import EPOCH_UNITS, base_asset, base_from_name, epoch_to_utc
from lib.store import Store

if TYPE_CHECKING:
    from distributed import Client

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
LOCAL = "local"  # --scheduler local: a LocalCluster on this machine
CONNECT_TIMEOUT_S = 10.0  # how long to try a remote scheduler before saying it is unreachable
PARTITION = "1d"  # a parallel task's slice of time (or one bar, for bars longer than a day)

TRADES, AGG_TRADES = "trades", "aggTrades"
# Binance's column order: spot files have no header row and end with is_best_match; USD-M files have a
# header row and no is_best_match.
TRADE_COLUMNS: dict[str, tuple[str, ...]] = {
    TRADES: ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker", "is_best_match"),
    AGG_TRADES: ("agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "transact_time",
                 "is_buyer_maker", "is_best_match"),
}  # fmt: skip
TRADE_TYPES: dict[str, pl.DataType] = {
    **dict.fromkeys(("id", "agg_trade_id", "first_trade_id", "last_trade_id", "time", "transact_time"), pl.Int64()),
    **dict.fromkeys(("price", "qty", "quantity", "quote_qty"), pl.Float64()),
    **dict.fromkeys(("is_buyer_maker", "is_best_match"), pl.Boolean()),
}
TIME_COLUMNS: dict[str, str] = {TRADES: "time", AGG_TRADES: "transact_time"}
TRADE_NAME = re.compile(r"^[A-Z0-9]+-(?P<kind>trades|aggTrades)-\d{4}-\d{2}(?:-\d{2})?\.(?:zip|csv|parquet)$")
# A bar's first and last trade: by time, then by trade id (ids rise with time on a Binance market and
# break ties between trades of the same millisecond), whatever order the files come in.
TRADE_ORDER = pl.struct(TS, "id")


class AggregateError(ValueError):
    """An aggregation cannot run (bad input, nothing to aggregate, no scheduler); one line says why."""


def _col(name: str) -> pl.Expr:
    return pl.col(name).cast(TRADE_TYPES[name])


# Each archive layout in the one trade schema: exchange and symbol are added from the file.
NORMALISED: dict[str, dict[str, pl.Expr]] = {
    TRADES: {
        TS: epoch_to_utc(_col(TIME_COLUMNS[TRADES])), "id": _col("id"), "price": _col("price"), "qty": _col("qty"),
        "quote_qty": _col("quote_qty"), "trades": pl.lit(1, pl.Int64), "is_buyer_maker": _col("is_buyer_maker"),
    },
    AGG_TRADES: {
        TS: epoch_to_utc(_col(TIME_COLUMNS[AGG_TRADES])), "id": _col("agg_trade_id"), "price": _col("price"),
        "qty": _col("quantity"), "quote_qty": _col("price") * _col("quantity"),
        "trades": _col("last_trade_id") - _col("first_trade_id") + 1, "is_buyer_maker": _col("is_buyer_maker"),
    },
}  # fmt: skip


# --- the aggregations (pure: LazyFrame in, LazyFrame out) -------------------------------------------


def _bar_start(timeframe: str) -> pl.Expr:
    return pl.col(TS).dt.truncate(timeframe)


def trade_bars(trades: pl.LazyFrame, timeframe: str) -> pl.LazyFrame:
    """Trades (exchange, symbol, ts, id, price, qty, quote_qty, trades, is_buyer_maker) -> OHLCV bars.

    open/close = the price of the bar's first/last trade (TRADE_ORDER); volume = sum of qty (base);
    quote_volume = sum of quote_qty, no VWAP involved; trades = trades executed (an aggTrade row counts
    last_trade_id - first_trade_id + 1); taker_buy_volume = qty where the buyer was the taker
    (is_buyer_maker false). Only bars with trades exist: a gap stays a gap.
    """
    return trades.group_by(EXCHANGE, SYMBOL, _bar_start(timeframe)).agg(
        open=pl.col("price").min_by(TRADE_ORDER),
        high=pl.col("price").max(),
        low=pl.col("price").min(),
        close=pl.col("price").max_by(TRADE_ORDER),
        volume=pl.col("qty").sum(),
        quote_volume=pl.col("quote_qty").sum(),
        trades=pl.col("trades").sum(),
        taker_buy_volume=pl.col("qty").filter(~pl.col("is_buyer_maker")).sum(),
    ).with_columns(pl.lit(timeframe).alias(TIMEFRAME), volume_reliable=pl.lit(True))


def liquidation_bars(events: pl.LazyFrame, timeframe: str) -> pl.LazyFrame:
    """Liquidation events -> long_usd and short_usd per bar (0 for a side with no event in a bar that has one).

    `side` is already the liquidated position's side (a BUY forced order closed a short; sources
    convert at their boundary), so a short's notional counts in short_usd. notional_usd, where a
    source left it empty, is price x qty.
    """
    usd = pl.coalesce("notional_usd", pl.col("price") * pl.col("qty"))
    return events.group_by(EXCHANGE, SYMBOL, _bar_start(timeframe)).agg(
        long_usd=usd.filter(pl.col("side") == LONG).sum(),
        short_usd=usd.filter(pl.col("side") == SHORT).sum(),
    ).with_columns(pl.lit(timeframe).alias(TIMEFRAME))


@dataclass(frozen=True)
class Kind:
    """One aggregation: the dataset it writes and the polars function that makes it."""

    dataset: Dataset
    bars: Callable[[pl.LazyFrame, str], pl.LazyFrame]


KINDS: dict[str, Kind] = {"liquidations": Kind(LIQUIDATION_TOTALS, liquidation_bars), "trades": Kind(BARS, trade_bars)}


@dataclass(frozen=True)
class Partition:
    """A parallel task's slice: one symbol's rows with start <= ts < end."""

    symbol: str
    start: datetime
    end: datetime

    @property
    def rows(self) -> pl.Expr:
        return (pl.col(SYMBOL) == self.symbol) & (pl.col(TS) >= self.start) & (pl.col(TS) < self.end)


# --- inputs ---------------------------------------------------------------------------------------


class Source(Protocol):
    """Rows to aggregate; picklable, so a Dask task can open it on a worker."""

    label: str

    def scan(self, folder: Path, part: Partition | None) -> pl.LazyFrame:
        """Its rows, lazily, at least those of `part` (a hint to skip files and row groups early);
        `folder` is scratch space that lives as long as the frame is used."""
        ...


@dataclass(frozen=True)
class StoredEvents:
    """Liquidation events in the store (timeframe `event`), optionally of one exchange and symbol."""

    store: Store
    exchange: str | None = None
    symbol: str | None = None

    @property
    def label(self) -> str:
        return f"liquidation events in {self.store.root}"

    def scan(self, folder: Path, part: Partition | None) -> pl.LazyFrame:
        return self.store.scan(LIQUIDATIONS, self.exchange, part.symbol if part else self.symbol, EVENT)


@dataclass(frozen=True)
class TradeFile:
    """One trades or aggTrades file (CSV, zip holding one CSV, or Parquet) of one symbol on one exchange."""

    path: Path
    kind: str
    exchange: str
    symbol: str

    @property
    def label(self) -> str:
        return self.path.name

    def scan(self, folder: Path, part: Partition | None) -> pl.LazyFrame:
        if self.path.suffix.lower() == ".parquet":
            raw = pl.scan_parquet(self.path)
        else:
            raw = _scan_trade_csv(readable_csv(self.path, None, folder), self.kind)
        if part is not None:
            raw = raw.filter(epoch_window(pl.col(TIME_COLUMNS[self.kind]), part.start, part.end))
        return raw.select(
            pl.lit(self.exchange).alias(EXCHANGE), pl.lit(self.symbol).alias(SYMBOL),
            *(expr.alias(name) for name, expr in NORMALISED[self.kind].items()),
        )  # fmt: skip


def epoch_window(epoch: pl.Expr, start: datetime, end: datetime) -> pl.Expr:
    """Epoch numbers that may fall in [start, end) in any unit epoch_to_utc reads: a superset of the
    rows wanted, in plain numbers, so Parquet statistics can skip row groups before ts is computed."""
    lo, hi = ((moment - EPOCH) // timedelta(microseconds=1) for moment in (start, end))
    return reduce(or_, ((epoch >= lo * div // mult) & (epoch <= hi * div // mult) for *_, mult, div in EPOCH_UNITS))


def _fields(line: bytes) -> list[str]:
    return [f.strip() for f in line.lstrip(b"\xef\xbb\xbf").decode(errors="replace").strip().split(",")]


def _scan_trade_csv(csv: Path, kind: str) -> pl.LazyFrame:
    """A trades CSV with or without its header row (Binance's spot files have none)."""
    with csv.open("rb") as handle:
        first = _fields(handle.readline())
    columns = TRADE_COLUMNS[kind]
    header = first[0] == columns[0]
    if not header and len(first) > len(columns):
        raise AggregateError(f"{csv.name}: {len(first)} columns; Binance {kind} files have {len(columns)} at most")
    names = None if header else list(columns[: len(first)])
    return pl.scan_csv(csv, has_header=header, new_columns=names, schema_overrides=TRADE_TYPES)


def _head(path: Path) -> list[str]:
    """A file's column names (Parquet) or the fields of its first line (CSV, or the CSV inside a zip)."""
    try:
        if path.suffix.lower() == ".parquet":
            return list(pl.read_parquet_schema(path))
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as archive, archive.open(archive.infolist()[0]) as member:
                return _fields(member.readline())
        with path.open("rb") as handle:
            return _fields(handle.readline())
    except (OSError, IndexError, zipfile.BadZipFile, pl.exceptions.PolarsError) as exc:
        raise AggregateError(f"{path.name}: cannot read it ({type(exc).__name__}: {exc})") from exc


def _trade_kind(path: Path) -> str:
    """trades or aggTrades: from Binance's file name, else from the header row."""
    named = TRADE_NAME.match(path.name)
    if named:
        return named["kind"]
    head = _head(path)
    for kind, columns in TRADE_COLUMNS.items():
        if columns[0] in head and "price" in head:
            return kind
    raise AggregateError(
        f"{path.name}: not a Binance trades or aggTrades file (name it like BTCUSDT-trades-2024-01-05.csv, "
        f"or give it a header row: {', '.join(TRADE_COLUMNS[TRADES][:6])})"
    )


def trade_file(path: Path, exchange: str | None = None, symbol: str | None = None) -> TradeFile:
    """Check an input file and say what it holds: its kind from the name or header, the exchange from
    the archive folder (spot -> binance, futures/um -> binanceusdm; a loose file is taken as spot)
    unless given, the base asset from the name unless given. Verifies a zip's .CHECKSUM beside it."""
    path = Path(path)
    if not path.is_file():
        raise AggregateError(f"no such input file: {path}")
    if path.suffix.lower() == ".zip" and checksum_path(path).exists():
        verify_checksum(path, checksum_path(path).read_text(), path.name)
    kind = _trade_kind(path)
    base = pl.select(base_asset(pl.lit(symbol))).item() if symbol else base_from_name(path.stem)
    if base is None:
        raise AggregateError(f"cannot tell the symbol from {path.name!r}: pass --symbol (e.g. BTC)")
    return TradeFile(path, kind, exchange or MARKET_EXCHANGES[market_of(path, kind)[0]], base)


# --- one job, two ways to run it ------------------------------------------------------------------


def partition_every(timeframe: str) -> str:
    """A task's span of time: a day, or one bar when bars are longer (so no bar is split across tasks)."""
    return timeframe if TIMEFRAMES[timeframe] > TIMEFRAMES[PARTITION] else PARTITION


@contextmanager
def _opened(sources: Sequence[Source], part: Partition | None = None) -> Iterator[pl.LazyFrame]:
    """The rows of `sources` (only `part`'s, if given) as one LazyFrame, valid inside the block (zips are
    extracted meanwhile)."""
    with tempfile.TemporaryDirectory(prefix="cascade-aggregate-") as folder:
        rows = pl.concat([source.scan(Path(tempfile.mkdtemp(dir=folder)), part) for source in sources], how="vertical")
        yield rows if part is None else rows.filter(part.rows)


def _streamed(query: pl.LazyFrame, sources: Sequence[Source]) -> pl.DataFrame:
    """`query` collected by the streaming engine; a malformed input raises AggregateError naming the inputs."""
    try:
        return query.collect(engine="streaming")
    except pl.exceptions.PolarsError as exc:
        names = ", ".join(source.label for source in sources[:3]) + (" ..." if len(sources) > 3 else "")
        raise AggregateError(f"{names}: {str(exc).strip().splitlines()[0]}") from exc


def collect_bars(kind: str, sources: Sequence[Source], timeframe: str, part: Partition | None = None) -> pl.DataFrame:
    """The one aggregation both paths run: `sources`' rows (only `part`'s, if given) -> `kind`'s bars at
    `timeframe`, streamed, in the dataset's schema, sorted by exchange, symbol and ts."""
    job = KINDS[kind]
    with _opened(sources, part) as rows:
        bars = _streamed(job.bars(rows, timeframe), sources)
    return conform(bars, job.dataset).sort(EXCHANGE, SYMBOL, TS)


def partitions_of(source: Source, every: str) -> list[tuple[str, datetime]]:
    """The (symbol, start of the `every` period) pairs that `source` has rows in."""
    with _opened([source]) as rows:
        found = _streamed(rows.select(SYMBOL, _bar_start(every).alias(TS)).unique(), [source])
    return found.rows()


def plan(
    sources: Sequence[Source], found: Sequence[list[tuple[str, datetime]]], every: str
) -> dict[Partition, list[Source]]:
    """One task per (symbol, period) partition, with the sources that have rows in it (`found[i]` lists
    source i's partitions), in symbol and time order."""
    span: timedelta = TIMEFRAMES[every]
    tasks: dict[Partition, list[Source]] = {}
    for source, pairs in zip(sources, found):
        for symbol, start in pairs:
            tasks.setdefault(Partition(symbol, start, start + span), []).append(source)
    return dict(sorted(tasks.items(), key=lambda item: (item[0].symbol, item[0].start)))


def aggregate(kind: str, sources: Sequence[Source], timeframe: str, client: Client | None = None) -> pl.DataFrame:
    """`kind`'s bars at `timeframe` from `sources`: streamed on this machine, or with a Dask `client` one
    task per (symbol x day) partition, concatenated here. Nothing is written: the caller stores the result.

    On Dask each task opens only the sources with rows in its partition, and skips Parquet row groups
    outside it; a monthly CSV or zip is parsed (and unzipped) by each of its days' tasks, so daily files
    or Parquet spread better."""
    if client is None:
        return collect_bars(kind, sources, timeframe)
    every = partition_every(timeframe)
    found = client.gather(client.map(partitions_of, sources, every=every))
    tasks = plan(sources, found, every)
    frames = client.gather([client.submit(collect_bars, kind, srcs, timeframe, part) for part, srcs in tasks.items()])
    bars = pl.concat(frames, how="vertical") if frames else empty(KINDS[kind].dataset)
    return bars.sort(EXCHANGE, SYMBOL, TS)


def _check_imports(client: Client) -> None:
    """The scheduler and every worker unpickle this module's functions: fail at once, saying how to fix it,
    where they cannot import it (Dask's own error only says the graph did not deserialize)."""
    try:
        client.run_on_scheduler(importlib.util.find_spec, __name__)
        client.run(importlib.util.find_spec, __name__)
    except ImportError as exc:
        raise AggregateError(
            f"the Dask scheduler or a worker cannot import {__name__} ({exc}): start them with the project's venv "
            "and PYTHONPATH set to the project folder"
        ) from exc


@contextmanager
def dask_client(scheduler: str | None, workers: int) -> Iterator[Client | None]:
    """None without a scheduler; a LocalCluster of `workers` processes for 'local'; else a client of the
    scheduler at that address (tcp://host:8786), AggregateError when it cannot be reached."""
    if scheduler is None:
        yield None
        return
    from distributed import Client, LocalCluster  # seconds of imports, only when asked for

    if scheduler == LOCAL:
        with LocalCluster(n_workers=workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster:
            with Client(cluster) as client:
                yield client
        return
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise AggregateError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
    with client:
        _check_imports(client)
        yield client


def sources_for(
    kind: str, store: Store, inputs: Sequence[Path], exchange: str | None, symbol: str | None
) -> list[Source]:
    """What `kind` reads: the store's liquidation events, or each trade file in `inputs` (checked here)."""
    if kind == "liquidations":
        if inputs:
            raise AggregateError("liquidations are read from the store (import or collect them first); "
                                 "--input is for trades")
        return [StoredEvents(store, exchange, symbol)]
    if not inputs:
        raise AggregateError("trades need --input FILE ... (Binance trades or aggTrades files: CSV, zip or Parquet)")
    return [trade_file(path, exchange, symbol) for path in inputs]

