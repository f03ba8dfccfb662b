"""Live collectors: ccxt.pro's real parsing against a websocket server on loopback that speaks each
exchange's own format (tests/helpers_ws.py), messages built from the real hourly liquidation
aggregates; disconnects, SIGTERM, heartbeats, depth snapshots, and the pure parts."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import ccxt
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from lib.collect import (
    BACKOFF_MAX_SECONDS,
    EXCHANGES,
    Buffer,
    Collector,
    Heartbeat,
    Settings,
    backoff_seconds,
    collector_status,
    new_heartbeat,
)
from lib.config import PROJECT_ROOT
from lib.schema import DEPTH, EVENT, LIQUIDATIONS, SNAPSHOT
from lib.sources.ccxt import PAGE_LIMITS, depth_frame
from lib.sources.live import FEEDS, LiquidationFeed, DepthFeed, Tape, live_client, with_ws_url
from lib.store import Store, StoreError

from helpers_ws import ENCODERS, FeedServer, Message, split_aggregates

AGGREGATES = Path("liquidations/coinglass_BTC_liquidations_agg_1h.parquet")
KLINES = Path("ohlcv/binance_usdm_BTCUSDT_1h.parquet")
HOURS = slice(1, 7)  # 2025-11-23 07:00 .. 12:00 UTC: both sides liquidated every hour
WAIT_S = 20.0  # the longest a scenario may take on a loaded machine
FAST = Settings(flush_seconds=0.3, heartbeat_seconds=0.2)


def run_async(coroutine: Any) -> Any:
    """asyncio.run in a thread of its own: Playwright's sync API (the browser tests) can leave an
    event loop running in this one, and asyncio.run refuses to start inside it."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.fixture
def events(shared_data: Path) -> pl.DataFrame:
    """A few hours of real liquidation totals split into events at that hour's real prices."""
    aggregates = pl.read_parquet(shared_data / AGGREGATES)
    return split_aggregates(aggregates[HOURS], pl.read_parquet(shared_data / KLINES))


def expected_rows(events: pl.DataFrame, exchange: str) -> pl.DataFrame:
    """What the store should hold for `events` read from `exchange`: one row per event."""
    return events.select(
        exchange=pl.lit(exchange), symbol="symbol", timeframe=pl.lit(EVENT),
        ts=pl.from_epoch("ts_ms", time_unit="ms").dt.replace_time_zone("UTC").dt.cast_time_unit("us"),
        side="side", price="price", qty="qty", notional_usd=pl.col("price") * pl.col("qty"),
        sampled=pl.lit(FEEDS[exchange].sampled),
    )  # fmt: skip


def stored(store: Store) -> pl.DataFrame:
    return store.scan(LIQUIDATIONS).collect().sort("ts", "side")


async def _record(server: FeedServer, exchange: str, store: Store, rows: int) -> tuple[Heartbeat, LiquidationFeed]:
    client = live_client(exchange, ["BTC"], server.url)
    feed = LiquidationFeed(client, exchange, ["BTC"])
    collector = Collector(store, LIQUIDATIONS, feed, new_heartbeat("test", LIQUIDATIONS, exchange, ["BTC"], FAST),
                          FAST, source="test")
    stop = asyncio.Event()
    run = asyncio.create_task(collector.run(stop))
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and not (server.finished.is_set() and collector.heartbeat.rows_written >= rows):
        await asyncio.sleep(0.05)
    stop.set()
    heartbeat = await run
    await client.close()
    return heartbeat, feed


def record(server: FeedServer, exchange: str, store: Store, rows: int) -> tuple[Heartbeat, LiquidationFeed]:
    """Collect from `server` in this process until it has sent everything and `rows` new rows are stored."""
    return run_async(_record(server, exchange, store, rows))


# --- side conventions: a raw message of each exchange -> the stored row ---------------------------

