"""One collector process and two app processes sharing one store: no torn reads, no lost rows.

The writer is the real liquidation collector (lib.collect.Collector: buffer, flush in a thread,
Store.write) fed generated events in many small batches; its flushes land in two year partitions
per symbol. The readers read as the app does while it writes: one as lib.ui's `_rows` (store
version, then Store(root).read, a store allowed to quarantine), one as a hosted viewer
(Store(root, read_only=True), status, read). Each read must be a whole number of batches per symbol
(a partition file is old or new, never half written), a prefix of what was sent (no hole), no row
twice, never fewer rows than the read before nor than the manifest said just before.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import polars as pl
from polars.testing import assert_frame_equal

from lib.collect import Collector, Settings, new_heartbeat
from lib.schema import EVENT, LIQUIDATIONS, SYMBOL, TS, conform
from lib.store import Store

SYMBOLS = ("BTC", "ETH", "SOL")
FIRST = datetime(2024, 12, 31, 23, 59, 30, tzinfo=timezone.utc)  # batches cross into 2025: two partitions a symbol
BATCH = timedelta(seconds=1)  # batch b holds the events of second b after FIRST (check() counts in seconds)
BATCHES = 60
ROWS_PER_SYMBOL = 25  # per batch
SECONDS_BETWEEN_BATCHES = 0.08
SETTINGS = Settings(flush_seconds=0.05, heartbeat_seconds=1.0)  # flushes every collector tick (0.2 s)
WINDOW = (FIRST - timedelta(days=1), FIRST + timedelta(days=1))
JOIN_TIMEOUT_S = 60.0


def batch_frame(batch: int) -> pl.DataFrame:
    """ROWS_PER_SYMBOL liquidation events per symbol, all within second `batch`, each row unique."""
    rows = [
        ("bybit", symbol, EVENT, FIRST + batch * BATCH + timedelta(milliseconds=i), ("long", "short")[i % 2],
         100.0 + batch, 1.0 + i, (100.0 + batch) * (1.0 + i), False)
        for symbol in SYMBOLS for i in range(ROWS_PER_SYMBOL)
    ]  # fmt: skip
    return conform(pl.DataFrame(rows, schema=list(LIQUIDATIONS.schema), orient="row"), LIQUIDATIONS)


class BatchFeed:
    """Yields BATCHES frames a little apart, then sets `stop` (the collector then flushes and returns)."""

    lost = reconnects = 0

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop

    async def frames(self) -> AsyncIterator[pl.DataFrame]:
        for batch in range(BATCHES):
            yield batch_frame(batch)
            await asyncio.sleep(SECONDS_BETWEEN_BATCHES)
        self.stop.set()
        await asyncio.Event().wait()


async def _collect(root: str) -> int:
    stop = asyncio.Event()
    heartbeat = new_heartbeat("writer", LIQUIDATIONS, "bybit", SYMBOLS, SETTINGS)
    collector = Collector(Store(root), LIQUIDATIONS, BatchFeed(stop), heartbeat, SETTINGS, source="bybit:ws")
    return (await collector.run(stop)).rows_written


def run_writer(root: str, results: Any) -> None:
    results.put(("writer", asyncio.run(_collect(root))))


def check(frame: pl.DataFrame) -> list[str]:
    """What is wrong with one read: partial batches, holes, duplicates (empty when consistent)."""
    batches = frame.group_by(SYMBOL, (pl.col(TS) - FIRST).dt.total_seconds().alias("batch")).len()
    problems = [f"{s} batch {b}: {n} of {ROWS_PER_SYMBOL} rows" for s, b, n in batches.iter_rows()
                if n != ROWS_PER_SYMBOL]
    for symbol, seen in batches.group_by(SYMBOL).agg(pl.col("batch").sort()).iter_rows():
        if seen != list(range(len(seen))):
            problems.append(f"{symbol}: batches {seen} are not a prefix of what was sent")
    if frame.is_duplicated().any():
        problems.append(f"{frame.is_duplicated().sum()} duplicated rows")
    return problems


def read_as_app(root: str, hosted: bool) -> tuple[int, pl.DataFrame]:
    """(rows the manifest listed, then the rows read), the way lib.ui reads: hosted viewers read-only."""
    store = Store(root, read_only=True) if hosted else Store(root)
    listed = sum(entry["rows"] for entry in store.status() if entry["dataset"] == LIQUIDATIONS.name)
    if not hosted:
        store.version()  # lib.ui keys its cache on it
    return listed, store.read(LIQUIDATIONS, SYMBOLS, *WINDOW)


def run_reader(root: str, hosted: bool, ready: Any, writer_done: Any, results: Any) -> None:
    """Read until the writer is done (and once more), checking every read; report reads and problems."""
    ready.set()
    reads, problems, before = 0, [], {symbol: 0 for symbol in SYMBOLS}
    while True:
        last = writer_done.is_set()
        try:
            listed, frame = read_as_app(root, hosted)
        except Exception as exc:  # a torn file shows up as a read error: that is a failure to report
            problems.append(f"read failed: {type(exc).__name__}: {exc}")
            continue
        reads += 1
        problems += check(frame)
        if frame.height < listed:
            problems.append(f"read {frame.height} rows after the manifest listed {listed}")
        counts = dict(frame.group_by(SYMBOL).len().iter_rows())
        problems += [f"{s}: {counts.get(s, 0)} rows after {n}" for s, n in before.items() if counts.get(s, 0) < n]
        before = {symbol: counts.get(symbol, 0) for symbol in SYMBOLS}
        if last:
            break
    results.put(("hosted" if hosted else "local", reads, problems[:10]))


def test_a_collector_and_two_app_processes_share_the_store_without_torn_reads_or_lost_rows(data_dir: Path) -> None:
    context = multiprocessing.get_context("spawn")  # polars' threads do not survive fork
    results, writer_done = context.Queue(), context.Event()
    ready = [context.Event() for _ in range(2)]
    readers = [context.Process(target=run_reader, args=(str(data_dir), hosted, flag, writer_done, results))
               for hosted, flag in zip((False, True), ready)]  # fmt: skip
    writer = context.Process(target=run_writer, args=(str(data_dir), results))
    try:
        for reader in readers:
            reader.start()
        assert all(flag.wait(JOIN_TIMEOUT_S) for flag in ready)
        writer.start()
        writer.join(JOIN_TIMEOUT_S)
        writer_done.set()
        for reader in readers:
            reader.join(JOIN_TIMEOUT_S)
        reports = {report[0]: report[1:] for report in (results.get(timeout=1) for _ in range(3))}
    finally:
        for process in (writer, *readers):
            if process.is_alive():
                process.kill()
    assert [p.exitcode for p in (writer, *readers)] == [0, 0, 0]
    (written,), (local_reads, local_problems), (hosted_reads, hosted_problems) = (
        reports["writer"], reports["local"], reports["hosted"])
    assert local_problems == [] and hosted_problems == []
    assert local_reads >= 10 and hosted_reads >= 10  # they read while it wrote
    expected = pl.concat([batch_frame(b) for b in range(BATCHES)]).sort(SYMBOL, TS, "side")
    stored = Store(data_dir).scan(LIQUIDATIONS).collect().sort(SYMBOL, TS, "side")
    assert written == expected.height == BATCHES * len(SYMBOLS) * ROWS_PER_SYMBOL
    assert_frame_equal(stored, expected)  # every row once, none lost
    assert Store(data_dir).quarantined() == []
