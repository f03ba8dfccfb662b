"""Exchange data through ccxt's unified API: klines, funding, open interest, liquidations, depth.

One CcxtSource per exchange id. The ccxt client calls are the only I/O (rate-limited by ccxt,
retried here, their errors mapped to lib.sources.base); the frame builders below are pure.
Markets: Binance spot BTC/USDT on "binance"; linear USDT perpetuals BTC/USDT:USDT elsewhere.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any, TypeVar

import ccxt
import polars as pl

from lib.schema import (
    BARS,
    DEPTH,
    EVENT,
    EXCHANGE,
    FUNDING,
    LIQUIDATIONS,
    OPEN_INTEREST,
    SNAPSHOT,
    SYMBOL,
    TIMEFRAME,
    TIMEFRAMES,
    TS,
    Dataset,
    conform,
)
from lib.sources.base import EmptyResponse, GeoBlocked, RateLimited, SourceError, SourceUnavailable
from lib.sources.orderbook import depth_from_order_book

log = logging.getLogger(__name__)

T = TypeVar("T")
Row = TypeVar("Row")

QUOTE = "USDT"
SPOT_EXCHANGES = frozenset({"binance"})  # the market read there is spot; elsewhere a linear perpetual
TIMEOUT_MS = 30_000

# A failed request is tried MAX_ATTEMPTS times in all, waiting BACKOFF_SECONDS * 2**n after failure n+1 (1, 2, 4 s).
MAX_ATTEMPTS = 4
BACKOFF_SECONDS = 1.0

# The ccxt method each dataset needs; a dataset is offered where `exchange.has[method]` is True.
METHODS: dict[str, str] = {
    BARS.name: "fetchOHLCV",
    FUNDING.name: "fetchFundingRateHistory",
    OPEN_INTEREST.name: "fetchOpenInterestHistory",
    LIQUIDATIONS.name: "fetchLiquidations",
    DEPTH.name: "fetchOrderBook",
}
DERIVATIVE_DATASETS = frozenset({FUNDING.name, OPEN_INTEREST.name, LIQUIDATIONS.name})

# Rows per request where ccxt declares no maximum (its `features` give one for fetchOHLCV only):
# each venue's documented cap. Order-book limits must be values the venue accepts.
PAGE_LIMITS: dict[str, dict[str, int]] = {
    "fetchFundingRateHistory": {"binance": 1000, "binanceusdm": 1000, "bybit": 200, "okx": 100},
    "fetchOpenInterestHistory": {"binance": 500, "binanceusdm": 500, "bybit": 200, "okx": 100},
    "fetchLiquidations": {"gate": 1000},
    "fetchOrderBook": {"binance": 5000, "binanceusdm": 1000, "bybit": 500, "okx": 400},
}
DEFAULT_PAGE_LIMIT = 100

# BTC, ETH and SOL perpetuals settle funding every 8 hours on all four venues.
FUNDING_TIMEFRAME = "8h"

# Binance serves open-interest history for the last 30 days only.
OPEN_INTEREST_RETENTION: dict[str, timedelta] = {"binance": timedelta(days=30), "binanceusdm": timedelta(days=30)}

# What ccxt's unified liquidation `side` means, per exchange: it is not the same everywhere (ccxt's
# gate parser says "buy" when the liquidated position was long; Binance's stream gives the forced
# order's side, the opposite). Liquidations are offered only where the meaning was checked.
LIQUIDATED_POSITION: dict[str, dict[str, str]] = {"gate": {"buy": "long", "sell": "short"}}
LIQUIDATION_WINDOW = timedelta(hours=1)  # events have no step; page through this much time per request

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)

# since=None on a market without a listing date: no USDT market on these venues is older.
FIRST_LISTING = datetime(2017, 7, 1, tzinfo=UTC)

# HTTP statuses a venue answers a refused location with (Binance 451; CloudFront / WAF 403).
GEO_STATUSES = frozenset({403, 451})
# Bybit answers 403 for a breached IP rate limit too: its geo-block page names the country.
GEO_HINTS = ("country", "location", "region")
ALTERNATIVES: dict[str, str] = {
    "binance": "bybit or okx",
    "binanceusdm": "bybit or okx",
    "bybit": "okx or binance",
    "okx": "bybit or binance",
}
RETRYABLE: tuple[type[SourceError], ...] = (RateLimited, SourceUnavailable)


def market_symbol(exchange_id: str, symbol: str) -> str:
    """ccxt's symbol of the market read for `symbol` on `exchange_id`: 'BTC/USDT' or 'BTC/USDT:USDT'."""
    return f"{symbol}/{QUOTE}" if exchange_id in SPOT_EXCHANGES else f"{symbol}/{QUOTE}:{QUOTE}"


