"""The store on object storage: the same contract as on disk, against a local S3 server (moto) on loopback."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import boto3
import polars as pl
import pytest
from moto.server import ThreadedMotoServer
from polars.testing import assert_frame_equal

from lib.cli import main
from lib.config import load_settings, storage_options
from lib.objectstore import LOCK
from lib.schema import BARS
from lib.refresh import RefreshRunning, refresh_lock
from lib.store import Store, StoreError
from tests.test_store import START, hourly_bars, read_all

BUCKET = "cascade-test"
REGION = "us-east-1"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port, with one bucket."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client(
        "s3", endpoint_url=url, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    ).create_bucket(Bucket=BUCKET)
    yield url
    server.stop()


@pytest.fixture
def root(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh prefix in the bucket for one test, reached through the standard AWS variables."""
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    return f"s3://{BUCKET}/{uuid.uuid4().hex}"


def constant_bars(close: float, n: int = 24) -> pl.DataFrame:
    """`n` hourly bars whose close is `close` throughout: one version of a partition."""
    return hourly_bars(n, start=START + timedelta(hours=2)).with_columns(close=pl.lit(close))


def test_environment_maps_to_polars_storage_options() -> None:
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ACCESS_KEY_ID": "k", "AWS_REGION": "eu-west-1"}
    assert storage_options(env) == {
        "aws_endpoint_url": "http://127.0.0.1:9000",
        "aws_access_key_id": "k",
        "aws_region": "eu-west-1",
        "aws_allow_http": "true",
    }
    assert storage_options({"AWS_ENDPOINT_URL": "https://s3.example.com"}) == {
        "aws_endpoint_url": "https://s3.example.com"
    }


def test_data_dir_url_from_environment_stays_a_url() -> None:
    settings = load_settings(env={"CASCADE_DATA_DIR": "s3://bucket/cache/"})
    assert (settings.data_dir, settings.demo_dir) == ("s3://bucket/cache", "s3://bucket/cache/_demo")


def test_round_trip_through_polars_cloud_scan_partitions_by_year(root: str) -> None:
    store = Store(root)
    bars = hourly_bars(5)
    assert store.write(BARS, bars, source="test") == 5
    lazy = store.scan(BARS)
    assert isinstance(lazy, pl.LazyFrame)
    assert f"{root}/dataset=bars/" in lazy.explain()  # polars reads the objects itself
    got = lazy.collect().sort("symbol", "ts")
    assert_frame_equal(got.select(bars.columns), bars.with_columns(pl.col("ts").dt.cast_time_unit("us")))
    years = [path.split("/")[-2] for path in store.files.glob("dataset=bars/**/data.parquet")]
    assert years == ["year=2024", "year=2025"]
    assert not store.files.exists(LOCK)  # released


def test_merge_keeps_stored_rows_and_newest_fetch_wins(root: str) -> None:
    store = Store(root)
    store.write(BARS, hourly_bars(10), source="test")
    assert store.write(BARS, hourly_bars(5, start=START + timedelta(hours=8), close=500.0), source="test") == 3
    store.write(BARS, hourly_bars(1), source="test")  # a short fetch drops nothing
    got = read_all(store)
    assert got.height == 13
    assert got.filter(pl.col("ts") == START + timedelta(hours=8))["close"].item() == 500.0
    assert got.filter(pl.col("ts") == START)["close"].item() == 100.0


def test_manifest_status_last_ts_and_version(root: str) -> None:
    store = Store(root)
    assert (store.status(), store.version()) == ([], "empty")
    bars = hourly_bars(48)
    with_gap = bars.filter((pl.col("ts") < START + timedelta(hours=10)) | (pl.col("ts") >= START + timedelta(hours=43)))
    store.write(BARS, with_gap, source="binance", market_id="BTCUSDT")
    first = store.version()
    (entry,) = store.status()
    assert (entry["rows"], entry["source"], entry["market_id"], entry["gap_count"]) == (15, "binance", "BTCUSDT", 1)
    assert entry["gaps"] == [{"start": "2025-01-01T08:00:00Z", "end": "2025-01-02T17:00:00Z", "missing": 33}]
    assert store.last_ts("bars", "binance", "BTC", "1h") == START + timedelta(hours=47)
    store.write(BARS, bars, source="binance")
    assert store.version() != first
    assert store.status()[0]["gap_count"] == 0


def test_heartbeats_round_trip(root: str) -> None:
    store = Store(root)
    store.heartbeat("binance-liq", {"state": "live", "rows": 3})
    assert store.heartbeats() == {"binance-liq": {"rows": 3, "state": "live"}}