T1, T2 = 1_764_061_200_123, 1_764_061_200_456  # 2025-11-25 09:00:00.123 / .456 UTC
RAW: dict[str, list[str]] = {
    "bybit": [
        '{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1764061200500,"data":['
        '{"T":1764061200123,"s":"BTCUSDT","S":"Buy","v":"0.25","p":"86000.5"},'
        '{"T":1764061200456,"s":"BTCUSDT","S":"Sell","v":"1.5","p":"86100"}]}',
    ],
    "binanceusdm": [
        '{"e":"forceOrder","E":1764061200125,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC","q":"0.25",'
        '"p":"85570.5","ap":"86000.5","X":"FILLED","l":"0.25","z":"0.25","T":1764061200123}}',
        '{"e":"forceOrder","E":1764061200458,"o":{"s":"BTCUSDT","S":"BUY","o":"LIMIT","f":"IOC","q":"1.5",'
        '"p":"86530.5","ap":"86100","X":"FILLED","l":"1.5","z":"1.5","T":1764061200456}}',
    ],
    "okx": [
        '{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":['
        '{"bkLoss":"0","bkPx":"86000.5","ccy":"","posSide":"long","side":"sell","sz":"25","ts":"1764061200123"},'
        '{"bkLoss":"0","bkPx":"86100","ccy":"","posSide":"net","side":"buy","sz":"150","ts":"1764061200456"}],'
        '"instFamily":"BTC-USDT","instId":"BTC-USDT-SWAP","instType":"SWAP","uly":"BTC-USDT"}]}',
    ],
}
# ccxt's parsed `side` of those messages: Bybit passes the position's side through; Binance and OKX
# pass the order's side (and ccxt keeps only details[0] of an OKX entry).
CCXT_SIDES = {"bybit": ["buy", "sell"], "binanceusdm": ["sell", "buy"], "okx": ["sell"]}


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_raw_messages_are_stored_with_the_side_of_the_liquidated_position(exchange: str, data_dir: Path) -> None:
    messages = [Message(text, 2 // len(RAW[exchange])) for text in RAW[exchange]]
    store = Store(data_dir)
    with FeedServer(exchange, messages) as server:
        _, feed = record(server, exchange, store, rows=2)
    assert [liquidation["side"] for liquidation in feed.tape] == CCXT_SIDES[exchange]
    sampled = exchange != "bybit"  # Binance and OKX send at most one order per symbol per second
    assert stored(store).select("ts", "side", "price", "qty", "notional_usd", "sampled").rows() == [
        (utc(2025, 11, 25, 9, 0, 0, 123_000), "long", 86000.5, 0.25, 21500.125, sampled),
        (utc(2025, 11, 25, 9, 0, 0, 456_000), "short", 86100.0, 1.5, 129150.0, sampled),
    ]


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_real_liquidations_arrive_whole_through_each_exchange_format(
    exchange: str, events: pl.DataFrame, data_dir: Path
) -> None:
    """Every event of every message is stored once, with its side, price, size and notional."""
    store = Store(data_dir)
    with FeedServer(exchange, ENCODERS[exchange](events)) as server:
        heartbeat, feed = record(server, exchange, store, rows=events.height)
    assert heartbeat.events_received == heartbeat.rows_written == events.height
    assert feed.lost == 0
    assert_frame_equal(stored(store), expected_rows(events, exchange).sort("ts", "side"))


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_a_dropped_connection_reconnects_without_losing_or_doubling_rows(
    exchange: str, events: pl.DataFrame, data_dir: Path
) -> None:
    """The server cuts the TCP connection mid-stream, then resends its last 3 messages to the new one."""
    messages = ENCODERS[exchange](events)
    store = Store(data_dir)
    with FeedServer(exchange, messages, drop_after=len(messages) // 2, overlap=3) as server:
        heartbeat, _ = record(server, exchange, store, rows=events.height)
        connections = server.connections
    assert connections == 2
    assert heartbeat.reconnects == 1  # ccxt may reopen it before any watch sees the drop: errors 0 or 1
    assert heartbeat.events_received > events.height  # the resent messages arrived twice...
    assert heartbeat.rows_written == events.height  # ...and were stored once
    assert_frame_equal(stored(store), expected_rows(events, exchange).sort("ts", "side"))


def test_sigterm_stores_what_the_collector_holds_and_says_so_in_its_heartbeat(
    events: pl.DataFrame, data_dir: Path
) -> None:
    """`python -m lib collect` with a flush period longer than the test: only SIGTERM can store the rows."""
    heartbeat_file = data_dir / "collectors" / "sigterm.json"
    command = [
        sys.executable, "-m", "lib", "--data-dir", str(data_dir), "collect", "liquidations", "--exchange", "bybit",
        "--symbols", "BTC", "--flush-seconds", "3600", "--heartbeat-seconds", "0.2", "--name", "sigterm",
    ]  # fmt: skip
    with FeedServer("bybit", ENCODERS["bybit"](events)) as server:
        process = subprocess.Popen([*command, "--ws-url", server.url], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        try:
            beats = _heartbeats_until(heartbeat_file, lambda b: b["events_received"] == events.height, process)
            assert stored(Store(data_dir)).is_empty()  # all held in the buffer
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=WAIT_S)
        finally:
            process.kill()
    assert process.returncode == 0, err
    assert "sigterm stopped" in out
    assert_frame_equal(stored(Store(data_dir)), expected_rows(events, "bybit").sort("ts", "side"))
    last = json.loads(heartbeat_file.read_text())
    assert last["state"] == "stopped" and last["rows_written"] == events.height and last["pid"] == process.pid
    assert len({beat["last_seen"] for beat in beats}) > 1  # it kept beating while it ran
    assert last["last_seen"] >= beats[-1]["last_seen"]


def _heartbeats_until(path: Path, done: Any, process: subprocess.Popen) -> list[dict]:
    """Heartbeats read from `path` until one satisfies `done`; fails if the process exits first."""
    beats: list[dict] = []
    deadline = time.monotonic() + 90.0  # the subprocess imports ccxt.pro: slow on a busy machine
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        if path.exists():
            beats.append(json.loads(path.read_text()))
            if done(beats[-1]):
                return beats
        time.sleep(0.1)
    raise AssertionError(f"the heartbeat never got there; last: {beats[-1:] }")


# --- depth snapshots -----------------------------------------------------------------------------

PRICE = 78_137.2  # BTC/USDT close of 2026-05-17 17:00 UTC (binance_usdm_BTCUSDT_1h)
BOOK: dict[str, Any] = {
    "bids": [[round(PRICE * (1 - 0.001 * k), 1), 10.0 + k] for k in range(1, 30)],
    "asks": [[round(PRICE * (1 + 0.001 * k), 1), 12.0 + k] for k in range(1, 30)],
}


class BookClient:
    """The part of a ccxt.pro client DepthFeed uses: OKX's markets and a fixed book; the first call
    fails like a dropped connection."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.markets = {m["symbol"]: m for m in (
            {"symbol": "BTC/USDT:USDT", "id": "BTC-USDT-SWAP", "contractSize": 0.01},
            {"symbol": "ETH/USDT:USDT", "id": "ETH-USDT-SWAP", "contractSize": 0.1},
        )}  # fmt: skip

    async def load_markets(self) -> dict:
        return self.markets

    def market(self, symbol: str) -> dict:
        return self.markets[symbol]

    def milliseconds(self) -> int:
        return int(time.time() * 1000)

    async def fetch_order_book(self, symbol: str, limit: int) -> dict:
        self.calls.append((symbol, limit))
        if len(self.calls) == 1:
            raise ccxt.NetworkError("okx GET https://www.okx.com/api/v5/market/books: connection reset")
        return {**BOOK, "timestamp": 1_779_037_200_000 + len(self.calls)}


def test_depth_snapshots_are_stored_every_interval_after_a_failed_fetch(data_dir: Path) -> None:
    client, store = BookClient(), Store(data_dir)
    feed = DepthFeed(client, "okx", ["BTC", "ETH"], interval_s=0.1)

    async def scenario() -> Heartbeat:
        collector = Collector(store, DEPTH, feed, new_heartbeat("depth", DEPTH, "okx", ["BTC", "ETH"], FAST), FAST,
                              source="okx")
        stop = asyncio.Event()
        run = asyncio.create_task(collector.run(stop))
        while collector.heartbeat.events_received < 4:
            await asyncio.sleep(0.05)
        stop.set()
        return await run

    heartbeat = run_async(asyncio.wait_for(scenario(), WAIT_S))
    assert heartbeat.errors == 1 and heartbeat.last_error.startswith("NetworkError")
    assert {limit for _, limit in client.calls} == {PAGE_LIMITS["fetchOrderBook"]["okx"]}
    rows = store.scan(DEPTH).collect().sort("symbol", "ts")
    assert rows.height == heartbeat.rows_written == heartbeat.events_received >= 4
    assert set(rows["timeframe"]) == {SNAPSHOT}
    first_btc = rows.filter(symbol="BTC").row(0, named=True)
    ts = int(first_btc["ts"].timestamp() * 1000)
    assert first_btc == depth_frame(BOOK, ts, "okx", "BTC", contract_size=0.01).row(0, named=True)


class FlakyStore(Store):
    """A store whose first write fails as a full disk would."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.attempts = 0

    def write(self, *args: Any, **kwargs: Any) -> int:
        self.attempts += 1
        if self.attempts == 1:
            raise OSError(28, "No space left on device")
        return super().write(*args, **kwargs)


class ListFeed:
    """A feed that yields given frames, then waits."""

    lost = reconnects = 0

    def __init__(self, frames: list[pl.DataFrame]) -> None:
        self._frames = frames

    async def frames(self) -> Any:
        for frame in self._frames:
            yield frame
        await asyncio.Event().wait()


def test_rows_whose_write_failed_are_kept_and_stored_by_the_next_flush(events: pl.DataFrame, data_dir: Path) -> None:
    rows = expected_rows(events, "bybit")
    store = FlakyStore(data_dir)

    async def scenario() -> Heartbeat:
        feed = ListFeed([rows.head(100), rows.slice(100)])
        collector = Collector(store, LIQUIDATIONS, feed, new_heartbeat("flaky", LIQUIDATIONS, "bybit", ["BTC"], FAST),
                              FAST, source="test")
        stop = asyncio.Event()
        run = asyncio.create_task(collector.run(stop))
        while collector.heartbeat.rows_written < rows.height:
            await asyncio.sleep(0.05)
        stop.set()
        return await run

    heartbeat = run_async(asyncio.wait_for(scenario(), WAIT_S))
    assert store.attempts == 2 and heartbeat.last_error == "OSError: [Errno 28] No space left on device"
    assert heartbeat.rows_held == 0
    assert_frame_equal(stored(store), rows.sort("ts", "side"))


# --- pure parts ----------------------------------------------------------------------------------

NOW = utc(2026, 5, 20, 12, 0)


def beat(seconds_ago: float, state: str = "running", heartbeat_seconds: float = 10.0) -> dict[str, Any]:
    seen = (NOW - timedelta(seconds=seconds_ago)).isoformat().replace("+00:00", "Z")
    return {"last_seen": seen, "state": state, "heartbeat_seconds": heartbeat_seconds, "last_error": "NetworkError: x"}


@pytest.mark.parametrize(
    ("heartbeat", "status"),
    [
        (None, "no collector has run"),
        (beat(12), "collector last seen 12 s ago"),
        (beat(59), "collector last seen 59 s ago"),  # under the 1-minute floor: still up
        (beat(180), "collector down: last seen 3 min ago"),
        (beat(100, heartbeat_seconds=60), "collector last seen 1 min ago"),  # 3 heartbeats = 3 min
        (beat(3 * 3600), "collector down: last seen 3 h ago"),
        (beat(3 * 86_400), "collector down: last seen 3 d ago"),
        (beat(5, state="reconnecting"), "collector last seen 5 s ago, reconnecting (NetworkError: x)"),
        (beat(600, state="stopped"), "collector stopped 10 min ago"),
        (beat(-3), "collector last seen 0 s ago"),  # the app's clock a little behind the collector's
    ],
)
def test_collector_status(heartbeat: dict | None, status: str) -> None:
    assert collector_status(heartbeat, NOW) == status


@pytest.mark.parametrize(("failures", "seconds"), [(0, 1.0), (1, 2.0), (3, 8.0), (6, BACKOFF_MAX_SECONDS), (500, 60.0)])
def test_backoff_doubles_up_to_a_cap(failures: int, seconds: float) -> None:
    assert backoff_seconds(failures) == seconds


def test_buffer_is_due_by_age_or_by_size_and_keeps_order() -> None:
    one = pl.DataFrame({"x": [1]})
    buffer = Buffer()
    assert not buffer.due(now=100.0, flush_seconds=5.0, max_rows=3) and buffer.take() is None
    buffer.add(one, now=10.0)
    buffer.add(pl.DataFrame({"x": [2]}), now=14.0)
    assert not buffer.due(now=14.9, flush_seconds=5.0, max_rows=3)
    assert buffer.due(now=15.0, flush_seconds=5.0, max_rows=3)  # the oldest row is 5 s old
    buffer.add(pl.DataFrame({"x": [3]}), now=14.0)
    assert buffer.due(now=14.0, flush_seconds=5.0, max_rows=3)  # 3 rows held
    taken = buffer.take()
    assert taken["x"].to_list() == [1, 2, 3] and buffer.rows == 0 and buffer.since is None
    buffer.add(pl.DataFrame({"x": [4]}), now=20.0)
    buffer.put_back(taken, since=10.0)  # a failed write goes back in front
    assert buffer.take()["x"].to_list() == [1, 2, 3, 4]


def test_tape_reads_every_event_once_and_counts_what_it_could_not_keep() -> None:
    tape = Tape(max_size=3)
    for n in range(2):
        tape.append({"n": n})
    assert tape.take() == ([{"n": 0}, {"n": 1}], 0)
    assert tape.take() == ([], 0)
    for n in range(2, 7):
        tape.append({"n": n})
    assert tape.take() == ([{"n": 4}, {"n": 5}, {"n": 6}], 2)


@pytest.mark.parametrize(
    ("exchange", "path"),
    [("bybit", ("public", "linear")), ("binanceusdm", ("linear",)), ("okx", ())],
)
def test_with_ws_url_points_the_linear_feed_at_a_local_server_without_touching_the_client(
    exchange: str, path: Sequence[str]
) -> None:
    client = live_client(exchange, ["BTC"])
    before = json.dumps(client.urls, sort_keys=True)
    urls = with_ws_url(client.urls, exchange, "ws://127.0.0.1:9")
    node = urls["api"]["ws"]
    for key in path:
        node = node[key]
    assert node == "ws://127.0.0.1:9"
    assert json.dumps(client.urls, sort_keys=True) == before


def test_heartbeats_are_one_file_per_collector_and_a_damaged_one_is_skipped(data_dir: Path) -> None:
    store = Store(data_dir)
    store.heartbeat("liquidations-bybit", {"state": "running"})
    store.heartbeat("depth-okx", {"state": "stopped"})
    (data_dir / "collectors" / "half.json").write_text('{"state": "runn')
    assert store.heartbeats() == {"depth-okx": {"state": "stopped"}, "liquidations-bybit": {"state": "running"}}
    with pytest.raises(StoreError, match="collector name"):
        store.heartbeat("../manifest", {})


def test_the_command_line_offers_exactly_the_exchanges_with_a_known_side_convention() -> None:
    assert EXCHANGES == tuple(FEEDS)