def supported_datasets(exchange_id: str, has: Mapping[str, Any]) -> frozenset[str]:
    """Datasets whose ccxt method is natively supported (has[...] is True, not "emulated"); derivatives
    datasets only on perpetual markets; liquidations only where the side convention is known."""
    spot = exchange_id in SPOT_EXCHANGES
    return frozenset(
        dataset
        for dataset, method in METHODS.items()
        if has.get(method) is True
        and not (spot and dataset in DERIVATIVE_DATASETS)
        and (dataset != LIQUIDATIONS.name or exchange_id in LIQUIDATED_POSITION)
    )


@dataclass(frozen=True)
class Request:
    """One fetch: the ccxt market, the canonical symbol and timeframe, and [start, end) in epoch ms
    with the exchange clock's `now` (bars whose close is after it are still open)."""

    market: dict[str, Any]
    symbol: str
    timeframe: str
    start: int
    end: int
    now: int


class CcxtSource:
    """One exchange through ccxt. `client` and `sleep` are injectable (tests pass an offline client
    with `set_markets` done and a sleep that records instead of waiting)."""

    def __init__(
        self, exchange_id: str, client: ccxt.Exchange | None = None, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.name = exchange_id
        self.client = client or getattr(ccxt, exchange_id)({"enableRateLimit": True, "timeout": TIMEOUT_MS})
        self.datasets = supported_datasets(exchange_id, self.client.has)
        self.timeframes = tuple(tf for tf in TIMEFRAMES if tf in self.client.timeframes)
        self._sleep = sleep

    def market_id(self, symbol: str, dataset: str) -> str:
        """The exchange's own id (e.g. 'BTCUSDT') once markets are loaded, else ccxt's symbol."""
        market = (self.client.markets or {}).get(market_symbol(self.name, symbol))
        return market["id"] if market else market_symbol(self.name, symbol)

    def fetch(
        self, dataset: str, symbol: str, timeframe: str, since: datetime | None, until: datetime | None
    ) -> Iterator[pl.DataFrame]:
        """Yield chunks of `dataset` with since <= ts < until, oldest first, one per request.

        bars: paged klines; the still-open candle is left out (its close and volume are partial; it
        arrives on the next refresh). funding: labelled FUNDING_TIMEFRAME whatever `timeframe` says.
        open_interest: at `timeframe`; Binance keeps 30 days, so an older `since` is moved up (logged).
        depth: one snapshot of the book now (since/until ignored). since=None starts at the market's
        listing. Raises EmptyResponse when the whole range holds no rows.
        """
        if dataset not in self.datasets:
            raise ValueError(f"{self.name} offers {', '.join(sorted(self.datasets))}; not {dataset}")
        if dataset in (BARS.name, OPEN_INTEREST.name) and timeframe not in self.timeframes:
            raise ValueError(f"{self.name} offers timeframes {', '.join(self.timeframes)}; not {timeframe}")
        market = self._market(symbol)
        now = self.client.milliseconds()
        first = _ms(since) if since is not None else market.get("created") or _ms(FIRST_LISTING)
        last = min(_ms(until), now) if until is not None else now
        request = Request(market, symbol, timeframe, start=first, end=last, now=now)
        fetchers = {
            BARS.name: self._bars,
            FUNDING.name: self._funding,
            OPEN_INTEREST.name: self._open_interest,
            LIQUIDATIONS.name: self._liquidations,
            DEPTH.name: self._depth,
        }
        empty = True
        for chunk in fetchers[dataset](request):
            empty = False
            yield chunk
        if empty:
            window = f"{since or 'listing'} to {until or 'now'}"
            raise EmptyResponse(f"{self.name} returned no {dataset} for {market['symbol']} {timeframe} from {window}")

    # --- I/O: one method per dataset, every client call through _call ---------------------------

    def _bars(self, request: Request) -> Iterator[pl.DataFrame]:
        step = _step_ms(request.timeframe)
        limit = self.client.feature_value(request.market["symbol"], "fetchOHLCV", "limit", DEFAULT_PAGE_LIMIT)
        pages = self._pages(
            self.client.fetch_ohlcv, request, limit, span=step * limit, ts=itemgetter(0), after=step,
            timeframe=request.timeframe,
        )
        for rows in pages:
            closed = [row for row in rows if row[0] + step <= request.now]
            if closed:
                yield bars_frame(closed, self.name, request.symbol, request.timeframe)

    def _funding(self, request: Request) -> Iterator[pl.DataFrame]:
        limit = self._limit("fetchFundingRateHistory")
        step = _step_ms(FUNDING_TIMEFRAME)
        pages = self._pages(
            self.client.fetch_funding_rate_history, request, limit, span=step * limit, ts=itemgetter("timestamp")
        )
        for rows in pages:
            yield funding_frame(rows, self.name, request.symbol)

    def _open_interest(self, request: Request) -> Iterator[pl.DataFrame]:
        limit = self._limit("fetchOpenInterestHistory")
        step = _step_ms(request.timeframe)
        retention = OPEN_INTEREST_RETENTION.get(self.name)
        if retention is not None:
            request = self._within_retention(request, retention, step)
        size = request.market.get("contractSize") or 1.0
        pages = self._pages(
            self.client.fetch_open_interest_history, request, limit, span=step * limit, ts=itemgetter("timestamp"),
            timeframe=request.timeframe,
        )
        for rows in pages:
            yield open_interest_frame(rows, self.name, request.symbol, request.timeframe, contract_size=size)

    def _liquidations(self, request: Request) -> Iterator[pl.DataFrame]:
        limit = self._limit("fetchLiquidations")
        span = LIQUIDATION_WINDOW // MILLISECOND
        for rows in self._pages(self.client.fetch_liquidations, request, limit, span=span, ts=itemgetter("timestamp")):
            frame = liquidations_frame(rows, self.name, request.symbol, LIQUIDATED_POSITION[self.name])
            if frame.height:
                yield frame

    def _depth(self, request: Request) -> Iterator[pl.DataFrame]:
        market = request.market
        book = self._call(self.client.fetch_order_book, market["symbol"], limit=self._limit("fetchOrderBook"))
        if not book["bids"] or not book["asks"]:
            raise EmptyResponse(f"{self.name} returned an order book for {market['symbol']} with an empty side")
        ts = book.get("timestamp") or request.now  # Binance spot books carry no time
        yield depth_frame(book, ts, self.name, request.symbol, contract_size=market.get("contractSize") or 1.0)

    def _pages(
        self, method: Callable[..., list[Row]], request: Request, limit: int, span: int, ts: Callable[[Row], int],
        after: int = 1, **args: Any,
    ) -> Iterator[list[Row]]:
        """ccxt history `method` over [request.start, request.end), in windows of `span` ms holding at
        most `limit` rows (see paginate); `args` are passed on (e.g. timeframe)."""

        def page(since: int, last: int) -> list[Row]:
            symbol = request.market["symbol"]
            return self._call(method, symbol, since=since, limit=limit, params={"until": last}, **args)

        return paginate(page, request.start, request.end, span=span, ts=ts, after=after)

    def _market(self, symbol: str) -> dict:
        """The ccxt market for `symbol`, loading the exchange's markets on first use."""
        self._call(self.client.load_markets)
        wanted = market_symbol(self.name, symbol)
        if wanted not in self.client.markets:
            raise SourceError(f"{self.name} lists no market {wanted}")
        return self.client.markets[wanted]

    def _within_retention(self, request: Request, retention: timedelta, step: int) -> Request:
        """`request` starting no earlier than the oldest row the venue keeps (one step inside its
        retention; logged when moved). EmptyResponse when the whole range is older."""
        earliest = request.now - retention // MILLISECOND + step
        if request.end <= earliest:
            raise EmptyResponse(
                f"{self.name} keeps open interest for the last {retention.days} days only; the range ends before that"
            )
        if request.start < earliest:
            log.warning(
                "%s keeps open interest for the last %d days only: fetching from %s",
                self.name, retention.days, _iso(earliest),
            )
        return replace(request, start=max(request.start, earliest))

    def _limit(self, method: str) -> int:
        return PAGE_LIMITS[method].get(self.name, DEFAULT_PAGE_LIMIT)

    def _call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`method(*args, **kwargs)`, retried with exponential backoff on network errors, rate limits and
        5xx; ccxt's errors become lib.sources.base errors with a one-line message."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return method(*args, **kwargs)
            except ccxt.BaseError as exc:
                kind = classify(exc)
                if kind in RETRYABLE and attempt < MAX_ATTEMPTS:
                    delay = BACKOFF_SECONDS * 2 ** (attempt - 1)
                    log.info("%s: %s; retrying in %.0f s", self.name, _one_line(exc), delay)
                    self._sleep(delay)
                    continue
                raise kind(error_message(kind, self.name, exc, attempt)) from exc
        raise AssertionError("unreachable: the last attempt returns or raises")


# --- error mapping (pure) ------------------------------------------------------------------------


def http_status(exc: BaseException) -> int | None:
    """The HTTP status behind a ccxt error, if any: ccxt raises its errors while handling requests'
    HTTPError, so the response is on an exception further down the chain."""
    link: BaseException | None = exc
    while link is not None:
        status = getattr(getattr(link, "response", None), "status_code", None)
        if isinstance(status, int):
            return status
        link = link.__cause__ or link.__context__
    return None


def classify(exc: ccxt.BaseError) -> type[SourceError]:
    """Which SourceError a ccxt error is: GeoBlocked (451/403), RateLimited, SourceUnavailable (network,
    exchange down, 5xx: worth retrying) or a plain SourceError (a refused request: not worth retrying)."""
    status = http_status(exc)
    rate_limit = isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection)
    if status in GEO_STATUSES and (not rate_limit or any(hint in str(exc).lower() for hint in GEO_HINTS)):
        return GeoBlocked
    if rate_limit:
        return RateLimited
    if isinstance(exc, ccxt.NetworkError) or (status or 0) >= 500:
        return SourceUnavailable
    return SourceError


