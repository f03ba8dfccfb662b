"""The Parquet store: round trip, merge, dedupe, locking, crash safety, quarantine."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from lib.schema import BARS, FUNDING, SchemaError
from lib.store import Store, StoreError

START = datetime(2024, 12, 31, 22, tzinfo=timezone.utc)


def hourly_bars(n: int, start: datetime = START, symbol: str = "BTC", close: float = 100.0) -> pl.DataFrame:
    """`n` hourly bars from `start`, closes close, close+1, ... (crosses a year boundary by default)."""
    return pl.DataFrame(
        {
            "exchange": "binance",
            "symbol": symbol,
            "timeframe": "1h",
            "ts": [start + timedelta(hours=i) for i in range(n)],
            "open": [close + i for i in range(n)],
            "high": [close + i + 1 for i in range(n)],
            "low": [close + i - 1 for i in range(n)],
            "close": [close + i for i in range(n)],
            "volume": [1.0] * n,
        }
    )


def read_all(store: Store) -> pl.DataFrame:
    return store.scan(BARS).collect().sort("symbol", "ts")


def test_round_trip_keeps_every_value_and_partitions_by_year(data_dir: Path) -> None:
    store = Store(data_dir)
    bars = hourly_bars(5)
    assert store.write(BARS, bars, source="test") == 5
    got = read_all(store)
    assert_frame_equal(got.select(bars.columns), bars.with_columns(pl.col("ts").dt.cast_time_unit("us")))
    years = sorted(p.parent.name for p in data_dir.rglob("data.parquet"))
    assert years == ["year=2024", "year=2025"]


def test_incremental_merge_adds_only_new_rows_and_newest_fetch_wins(data_dir: Path) -> None:
    store = Store(data_dir)
    store.write(BARS, hourly_bars(10), source="test")
    update = hourly_bars(5, start=START + timedelta(hours=8), close=500.0)  # overlaps 2 bars, adds 3
    assert store.write(BARS, update, source="test") == 3
    got = read_all(store)
    assert got.height == 13
    assert got["ts"].is_unique().all()
    assert got.filter(pl.col("ts") == START + timedelta(hours=8))["close"].item() == 500.0
    assert got.filter(pl.col("ts") == START)["close"].item() == 100.0


def test_short_fetch_never_drops_stored_rows(data_dir: Path) -> None:
    store = Store(data_dir)
    store.write(BARS, hourly_bars(10), source="test")
    store.write(BARS, hourly_bars(1), source="test")
    assert read_all(store).height == 10


def test_duplicates_in_one_write_are_deduped(data_dir: Path) -> None:
    store = Store(data_dir)
    bars = hourly_bars(3)
    assert store.write(BARS, pl.concat([bars, bars]), source="test") == 3


def test_scan_filters_by_partition_and_returns_lazy(data_dir: Path) -> None:
    store = Store(data_dir)
    store.write(BARS, pl.concat([hourly_bars(4, symbol="BTC"), hourly_bars(4, symbol="ETH")]), source="test")
    lazy = store.scan(BARS, symbol="ETH")
    assert isinstance(lazy, pl.LazyFrame)
    assert lazy.collect()["symbol"].unique().to_list() == ["ETH"]


def test_scan_of_empty_store_has_the_schema(data_dir: Path) -> None:
    got = Store(data_dir).scan(FUNDING).collect()
    assert got.is_empty()
    assert got.schema == pl.Schema(FUNDING.schema)


def test_manifest_records_range_rows_source_and_gaps(data_dir: Path) -> None:
    store = Store(data_dir)
    bars = hourly_bars(48)
    with_gap = bars.filter((pl.col("ts") < START + timedelta(hours=10)) | (pl.col("ts") >= START + timedelta(hours=43)))
    store.write(BARS, with_gap, source="binance", market_id="BTCUSDT")
    (entry,) = store.status()
    assert entry["rows"] == 15
    assert entry["first_ts"] == "2024-12-31T22:00:00Z"
    assert entry["last_ts"] == "2025-01-02T21:00:00Z"
    assert entry["market_id"] == "BTCUSDT"
    assert entry["source"] == "binance"
    assert entry["gap_count"] == 1
    assert entry["gaps"] == [{"start": "2025-01-01T08:00:00Z", "end": "2025-01-02T17:00:00Z", "missing": 33}]
    assert store.last_ts("bars", "binance", "BTC", "1h") == START + timedelta(hours=47)


def test_manifest_records_which_source_last_wrote_which_span(data_dir: Path) -> None:
    """A REST refresh over 4 days, an archive file over the first 2 (it wins there), the REST
    again one day later: each span says whose rows it holds, the latest last."""
    store = Store(data_dir)
    store.write(BARS, hourly_bars(96), source="rest")
    store.write(BARS, hourly_bars(48), source="archive")
    store.write(BARS, hourly_bars(24, START + timedelta(hours=96)), source="rest")
    store.write(BARS, hourly_bars(24, START + timedelta(hours=120)), source="rest")  # a refresh extends its span
    (entry,) = store.status()
    assert entry["source"] == "rest"
    assert entry["spans"] == [
        {"source": "rest", "first_ts": "2024-12-31T22:00:00Z", "last_ts": "2025-01-04T21:00:00Z"},
        {"source": "archive", "first_ts": "2024-12-31T22:00:00Z", "last_ts": "2025-01-02T21:00:00Z"},
        {"source": "rest", "first_ts": "2025-01-04T22:00:00Z", "last_ts": "2025-01-06T21:00:00Z"},
    ]


OFF_GRID = timedelta(minutes=28, seconds=14)  # Binance's February 2018 bars sit at :28:14


@pytest.mark.parametrize("archive_last", [True, False])
def test_off_grid_bars_give_way_to_an_on_grid_cut_of_the_same_hours(data_dir: Path, archive_last: bool) -> None:
    """An archive with a run of 5 bars at :28:14 past the hour between on-grid ones, and the API's
    re-cut of the same hours on the hour: whichever is written last, each hour is counted once."""
    store = Store(data_dir)
    archive = pl.concat([hourly_bars(3), hourly_bars(5, START + timedelta(hours=3) + OFF_GRID),
                         hourly_bars(3, START + timedelta(hours=9))])
    api = hourly_bars(12, close=500.0)
    for frame in (api, archive) if archive_last else (archive, api):
        store.write(BARS, frame, source="test")
    got = read_all(store)
    assert got["ts"].to_list() == api["ts"].to_list()
    from_archive = [100.0, 101.0, 102.0]  # its on-grid bars, where it was written last
    expected = from_archive + api["close"][3:9].to_list() + from_archive if archive_last else api["close"].to_list()
    assert got["close"].to_list() == expected


def test_off_grid_bars_alone_in_their_hours_are_kept(data_dir: Path) -> None:
    """The archive alone: its off-grid run is the only record of those hours, and the on-grid bar
    right after it (which its last bar overlaps) does not displace it."""
    store = Store(data_dir)
    archive = pl.concat([hourly_bars(3), hourly_bars(5, START + timedelta(hours=3) + OFF_GRID),
                         hourly_bars(3, START + timedelta(hours=9))])
    store.write(BARS, archive, source="test")
    assert read_all(store).height == 11


def test_bad_frame_is_refused_before_anything_is_written(data_dir: Path) -> None:
    store = Store(data_dir)
    with pytest.raises(SchemaError, match="missing column"):
        store.write(BARS, hourly_bars(3).drop("close"), source="test")
    assert not list(data_dir.rglob("*.parquet"))


def test_corrupt_file_is_quarantined_and_the_rest_still_reads(data_dir: Path) -> None:
    store = Store(data_dir)
    store.write(BARS, pl.concat([hourly_bars(3, symbol="BTC"), hourly_bars(3, symbol="ETH")]), source="test")
    (eth_2024,) = data_dir.glob("dataset=bars/*/symbol=ETH/*/year=2024/data.parquet")
    eth_2024.write_bytes(b"this is not parquet")
    got = read_all(store)
    assert got.filter(pl.col("symbol") == "BTC").height == 3
    assert got.filter(pl.col("symbol") == "ETH").height == 1  # the 2025 file is intact
    (moved,) = store.quarantined()
    assert moved.read_bytes() == b"this is not parquet"  # nothing lost: kept for inspection
    assert "unreadable Parquet" in moved.with_name(moved.name + ".reason.txt").read_text()


def test_verify_quarantines_damaged_files_and_recounts_their_series(data_dir: Path) -> None:
    store = Store(data_dir)
    store.write(BARS, hourly_bars(4), source="binance")
    (file_2024,) = data_dir.glob("dataset=bars/**/year=2024/data.parquet")
    file_2024.write_bytes(b"PAR1 broken")
    (moved,) = store.verify()
    assert moved.read_bytes() == b"PAR1 broken"
    (entry,) = store.status()
    assert (entry["rows"], entry["first_ts"], entry["source"]) == (2, "2025-01-01T00:00:00Z", "binance")
    assert store.verify() == []


def test_truncated_file_is_quarantined_on_write_and_replaced(data_dir: Path) -> None:
    store = Store(data_dir)
    store.write(BARS, hourly_bars(2), source="test")
    (file_2024,) = data_dir.glob("dataset=bars/**/year=2024/data.parquet")
    file_2024.write_bytes(file_2024.read_bytes()[:-20])
    store.write(BARS, hourly_bars(2), source="test")
    assert read_all(store).height == 2
    assert len(store.quarantined()) == 1


def test_damaged_manifest_is_rebuilt_from_files(data_dir: Path) -> None:
    store = Store(data_dir)
    store.write(BARS, hourly_bars(6), source="test")
    (data_dir / "manifest.json").write_text("{not json")
    (entry,) = store.status()
    assert entry["rows"] == 6
    assert any(p.name == "manifest.json" for p in store.quarantined())


def test_read_only_store_refuses_writes_with_a_clear_message(data_dir: Path) -> None:
    with pytest.raises(StoreError, match="read-only"):
        Store(data_dir, read_only=True).write(BARS, hourly_bars(1), source="test")


def _write_many(root: str, symbol: str, first_close: float, rounds: int) -> None:
    store = Store(root)
    for i in range(rounds):
        store.write(BARS, hourly_bars(24, start=START + timedelta(days=i), symbol=symbol, close=first_close), source="t")


def test_two_writer_processes_do_not_interleave(data_dir: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_write_many, args=(str(data_dir), s, c, 8)) for s, c in (("BTC", 1.0), ("BTC", 2.0))]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
        assert w.exitcode == 0
    store = Store(data_dir)
    got = read_all(store)
    assert got.height == 8 * 24  # both wrote the same keys: nothing lost, nothing doubled
    (entry,) = store.status()
    assert entry["rows"] == got.height
    assert not list(data_dir.rglob("*.tmp"))


def _write_forever(root: str, ready: multiprocessing.Event) -> None:
    store = Store(root)
    big = hourly_bars(200_000, start=datetime(2001, 1, 1, tzinfo=timezone.utc), close=7.0)
    ready.set()
    while True:
        store.write(BARS, big, source="killed")


def test_writer_killed_mid_write_leaves_previous_state_readable(data_dir: Path) -> None:
    store = Store(data_dir)
    store.write(BARS, hourly_bars(24), source="test")
    before = read_all(store)
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    writer = ctx.Process(target=_write_forever, args=(str(data_dir), ready))
    writer.start()
    assert ready.wait(60)
    deadline = time.monotonic() + 30
    while not (in_write := bool(list(data_dir.rglob("*.tmp")))) and time.monotonic() < deadline:
        time.sleep(0.001)  # wait until it is inside a write
    os.kill(writer.pid, signal.SIGKILL)
    assert in_write
    writer.join(10)
    after = Store(data_dir)
    got = after.scan(BARS).collect()
    assert_frame_equal(got.filter(pl.col("ts") >= START).sort("ts"), before)
    # the lock died with the writer, so the next write goes through and cleans the temporary file
    after.write(BARS, hourly_bars(1), source="test")
    assert not list(data_dir.rglob("*.tmp"))
    json.loads((data_dir / "manifest.json").read_text())


def test_real_archive_and_api_bars_count_each_february_2018_hour_once(data_dir: Path, shared_data: Path) -> None:
    """`make sample-data`'s order: Binance's API bars, then its archive with 43 bars at :28:14
    (9-11 Feb 2018) over the same hours. The API's on-grid cut stays, and no hour is counted twice."""
    from lib.sources.files import read_import

    store = Store(data_dir)
    feb = (datetime(2018, 2, 9, tzinfo=timezone.utc), datetime(2018, 2, 11, 12, tzinfo=timezone.utc))
    for name in ("binance_spot_BTCUSDT_1h_ohlcv.parquet", "binance_spot_BTCUSDT_1h.parquet"):
        imported = read_import(shared_data / "ohlcv" / name)
        store.write(imported.dataset, imported.frame.filter(pl.col("ts").dt.year() == 2018), source=name)
    got = read_all(store).filter(pl.col("timeframe") == "1h")
    assert got.filter(pl.col("ts").dt.minute() != 0).is_empty()
    assert got["ts"].is_unique().all()
    assert got.filter(pl.col("ts").is_between(*feb)).height == 51  # 10:00 on the 9th to 12:00 on the 11th
