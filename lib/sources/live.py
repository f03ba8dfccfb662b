"""Live feeds through ccxt.pro: liquidation tapes over websockets, order-book depth snapshots on a timer.

I/O: `LiquidationFeed` (ccxt.pro's liquidation watchers) and `DepthFeed` (fetchOrderBook every
`interval` seconds); both yield frames in the canonical schema and raise when the exchange or the
connection fails (the collector in lib.collect reconnects). Pure: `liquidation_events` (one ccxt
liquidation -> the events it holds, per exchange) and `live_liquidations_frame` (-> LIQUIDATIONS).

What ccxt's parsed `side` means (ccxt 4.5.90, ccxt/pro/*.py, `parse_ws_liquidation`; pinned by
tests/test_collect.py on raw messages):
- bybit `allLiquidation.{symbol}`: side = lower(S), and Bybit's v5 docs define S as the side of the
  liquidated *position* ("Buy" = a long was liquidated). The complete tape, pushed every 500 ms.
- binanceusdm `forceOrder`: side = lower(o.S), the forced *order's* side: SELL closes a long, so a
  long was liquidated. Binance pushes at most one order per symbol per second: sampled.
- okx `liquidation-orders`: side = details[].side, the liquidation *order's* side (OKX docs), so
  "sell" = a long was liquidated (posSide is "long"/"short" in hedge mode, "net" in net mode).
  OKX shows at most one order per contract per second: sampled.

Two gaps in ccxt's parsing are closed here: a watch call resolves with the first event parsed since
it was made, the rest (a Bybit message carries a 500 ms batch) reaching only `client.liquidations`,
which `Tape` reads by count; and ccxt's OKX parser keeps details[0] of each instrument, so OKX
events are read from every detail of the raw entry. ccxt leaves baseValue empty (its
safe_liquidation gets no market), so qty = contracts × the market's contractSize here.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ccxt.pro
import polars as pl
from ccxt.async_support.base.ws.cache import ArrayCache

from lib.schema import LIQUIDATIONS, empty
from lib.sources.ccxt import (
    DEFAULT_PAGE_LIMIT,
    PAGE_LIMITS,
    QUOTE,
    TIMEOUT_MS,
    depth_frame,
    liquidations_frame,
    market_symbol,
)

log = logging.getLogger(__name__)

# Events held between two reads of the tape; more than this between reads are counted as lost.
TAPE_SIZE = 10_000
BYBIT_TOPIC = "allLiquidation"  # the complete tape ("liquidation" is the older, sampled topic)


@dataclass(frozen=True)
class FeedSpec:
    """How one exchange's liquidation stream reads: what ccxt's side means, and whether it throttles."""

    position_by_side: Mapping[str, str]  # ccxt's parsed side -> side of the liquidated position
    sampled: bool  # the exchange sends at most one event per symbol per second
    per_symbol: bool  # ccxt offers watchLiquidations(symbol) only, not ...ForSymbols


LONG_IF_BUY = {"buy": "long", "sell": "short"}  # the side names the liquidated position
LONG_IF_SELL = {"sell": "long", "buy": "short"}  # the side names the order that closed it

FEEDS: dict[str, FeedSpec] = {
    "bybit": FeedSpec(LONG_IF_BUY, sampled=False, per_symbol=True),
    "binanceusdm": FeedSpec(LONG_IF_SELL, sampled=True, per_symbol=False),
    "okx": FeedSpec(LONG_IF_SELL, sampled=True, per_symbol=False),
}

# Where each exchange keeps its public linear-swap websocket URL inside ccxt's urls["api"]["ws"].
WS_URL_PATH: dict[str, tuple[str, ...]] = {"bybit": ("public", "linear"), "binanceusdm": ("linear",), "okx": ()}

# Contract sizes (base units per contract) of the USDT perpetuals, for offline markets only: loaded
# markets carry the exchange's own. OKX's ctVal; one base unit on Bybit and Binance.
OKX_CONTRACT_SIZES: dict[str, float] = {"BTC": 0.01, "ETH": 0.1, "SOL": 1.0}


def with_ws_url(urls: Mapping[str, Any], exchange_id: str, ws_url: str) -> dict[str, Any]:
    """A copy of ccxt's `urls` whose public linear-swap websocket URL is `ws_url` (a local server)."""
    out = copy.deepcopy(dict(urls))
    path = WS_URL_PATH[exchange_id]
    if not path:
        out["api"]["ws"] = ws_url
        return out
    node = out["api"]["ws"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = ws_url
    return out


def offline_markets(exchange_id: str, symbols: Sequence[str]) -> list[dict[str, Any]]:
    """ccxt markets of the USDT perpetuals of `symbols`, for `set_markets` without REST (dev and tests)."""
    if exchange_id == "okx" and (unknown := set(symbols) - set(OKX_CONTRACT_SIZES)):
        raise ValueError(f"no offline OKX contract size for {', '.join(sorted(unknown))}; load markets instead")
    return [
        {
            "id": f"{base}-{QUOTE}-SWAP" if exchange_id == "okx" else f"{base}{QUOTE}",
            "lowercaseId": f"{base}{QUOTE}".lower(),
            "symbol": market_symbol(exchange_id, base),
            "base": base, "quote": QUOTE, "settle": QUOTE, "baseId": base, "quoteId": QUOTE, "settleId": QUOTE,
            "type": "swap", "spot": False, "margin": False, "swap": True, "future": False, "option": False,
            "contract": True, "linear": True, "inverse": False, "active": True,
            "contractSize": OKX_CONTRACT_SIZES[base] if exchange_id == "okx" else 1.0,
            "precision": {"amount": 0.001, "price": 0.01},
            "limits": {"amount": {"min": 0.001, "max": None}, "price": {"min": None, "max": None}},
        }  # fmt: skip
        for base in symbols
    ]


def live_client(exchange_id: str, symbols: Sequence[str], ws_url: str | None = None) -> Any:
    """A ccxt.pro client for `exchange_id`. With `ws_url` (dev/test): its websocket points there and
    its markets are `offline_markets` (no REST call is made)."""
    if exchange_id not in FEEDS:
        raise ValueError(f"live feeds exist for {', '.join(FEEDS)}; not {exchange_id}")
    client = getattr(ccxt.pro, exchange_id)({"enableRateLimit": True, "timeout": TIMEOUT_MS})
    if ws_url is not None:
        client.urls = with_ws_url(client.urls, exchange_id, ws_url)
        client.set_markets(offline_markets(exchange_id, symbols))
    return client


# --- normalize (pure) ----------------------------------------------------------------------------

Event = dict[str, Any]  # symbol (ccxt), timestamp (ms), side (ccxt's), price, contracts


def _ccxt_event(liquidation: Mapping[str, Any]) -> list[Event]:
    return [{key: liquidation.get(key) for key in ("symbol", "timestamp", "side", "price", "contracts")}]


def _okx_events(liquidation: Mapping[str, Any]) -> list[Event]:
    """Every detail of an OKX entry, read as ccxt reads details[0] (ts, side, bkPx, sz)."""
    return [
        {
            "symbol": liquidation.get("symbol"),
            "timestamp": int(detail["ts"]),
            "side": detail.get("side"),
            "price": float(detail["bkPx"]),
            "contracts": float(detail["sz"]),
        }
        for detail in liquidation.get("info", {}).get("details", [])
    ]


EVENT_READERS: dict[str, Callable[[Mapping[str, Any]], list[Event]]] = {"okx": _okx_events}


def liquidation_events(exchange_id: str, liquidation: Mapping[str, Any]) -> list[Event]:
    """The events one ccxt.pro liquidation structure holds (one, except OKX: one per detail)."""
    return EVENT_READERS.get(exchange_id, _ccxt_event)(liquidation)


def live_liquidations_frame(
    exchange_id: str, liquidations: Sequence[Mapping[str, Any]], markets: Mapping[str, Mapping[str, Any]]
) -> pl.DataFrame:
    """ccxt.pro liquidations -> LIQUIDATIONS events of the markets in `markets` (ccxt symbol -> market).

    side = the liquidated position via FEEDS[exchange_id].position_by_side; qty (base) = contracts ×
    the market's contractSize; notional_usd = price × qty (USDT taken as USD); sampled =
    FEEDS[exchange_id].sampled. Events of other markets (OKX's channel carries every swap) and
    events without a time, price or size are left out.
    """
    spec = FEEDS[exchange_id]
    events = [e for liq in liquidations for e in liquidation_events(exchange_id, liq) if e["symbol"] in markets]
    complete = [e for e in events if None not in (e["timestamp"], e["price"], e["contracts"])]
    if len(complete) < len(events):
        log.warning("%s: dropped %d liquidation(s) without time, price or size",
                    exchange_id, len(events) - len(complete))
    frames = [
        liquidations_frame(
            [
                {**e, "baseValue": e["contracts"] * (market.get("contractSize") or 1.0), "quoteValue": None}
                for e in complete
                if e["symbol"] == symbol
            ],
            exchange_id,
            market["base"],
            spec.position_by_side,
        )
        for symbol, market in markets.items()
    ]
    frame = pl.concat(frames) if frames else empty(LIQUIDATIONS)
    return frame.with_columns(sampled=pl.lit(spec.sampled))


# --- I/O -----------------------------------------------------------------------------------------


class Tape(ArrayCache):
    """ccxt's liquidation cache, counting what is appended so every event is read exactly once.

    ccxt.pro resolves a watch call with the first event parsed after it ([liquidation]); the others
    parsed before the next call only reach this cache. `take` returns all of them by count.
    """

    def __init__(self, max_size: int = TAPE_SIZE) -> None:
        super().__init__(max_size)
        self.appended = 0
        self.read = 0

    def append(self, item: dict) -> None:
        super().append(item)
        self.appended += 1

    def take(self) -> tuple[list[dict], int]:
        """Events appended since the last take (oldest first), and how many of those the cache had
        already evicted (lost: more than max_size arrived between two takes)."""
        new = self.appended - self.read
        self.read = self.appended
        kept = min(new, len(self))
        return (self[-kept:] if kept else []), new - kept


class LiquidationFeed:
    """Liquidation events of `symbols` on one exchange through ccxt.pro's watchers."""

    def __init__(self, client: Any, exchange_id: str, symbols: Sequence[str]) -> None:
        self.client = client
        self.exchange_id = exchange_id
        self.spec = FEEDS[exchange_id]
        self.symbols = [market_symbol(exchange_id, s) for s in symbols]
        self.tape = Tape()
        client.liquidations = self.tape  # ccxt's handlers append here (they create a cache only when None)
        self.lost = 0
        self.connections = 0
        client.on_connected = self._counting(client.on_connected)

    def _counting(self, on_connected: Callable[..., None]) -> Callable[..., None]:
        """ccxt's on_connected hook, counting connections: ccxt reopens a dropped one by itself when no
        watch was waiting on it, so the feed's own failures undercount reconnects."""

        def hook(ws_client: Any, message: Any = None) -> None:
            self.connections += 1
            on_connected(ws_client, message)

        return hook

    @property
    def reconnects(self) -> int:
        """Connections opened after the first."""
        return max(0, self.connections - 1)

    def _watchers(self) -> list[Callable[[], Awaitable[Any]]]:
        if self.spec.per_symbol:
            params = {"method": BYBIT_TOPIC}
            return [lambda s=s: self.client.watch_liquidations(s, params=params) for s in self.symbols]
        return [lambda: self.client.watch_liquidations_for_symbols(self.symbols)]

    async def frames(self) -> AsyncIterator[pl.DataFrame]:
        """Frames of new events as they arrive. Raises ccxt's error when the connection drops or the
        exchange refuses; calling again reconnects and resubscribes (ccxt drops the closed client)."""
        await self.client.load_markets()
        markets = {s: self.client.market(s) for s in self.symbols}
        pending = {asyncio.ensure_future(watch()): watch for watch in self._watchers()}
        try:
            while True:
                done, _ = await asyncio.wait(set(pending), return_when=asyncio.FIRST_COMPLETED)
                failures = [_failure(task) for task in done]
                failure = next((error for error in failures if error is not None), None)
                for task in done:
                    watch = pending.pop(task)
                    if failure is None:
                        pending[asyncio.ensure_future(watch())] = watch
                events, lost = self.tape.take()
                if lost:
                    self.lost += lost
                    log.error("%s: %d liquidation(s) lost: more than %d arrived between two reads",
                              self.exchange_id, lost, TAPE_SIZE)
                frame = live_liquidations_frame(self.exchange_id, events, markets)
                if frame.height:
                    yield frame
                if failure is not None:
                    raise failure
        finally:
            for task in pending:
                task.cancel()


def _failure(task: asyncio.Future) -> BaseException | None:
    """Why a finished watch failed, or None; ccxt cancels a watch whose connection it closes."""
    if task.cancelled():
        return ccxt.NetworkError("the watch was cancelled: its connection was closed")
    return task.exception()


class DepthFeed:
    """One order-book snapshot per symbol every `interval_s` seconds (REST fetchOrderBook) -> DEPTH rows."""

    lost = 0  # a snapshot missed is retaken on the next round, never half-stored
    reconnects = 0  # REST: nothing to reconnect; failed rounds show as the collector's errors

    def __init__(self, client: Any, exchange_id: str, symbols: Sequence[str], interval_s: float) -> None:
        self.client = client
        self.exchange_id = exchange_id
        self.symbols = list(symbols)
        self.interval_s = interval_s
        self.limit = PAGE_LIMITS["fetchOrderBook"].get(exchange_id, DEFAULT_PAGE_LIMIT)

    async def frames(self) -> AsyncIterator[pl.DataFrame]:
        """A DEPTH frame per symbol and round, rounds `interval_s` apart (start to start).
        Raises ccxt's error, or ValueError for a book with an empty side."""
        await self.client.load_markets()
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            for symbol in self.symbols:
                market = self.client.market(market_symbol(self.exchange_id, symbol))
                book = await self.client.fetch_order_book(market["symbol"], limit=self.limit)
                ts = book.get("timestamp") or self.client.milliseconds()  # some books carry no time
                yield depth_frame(book, ts, self.exchange_id, symbol, contract_size=market.get("contractSize") or 1.0)
            await asyncio.sleep(max(0.0, self.interval_s - (loop.time() - started)))