def error_message(kind: type[SourceError], exchange: str, exc: BaseException, attempts: int) -> str:
    """One line a user can act on."""
    if kind is GeoBlocked:
        return (
            f"{exchange} refuses requests from this location (HTTP {http_status(exc)}). Use another exchange "
            f"({ALTERNATIVES.get(exchange, 'bybit or okx')}), "
            "or load Binance's bulk archive files with `python -m lib import`."
        )
    if kind is RateLimited:
        return f"{exchange} kept rate limiting after {attempts} attempts; wait a few minutes ({_one_line(exc)})"
    if kind is SourceUnavailable:
        return f"{exchange} did not answer after {attempts} attempts ({_one_line(exc)})"
    return f"{exchange} refused the request ({_one_line(exc)})"


# --- normalize (pure): ccxt's unified structures -> lib.schema frames ----------------------------


def bars_frame(ohlcv: Sequence[Sequence[float | None]], exchange: str, symbol: str, timeframe: str) -> pl.DataFrame:
    """ccxt candles [open time ms, open, high, low, close, volume (base)] -> BARS.

    ccxt's unified candle has no quote volume, trade count or taker volume: those stay null.
    """
    columns = {"ts_ms": pl.Int64(), **{name: pl.Float64() for name in ("open", "high", "low", "close", "volume")}}
    frame = pl.DataFrame([row[:6] for row in ohlcv], schema=columns, orient="row", strict=False)
    frame = frame.with_columns(volume_reliable=pl.col("volume").is_not_null())
    return _finish(frame, BARS, exchange, symbol, timeframe)


