"""The collector behind `python -m lib collect`: a live feed appended to the store in batches.

A collector reads one feed (lib.sources.live) into a Buffer and appends it to the store when its
oldest row is `flush_seconds` old or it holds `max_rows` rows, so at most `flush_seconds` of rows
are at risk and memory stays bounded. The store write runs in a thread, so the websocket keeps
being read while a refresh holds the store's lock. When the feed fails (a dropped connection, an
exchange error) the collector waits with exponential backoff and opens it again. SIGTERM and SIGINT
stop it after a last flush. Its heartbeat (Store.heartbeat) records when it was last seen, what it
received and wrote, its reconnects and its last error; `collector_status` turns one into a line of text.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import polars as pl

from lib.schema import DEPTH, LIQUIDATIONS, Dataset
from lib.store import COLLECTOR_NAME, Store, StoreError

log = logging.getLogger(__name__)

DEFAULT_FLUSH_SECONDS = 5.0
DEFAULT_DEPTH_INTERVAL_SECONDS = 60.0
DEFAULT_HEARTBEAT_SECONDS = 10.0
MAX_BUFFER_ROWS = 20_000  # flush early past this many rows, whatever their age: bounds memory
TICK_SECONDS = 0.2  # how often the flush and heartbeat deadlines are checked
CLOSE_TIMEOUT_SECONDS = 5.0  # closing the exchange's connections at stop

# After failure n (0-based) the feed is reopened after min(BACKOFF_MAX, BACKOFF_FIRST * 2**n) seconds.
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0

# A collector is "down" when its heartbeat is older than this many heartbeat periods (at least DOWN_FLOOR).
DOWN_AFTER_BEATS = 3
DOWN_FLOOR = timedelta(minutes=1)

RUNNING, RECONNECTING, STOPPED = "running", "reconnecting", "stopped"
KINDS: dict[str, Dataset] = {"liquidations": LIQUIDATIONS, "depth": DEPTH}
# lib.sources.live.FEEDS' exchanges, named here so the command line lists them without importing ccxt.pro.
EXCHANGES: tuple[str, ...] = ("bybit", "binanceusdm", "okx")


class Feed(Protocol):
    """What a collector reads: frames in one dataset's schema; how many events it had to drop and how
    many times its connection was reopened."""

    lost: int
    reconnects: int

    def frames(self) -> AsyncIterator[pl.DataFrame]: ...


# --- pure parts ----------------------------------------------------------------------------------


def backoff_seconds(failures: int) -> float:
    """Seconds to wait before reopening a feed that failed `failures` + 1 times in a row."""
    return min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** min(failures, 16))


def _utc_iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _ago(age: timedelta) -> str:
    seconds = max(0, int(age.total_seconds()))
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= 2 * size or (unit == "min" and seconds >= size):
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def collector_status(heartbeat: Mapping[str, Any] | None, now: datetime) -> str:
    """One line for the app: "collector last seen 12 s ago", "collector down: last seen 3 h ago", ...

    Down when the heartbeat is older than DOWN_AFTER_BEATS heartbeat periods (at least DOWN_FLOOR):
    the process died without a last word (killed, machine off).
    """
    if not heartbeat:
        return "no collector has run"
    age = now - datetime.fromisoformat(heartbeat["last_seen"])
    ago = _ago(age)
    if heartbeat.get("state") == STOPPED:
        return f"collector stopped {ago} ago"
    down_after = max(DOWN_FLOOR, timedelta(seconds=DOWN_AFTER_BEATS * float(heartbeat["heartbeat_seconds"])))
    if age > down_after:
        return f"collector down: last seen {ago} ago"
    if heartbeat.get("state") == RECONNECTING:
        return f"collector last seen {ago} ago, reconnecting ({heartbeat.get('last_error')})"
    return f"collector last seen {ago} ago"


@dataclass
class Heartbeat:
    """What a collector reports about itself; times are ISO-8601 UTC strings."""

    name: str
    dataset: str
    exchange: str
    symbols: list[str]
    pid: int
    started_at: str
    last_seen: str
    heartbeat_seconds: float
    flush_seconds: float
    state: str = RUNNING
    last_event_at: str | None = None
    last_flush_at: str | None = None
    events_received: int = 0  # rows read from the feed
    rows_held: int = 0  # rows read but not stored yet (at stop: rows that could not be stored)
    rows_written: int = 0  # rows new to the store (resent duplicates are not counted)
    events_lost: int = 0  # events the feed had to drop (see lib.sources.live.Tape)
    reconnects: int = 0  # connections reopened (websocket feeds)
    errors: int = 0  # failures of the feed, each followed by a backoff and a reopen
    last_error: str | None = None
    last_error_at: str | None = None


@dataclass
class Buffer:
    """Rows read but not yet stored, oldest first; `since` is the monotonic time of the oldest."""

    frames: list[pl.DataFrame] = field(default_factory=list)
    rows: int = 0
    since: float | None = None

    def add(self, frame: pl.DataFrame, now: float) -> None:
        if frame.height:
            self.frames.append(frame)
            self.rows += frame.height
            self.since = now if self.since is None else self.since

    def due(self, now: float, flush_seconds: float, max_rows: int) -> bool:
        """True when the oldest row has waited `flush_seconds` or `max_rows` rows are held."""
        return self.since is not None and (now - self.since >= flush_seconds or self.rows >= max_rows)

    def take(self) -> pl.DataFrame | None:
        """All rows held, emptying the buffer (None when empty)."""
        if not self.frames:
            return None
        frame = pl.concat(self.frames, how="vertical")
        self.frames, self.rows, self.since = [], 0, None
        return frame

    def put_back(self, frame: pl.DataFrame, since: float) -> None:
        """Rows whose write failed, back in front of what arrived meanwhile, due again `since` + a period."""
        self.frames.insert(0, frame)
        self.rows += frame.height
        self.since = since


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


# --- the process ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """How a collector batches and reports."""

    flush_seconds: float = DEFAULT_FLUSH_SECONDS
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS
    max_rows: int = MAX_BUFFER_ROWS


class Collector:
    """Reads `feed` into the store's `dataset` until `stop` is set; see the module docstring."""

    def __init__(
        self, store: Store, dataset: Dataset, feed: Feed, heartbeat: Heartbeat, settings: Settings,
        source: str, clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.store = store
        self.dataset = dataset
        self.feed = feed
        self.heartbeat = heartbeat
        self.settings = settings
        self.source = source
        self.clock = clock
        self.buffer = Buffer()

    async def run(self, stop: asyncio.Event) -> Heartbeat:
        """Collect until `stop` is set, then flush what is held; returns the last heartbeat."""
        self._beat()
        reader = asyncio.create_task(self._read())
        try:
            await self._keep_time(stop)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await self._flush()
            self.heartbeat.state = STOPPED
            self._beat()
        if self.buffer.rows:
            log.error("%s: %d rows could not be stored (%s)", self.heartbeat.name, self.buffer.rows,
                      self.heartbeat.last_error)
        log.info("%s stopped: %d events received, %d new rows stored", self.heartbeat.name,
                 self.heartbeat.events_received, self.heartbeat.rows_written)
        return self.heartbeat

    async def _read(self) -> None:
        """Feed -> buffer, reopening the feed after a failure (exponential backoff)."""
        failures = 0
        while True:
            try:
                async for frame in self.feed.frames():
                    self.buffer.add(frame, self.clock())
                    self.heartbeat.events_received += frame.height
                    self.heartbeat.last_event_at = _utc_iso(datetime.now(timezone.utc))
                    self.heartbeat.state = RUNNING
                    failures = 0
                raise EOFError("the feed ended")
            except Exception as exc:  # any failure of the feed: record it, wait, reopen
                self._error(exc)
                self.heartbeat.errors += 1
                self.heartbeat.state = RECONNECTING
                delay = backoff_seconds(failures)
                failures += 1
                log.warning("%s: feed failed (%s); reopening in %.0f s", self.heartbeat.name, _one_line(exc), delay)
                await asyncio.sleep(delay)

    async def _keep_time(self, stop: asyncio.Event) -> None:
        """Flush when due and beat every heartbeat period, until `stop`."""
        last_beat = self.clock()
        while not stop.is_set():
            await asyncio.sleep(TICK_SECONDS)
            if self.buffer.due(self.clock(), self.settings.flush_seconds, self.settings.max_rows):
                await self._flush()
            if self.clock() - last_beat >= self.settings.heartbeat_seconds:
                self._beat()
                last_beat = self.clock()

    async def _flush(self) -> None:
        """Append what the buffer holds (in a thread); on a store failure keep it and retry one flush
        period later."""
        frame = self.buffer.take()
        if frame is None:
            return
        try:
            added = await asyncio.to_thread(self.store.write, self.dataset, frame, source=self.source)
        except (StoreError, OSError) as exc:
            self.buffer.put_back(frame, self.clock())
            self._error(exc)
            log.warning("%s: store write failed (%s); %d rows kept for the next flush",
                        self.heartbeat.name, _one_line(exc), self.buffer.rows)
            return
        self.heartbeat.rows_written += added
        self.heartbeat.last_flush_at = _utc_iso(datetime.now(timezone.utc))

    def _error(self, exc: BaseException) -> None:
        self.heartbeat.last_error = _one_line(exc)
        self.heartbeat.last_error_at = _utc_iso(datetime.now(timezone.utc))

    def _beat(self) -> None:
        self.heartbeat.last_seen = _utc_iso(datetime.now(timezone.utc))
        self.heartbeat.events_lost = self.feed.lost
        self.heartbeat.reconnects = self.feed.reconnects
        self.heartbeat.rows_held = self.buffer.rows
        try:
            self.store.heartbeat(self.heartbeat.name, asdict(self.heartbeat))
        except (StoreError, OSError) as exc:  # a missed heartbeat must not stop the collecting
            log.warning("%s: heartbeat not written (%s)", self.heartbeat.name, _one_line(exc))


def new_heartbeat(name: str, dataset: Dataset, exchange: str, symbols: Sequence[str], settings: Settings) -> Heartbeat:
    """The heartbeat of a collector starting now."""
    now = _utc_iso(datetime.now(timezone.utc))
    return Heartbeat(
        name=name, dataset=dataset.name, exchange=exchange, symbols=list(symbols), pid=os.getpid(),
        started_at=now, last_seen=now, heartbeat_seconds=settings.heartbeat_seconds,
        flush_seconds=settings.flush_seconds,
    )  # fmt: skip


async def run_until_signalled(collector: Collector) -> Heartbeat:
    """Run `collector` until SIGTERM or SIGINT (Ctrl-C), then flush and return."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        return await collector.run(stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def _collect(
    store: Store, kind: str, exchange: str, symbols: Sequence[str], name: str, settings: Settings,
    interval_s: float, ws_url: str | None,
) -> Heartbeat:  # fmt: skip
    from lib.sources.live import DepthFeed, LiquidationFeed, live_client  # ccxt.pro takes seconds to import

    client = live_client(exchange, symbols, ws_url)
    feed: Feed = (
        LiquidationFeed(client, exchange, symbols) if kind == "liquidations"
        else DepthFeed(client, exchange, symbols, interval_s)
    )  # fmt: skip
    dataset = KINDS[kind]
    collector = Collector(store, dataset, feed, new_heartbeat(name, dataset, exchange, symbols, settings), settings,
                          source=f"{exchange}:ws" if kind == "liquidations" else exchange)
    try:
        return await run_until_signalled(collector)
    finally:
        try:
            await asyncio.wait_for(client.close(), CLOSE_TIMEOUT_SECONDS)
        except Exception as exc:  # the data is stored by now; a failed close only gets logged
            log.warning("%s: closing the exchange connections failed (%s)", name, _one_line(exc))


def collect(
    store: Store, kind: str, exchange: str, symbols: Sequence[str], name: str | None = None,
    settings: Settings = Settings(), interval_s: float = DEFAULT_DEPTH_INTERVAL_SECONDS, ws_url: str | None = None,
) -> Heartbeat:  # fmt: skip
    """Run one collector in this process until SIGTERM or Ctrl-C. `kind`: liquidations or depth;
    `name` (default "<kind>-<exchange>") names its heartbeat; `ws_url` is for dev and tests (see live_client)."""
    name = name or f"{kind}-{exchange}"
    if kind not in KINDS:
        raise ValueError(f"collectors exist for {', '.join(KINDS)}; not {kind}")
    if not COLLECTOR_NAME.fullmatch(name):
        raise ValueError(f"collector name {name!r}: use letters, digits, '.', '_' and '-'")
    bases = [symbol.upper() for symbol in symbols]
    return asyncio.run(_collect(store, kind, exchange, bases, name, settings, interval_s, ws_url))