def test_two_writers_under_the_lock_lose_no_rows(root: str) -> None:
    def write_days(close: float) -> None:
        store = Store(root)
        for day in range(3):
            store.write(BARS, hourly_bars(24, start=START + timedelta(days=day), close=close), source="t")

    writers = [threading.Thread(target=write_days, args=(close,)) for close in (1.0, 2.0)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
    store = Store(root)
    got = read_all(store)
    assert got.height == 3 * 24  # both wrote the same keys: nothing lost, nothing doubled
    assert store.status()[0]["rows"] == got.height


def test_second_locker_times_out_with_a_clear_error(root: str) -> None:
    with Store(root).lock():
        started = time.monotonic()
        with pytest.raises(StoreError, match=r"the lock on s3://.* is held by .*gave up after 0 s"):
            with Store(root).lock(timeout_s=0.3):
                pass
        assert time.monotonic() - started < 5


def test_expired_lock_of_a_crashed_writer_is_taken_over(root: str) -> None:
    store = Store(root)
    stale = json.dumps({"owner": "crashed-host:1234", "expires": time.time() - 1}).encode()
    store.files.put(LOCK, lambda handle: handle.write(stale))
    assert store.write(BARS, hourly_bars(3), source="test") == 3
    assert not store.files.exists(LOCK)


def test_live_lock_is_not_taken_over(root: str) -> None:
    store = Store(root)
    live = json.dumps({"owner": "busy-host:1", "expires": time.time() + 60}).encode()
    store.files.put(LOCK, lambda handle: handle.write(live))
    with pytest.raises(StoreError, match="held by busy-host:1"):
        with store.lock(timeout_s=0.2):
            pass
    assert json.loads(store.files.read_bytes(LOCK))["owner"] == "busy-host:1"


def test_reader_during_rewrites_sees_a_whole_old_or_new_partition(root: str) -> None:
    store = Store(root)
    store.write(BARS, constant_bars(1.0), source="test")
    done = threading.Event()

    def rewrite() -> None:
        for i in range(6):
            store.write(BARS, constant_bars(float(2 + i)), source="test")
        done.set()

    writer = threading.Thread(target=rewrite)
    writer.start()
    seen = []
    while not done.is_set():
        got = Store(root, read_only=True).scan(BARS).collect()
        assert got.height == 24
        seen.append(got["close"].unique().to_list())
    writer.join()
    assert all(len(closes) == 1 for closes in seen)  # never a mix of two versions
    assert len({closes[0] for closes in seen}) > 1  # and the reader did overlap the rewrites


def test_corrupt_object_is_quarantined_with_a_reason(root: str) -> None:
    store = Store(root)
    store.write(BARS, pl.concat([hourly_bars(3, symbol="BTC"), hourly_bars(3, symbol="ETH")]), source="binance")
    (eth_2024,) = store.files.glob("dataset=bars/*/symbol=ETH/*/year=2024/data.parquet")
    store.files.put(eth_2024, lambda handle: handle.write(b"this is not parquet"))
    (moved,) = store.verify()
    assert moved.startswith(f"{root}/quarantine/") and moved.endswith(eth_2024)
    assert store.quarantined() == [moved]
    rel = moved.removeprefix(f"{root}/")
    assert store.files.read_bytes(rel) == b"this is not parquet"  # nothing lost: kept for inspection
    assert b"unreadable Parquet" in store.files.read_bytes(f"{rel}.reason.txt")
    assert read_all(store).group_by("symbol").len().sort("symbol")["len"].to_list() == [3, 1]
    assert [e["rows"] for e in store.status()] == [3, 1]


def test_read_only_store_reads_but_refuses_writes(root: str) -> None:
    Store(root).write(BARS, hourly_bars(2), source="test")
    viewer = Store(root, read_only=True)
    assert read_all(viewer).height == 2
    with pytest.raises(StoreError, match="read-only"):
        viewer.write(BARS, hourly_bars(1), source="test")
    with pytest.raises(StoreError, match="read-only"):
        viewer.heartbeat("x", {})


def test_read_retries_when_a_partition_is_replaced_mid_read(root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """polars' cloud reads are several range requests (pola-rs/polars#27362): one failed decode is retried."""
    store = Store(root)
    store.write(BARS, hourly_bars(3), source="test")
    real_collect = pl.LazyFrame.collect
    failures = iter([pl.exceptions.ComputeError("parquet: File out of specification: Invalid thrift: bad data")])

    def collect_after_a_torn_read(self: pl.LazyFrame, *args: object, **kwargs: object) -> pl.DataFrame:
        if (failure := next(failures, None)) is not None:
            raise failure
        return real_collect(self, *args, **kwargs)

    monkeypatch.setattr(pl.LazyFrame, "collect", collect_after_a_torn_read)
    monkeypatch.setattr("lib.store.READ_RETRY_WAIT_S", 0.0)
    assert store.read(BARS, ("BTC",), START, START + timedelta(days=1)).height == 3


def test_one_refresh_at_a_time_on_object_storage(root: str) -> None:
    store = Store(root)
    with refresh_lock(store):
        with pytest.raises(RefreshRunning, match="another refresh is running"):
            with refresh_lock(Store(root)):
                pass
        store.write(BARS, hourly_bars(2), source="test")  # the write lock is another lock: no deadlock
    with refresh_lock(store):  # released
        pass


def test_download_into_object_storage_asks_for_a_local_archive_folder(root: str, capsys: pytest.CaptureFixture) -> None:
    argv = ["--data-dir", root, "download", "binance", "--kind", "klines", "--symbol", "BTC",
            "--start", "2026-01-01", "--end", "2026-01-02"]
    assert main(argv) == 1
    assert "give --out DIR" in capsys.readouterr().err