def funding_frame(rows: Sequence[Mapping[str, Any]], exchange: str, symbol: str) -> pl.DataFrame:
    """ccxt funding-rate history -> FUNDING: funding_rate is the fraction paid per interval (0.0001 = 0.01 %)."""
    frame = pl.DataFrame(
        {"ts_ms": [row["timestamp"] for row in rows], "funding_rate": [row["fundingRate"] for row in rows]},
        schema={"ts_ms": pl.Int64(), "funding_rate": pl.Float64()},
        strict=False,
    )
    return _finish(frame, FUNDING, exchange, symbol, FUNDING_TIMEFRAME)


def open_interest_frame(
    rows: Sequence[Mapping[str, Any]], exchange: str, symbol: str, timeframe: str, contract_size: float = 1.0
) -> pl.DataFrame:
    """ccxt open-interest history -> OPEN_INTEREST.

    open_interest (base) = baseVolume where ccxt gives it, else openInterestAmount (contracts) *
    contract_size; open_interest_usd = openInterestValue (USDT, taken as USD).
    """
    frame = pl.DataFrame(
        {
            "ts_ms": [row["timestamp"] for row in rows],
            "open_interest": [_base_open_interest(row, contract_size) for row in rows],
            "open_interest_usd": [row.get("openInterestValue") for row in rows],
        },
        schema={"ts_ms": pl.Int64(), "open_interest": pl.Float64(), "open_interest_usd": pl.Float64()},
        strict=False,
    )
    return _finish(frame, OPEN_INTEREST, exchange, symbol, timeframe)


