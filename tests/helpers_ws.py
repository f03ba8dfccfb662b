"""A websocket server on loopback that speaks the exchanges' own liquidation feeds, and the messages
it sends, built from the real hourly liquidation aggregates in ../shared/data/liquidations.

`FeedServer` answers subscribe and ping requests the way Bybit v5, Binance USD-M and OKX v5 do, then
pushes its messages; it can cut the connection mid-stream and resend the last few messages to the
client that reconnects. The encoders write each exchange's own side convention (Bybit: "Buy" = a long
was liquidated; Binance and OKX: the liquidation order's side, SELL closes a long).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Sequence
from typing import NamedTuple

import polars as pl
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

HOUR_MS = 3_600_000
EVENT_USD = 25_000.0  # an hour's total is split into events of about this size...
MAX_EVENTS_PER_HOUR = 40  # ...and at most this many
LOT = 0.01  # BTC per OKX contract: the coarsest lot of the three venues, so every venue can send each qty
TICK = 0.1  # BTC/USDT price tick
OKX_CONTRACT_SIZE = 0.01
BANKRUPTCY_OFFSET = 0.005  # Binance's order price `p` sits beyond the average fill `ap`
START_TIMEOUT_S = 5.0


class Message(NamedTuple):
    """One websocket frame and how many liquidation events it carries."""

    text: str
    events: int


def split_aggregates(aggregates: pl.DataFrame, klines: pl.DataFrame, symbol: str = "BTC") -> pl.DataFrame:
    """Each hour's longUsd and shortUsd (Coinglass) split into events at that hour's prices (Binance 1h klines).

    An hour's n = round(usd / EVENT_USD) events (1..MAX_EVENTS_PER_HOUR) of equal USD walk the price from
    the open toward the low (longs are liquidated as it falls) or the high (shorts); qty is rounded to
    LOT, price to TICK, times spread over the hour (shorts 1 ms later). Columns: ts_ms, symbol, side
    (the liquidated position), price, qty. Hours without klines are skipped.
    """
    hours = aggregates.join(klines.rename({"open_time": "timestamp"}), on="timestamp", how="inner").sort("timestamp")
    rows: list[dict[str, object]] = []
    for hour in hours.iter_rows(named=True):
        for side, usd, extreme in (("long", hour["longUsd"], hour["low"]), ("short", hour["shortUsd"], hour["high"])):
            count = min(MAX_EVENTS_PER_HOUR, max(1, round(usd / EVENT_USD))) if usd > 0 else 0
            for i in range(count):
                price = round(hour["open"] + (extreme - hour["open"]) * (i + 1) / count, 1)
                lots = max(1, round(usd / count / price / LOT))
                rows.append({
                    "ts_ms": hour["timestamp"] + (i + 1) * (HOUR_MS // (count + 1)) + (side == "short"),
                    "symbol": symbol, "side": side, "price": price, "qty": round(lots * LOT, 2),
                })  # fmt: skip
    return pl.DataFrame(
        rows, schema={"ts_ms": pl.Int64, "symbol": pl.String, "side": pl.String, "price": pl.Float64, "qty": pl.Float64}
    )


def _number(value: float) -> str:
    return repr(float(value))


def _chunks(events: pl.DataFrame, size: int) -> list[list[dict]]:
    rows = events.to_dicts()
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def bybit_messages(events: pl.DataFrame, batch: int = 10) -> list[Message]:
    """Bybit v5 `allLiquidation.{symbol}` pushes of `batch` events (S is the liquidated position's side)."""
    return [
        Message(json.dumps({
            "topic": f"allLiquidation.{chunk[0]['symbol']}USDT", "type": "snapshot", "ts": chunk[-1]["ts_ms"] + 200,
            "data": [
                {"T": e["ts_ms"], "s": f"{e['symbol']}USDT", "S": "Buy" if e["side"] == "long" else "Sell",
                 "v": _number(e["qty"]), "p": _number(e["price"])}
                for e in chunk
            ],
        }), len(chunk))  # fmt: skip
        for symbol_events in events.partition_by("symbol", maintain_order=True)
        for chunk in _chunks(symbol_events, batch)
    ]


def binance_messages(events: pl.DataFrame) -> list[Message]:
    """Binance USD-M `forceOrder` events, one per message (S is the forced order's side)."""
    messages = []
    for e in events.to_dicts():
        closes_long = e["side"] == "long"
        order_price = e["price"] * (1 - BANKRUPTCY_OFFSET if closes_long else 1 + BANKRUPTCY_OFFSET)
        qty = _number(e["qty"])
        messages.append(Message(json.dumps({
            "e": "forceOrder", "E": e["ts_ms"] + 3,
            "o": {"s": f"{e['symbol']}USDT", "S": "SELL" if closes_long else "BUY", "o": "LIMIT", "f": "IOC",
                  "q": qty, "p": _number(round(order_price, 1)), "ap": _number(e["price"]), "X": "FILLED",
                  "l": qty, "z": qty, "T": e["ts_ms"]},
        }), 1))  # fmt: skip
    return messages


def okx_messages(events: pl.DataFrame, batch: int = 3) -> list[Message]:
    """OKX v5 `liquidation-orders` pushes, `batch` details per instrument entry (side is the order's
    side; posSide alternates between hedge mode's long/short and net mode's "net")."""
    messages = []
    for chunk in _chunks(events, batch):
        symbol = chunk[0]["symbol"]
        details = [
            {"bkLoss": "0", "bkPx": _number(e["price"]), "ccy": "",
             "posSide": "net" if i % 2 else e["side"], "side": "sell" if e["side"] == "long" else "buy",
             "sz": str(round(e["qty"] / OKX_CONTRACT_SIZE)), "ts": str(e["ts_ms"])}
            for i, e in enumerate(chunk)
        ]  # fmt: skip
        entry = {"details": details, "instFamily": f"{symbol}-USDT", "instId": f"{symbol}-USDT-SWAP",
                 "instType": "SWAP", "uly": f"{symbol}-USDT"}  # fmt: skip
        messages.append(Message(json.dumps({"arg": {"channel": "liquidation-orders", "instType": "SWAP"},
                                            "data": [entry]}), len(chunk)))
    return messages


ENCODERS: dict[str, Callable[[pl.DataFrame], list[Message]]] = {
    "bybit": bybit_messages,
    "binanceusdm": binance_messages,
    "okx": okx_messages,
}


# --- the exchanges' answers to subscribe and ping: (reply or None, was it a subscription) ---------


def _bybit(raw: str) -> tuple[str | None, bool]:
    request = json.loads(raw)
    op = request.get("op")
    answer = {"success": True, "conn_id": "loopback", "req_id": str(request.get("req_id")), "op": op}
    if op == "ping":
        return json.dumps({**answer, "ret_msg": "pong"}), False
    if op == "subscribe":
        return json.dumps({**answer, "ret_msg": ""}), True
    return None, False


def _binance(raw: str) -> tuple[str | None, bool]:
    request = json.loads(raw)
    if request.get("method") == "SUBSCRIBE":
        return json.dumps({"result": None, "id": request["id"]}), True
    return None, False


def _okx(raw: str) -> tuple[str | None, bool]:
    if raw == "ping":
        return "pong", False
    request = json.loads(raw)
    if request.get("op") == "subscribe":
        return json.dumps({"event": "subscribe", "arg": request["args"][0], "connId": "loopback"}), True
    return None, False


PROTOCOLS: dict[str, Callable[[str], tuple[str | None, bool]]] = {
    "bybit": _bybit,
    "binanceusdm": _binance,
    "okx": _okx,
}


class FeedServer:
    """One exchange's liquidation feed on 127.0.0.1 (a thread with its own event loop).

    After a client subscribes, `messages` are sent in order, `interval_s` apart (on a fixed schedule).
    `drop_after`: once that many were sent, the TCP connection is aborted (no close frame: a network
    drop); the client that reconnects gets the last `overlap` messages again, then the rest.
    Counters (read from the test's thread): sent, events_sent, connections; `finished` is set when
    the last message has gone out.
    """

    def __init__(
        self, exchange: str, messages: Sequence[Message], interval_s: float = 0.0,
        drop_after: int | None = None, overlap: int = 0,
    ) -> None:  # fmt: skip
        self.protocol = PROTOCOLS[exchange]
        self.messages = list(messages)
        self.interval_s = interval_s
        self.drop_after = drop_after
        self.overlap = overlap
        self.sent = 0
        self.events_sent = 0
        self.connections = 0
        self.dropped = False
        self.finished = threading.Event()
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def __enter__(self) -> FeedServer:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError("the loopback websocket server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(START_TIMEOUT_S)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._serve, "127.0.0.1", 0) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    async def _serve(self, ws: ServerConnection) -> None:
        self.connections += 1
        sender: asyncio.Task | None = None
        try:
            async for raw in ws:
                reply, subscribed = self.protocol(raw if isinstance(raw, str) else raw.decode())
                if reply is not None:
                    await ws.send(reply)
                if subscribed and sender is None:
                    sender = asyncio.create_task(self._push(ws))
        except ConnectionClosed:
            pass
        finally:
            if sender is not None:
                sender.cancel()

    async def _push(self, ws: ServerConnection) -> None:
        loop = asyncio.get_running_loop()
        start = max(0, self.sent - self.overlap) if self.dropped else 0
        due = loop.time()
        for index in range(start, len(self.messages)):
            if self.interval_s:
                due += self.interval_s
                await asyncio.sleep(max(0.0, due - loop.time()))
            await ws.send(self.messages[index].text)
            if index >= self.sent:
                self.sent = index + 1
            self.events_sent += self.messages[index].events
            if self.drop_after is not None and not self.dropped and self.sent == self.drop_after:
                self.dropped = True
                ws.transport.abort()
                return
        self.finished.set()