def liquidations_frame(
    rows: Sequence[Mapping[str, Any]], exchange: str, symbol: str, position_by_side: Mapping[str, str]
) -> pl.DataFrame:
    """ccxt liquidations -> LIQUIDATIONS events.

    side = the liquidated position ("long"/"short") via `position_by_side` (the exchange's meaning of
    ccxt's side; events with another side are dropped, logged); qty = baseValue (base units);
    notional_usd = quoteValue, else price * qty. sampled is False: REST history is the full record.
    """
    known = [row for row in rows if row.get("side") in position_by_side]
    if len(known) < len(rows):
        log.warning("%s: dropped %d liquidation(s) without a known side", exchange, len(rows) - len(known))
    frame = pl.DataFrame(
        {
            "ts_ms": [row["timestamp"] for row in known],
            "side": [position_by_side[row["side"]] for row in known],
            "price": [row["price"] for row in known],
            "qty": [row["baseValue"] for row in known],
            "notional_usd": [row.get("quoteValue") for row in known],
        },
        schema={
            "ts_ms": pl.Int64(),
            "side": pl.String(),
            **{name: pl.Float64() for name in ("price", "qty", "notional_usd")},
        },
        strict=False,
    )
    frame = frame.with_columns(
        notional_usd=pl.coalesce("notional_usd", pl.col("price") * pl.col("qty")), sampled=pl.lit(False)
    )
    return _finish(frame, LIQUIDATIONS, exchange, symbol, EVENT)


def depth_frame(
    book: Mapping[str, Any], ts_ms: int, exchange: str, symbol: str, contract_size: float = 1.0
) -> pl.DataFrame:
    """One ccxt order book -> one DEPTH row (see lib.sources.orderbook.depth_from_order_book)."""
    moment = datetime.fromtimestamp(ts_ms / 1000, UTC)
    frame = depth_from_order_book(book, moment, contract_size=contract_size)
    return conform(frame.with_columns(**_partitions(exchange, symbol, SNAPSHOT)), DEPTH)


def _base_open_interest(row: Mapping[str, Any], contract_size: float) -> float | None:
    if row.get("baseVolume") is not None:
        return row["baseVolume"]
    amount = row.get("openInterestAmount")
    return None if amount is None else amount * contract_size


def _finish(frame: pl.DataFrame, dataset: Dataset, exchange: str, symbol: str, timeframe: str) -> pl.DataFrame:
    """Epoch-ms `ts_ms` -> UTC `ts`, partition columns added, conformed to `dataset`."""
    ts = pl.from_epoch("ts_ms", time_unit="ms").alias(TS)
    return conform(frame.with_columns(ts, **_partitions(exchange, symbol, timeframe)), dataset)


def _partitions(exchange: str, symbol: str, timeframe: str) -> dict[str, pl.Expr]:
    return {EXCHANGE: pl.lit(exchange), SYMBOL: pl.lit(symbol), TIMEFRAME: pl.lit(timeframe)}


# --- paging and time -----------------------------------------------------------------------------


def paginate(
    call: Callable[[int, int], list[Row]], start: int, end: int, span: int, ts: Callable[[Row], int], after: int = 1
) -> Iterator[list[Row]]:
    """Walk [start, end) in windows of `span` ms (limit x step), asking call(since, last ms of window).

    Bybit and OKX answer a range newest first, so each request is one window no longer than a page
    (ccxt's own deterministic pagination does the same). The next window starts `after` ms past the
    last row received (one bar for klines; 1 ms for events, whose times jitter), so a short page
    loses nothing; an empty window (an outage, or time before the listing) is skipped. Rows outside
    the window are ignored. Ends at `end`.
    """
    cursor = start
    while cursor < end:
        window_end = min(end, cursor + span)
        rows = [row for row in call(cursor, window_end - 1) if cursor <= ts(row) < window_end]
        if rows:
            yield rows
            cursor = max(ts(row) for row in rows) + after
        else:
            cursor = window_end


def _ms(moment: datetime) -> int:
    """Epoch milliseconds; a naive datetime is UTC (the pipeline's convention)."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return (aware - EPOCH) // MILLISECOND


def _step_ms(timeframe: str) -> int:
    return TIMEFRAMES[timeframe] // MILLISECOND


def _iso(ms: int) -> str:
    return f"{datetime.fromtimestamp(ms / 1000, UTC):%Y-%m-%d %H:%M} UTC"


def _one_line(exc: BaseException) -> str:
    """The exception's type and the first line of its message, cut to 200 characters."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
