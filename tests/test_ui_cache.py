"""The pages' row cache: shared across sessions (no copy per rerun) and invalidated per series."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from lib import ui
from lib.store import Store
from tests.test_store import START, hourly_bars

LO, HI = START, START + timedelta(days=30)


@pytest.fixture
def active(data_dir: Path) -> ui.ActiveStore:
    store = Store(data_dir)
    store.write("bars", hourly_bars(48, symbol="BTC"), source="test")
    store.write("bars", hourly_bars(48, symbol="ETH"), source="test")
    ui._rows.clear()
    return ui.ActiveStore(store, is_demo=False)


def test_reads_are_shared_not_copied(active: ui.ActiveStore) -> None:
    first = ui.rows(active, "bars", ("BTC",), LO, HI, "binance", "1h")
    assert ui.rows(active, "bars", ("BTC",), LO, HI, "binance", "1h") is first
    assert first.height == 48


def test_a_write_invalidates_only_the_reads_of_its_series(active: ui.ActiveStore) -> None:
    btc = ui.rows(active, "bars", ("BTC",), LO, HI, "binance", "1h")
    eth = ui.rows(active, "bars", ("ETH",), LO, HI, "binance", "1h")
    both = ui.rows(active, "bars", ("BTC", "ETH"), LO, HI, "binance", "1h")
    later = START + timedelta(hours=48)
    active.store.write("bars", hourly_bars(24, start=later, symbol="ETH"), source="test")

    assert ui.rows(active, "bars", ("BTC",), LO, HI, "binance", "1h") is btc  # untouched series: same frame
    assert ui.rows(active, "bars", ("ETH",), LO, HI, "binance", "1h").height == eth.height + 24
    assert ui.rows(active, "bars", ("BTC", "ETH"), LO, HI, "binance", "1h").height == both.height + 24


def test_stamp_ignores_other_datasets_exchanges_and_timeframes(active: ui.ActiveStore) -> None:
    before = ui._series_stamp(active, "bars", ("BTC",), "binance", "1h")
    other = hourly_bars(24, symbol="BTC").with_columns(exchange=pl.lit("okx"))
    active.store.write("bars", other, source="test")
    assert ui._series_stamp(active, "bars", ("BTC",), "binance", "1h") == before
    assert ui._series_stamp(active, "bars", ("BTC",), None, "1h") != before


def test_page_results_are_computed_once_per_inputs_and_options() -> None:
    ui._computed.clear()
    calls = []

    def build(frame: pl.DataFrame, option: int) -> list[int]:
        calls.append(option)
        return [frame.height, option]

    btc = hourly_bars(48, symbol="BTC")
    first = ui.computed(build, btc, 1)
    assert ui.computed(build, btc.clone(), 1) is first  # equal rows: the shared result, not a new one
    assert ui.computed(build, btc, 2) == [48, 2]  # another option
    assert ui.computed(build, btc.with_columns(close=pl.col("close") * 2), 1) == [48, 1]  # same shape, other values
    assert ui.computed(build, btc.head(47), 1) == [47, 1]
    assert calls == [1, 2, 1, 1]


def test_fingerprint_tells_frames_apart_by_content() -> None:
    btc, eth = hourly_bars(48, symbol="BTC"), hourly_bars(48, symbol="ETH")
    assert ui.fingerprint(btc) == ui.fingerprint(btc.clone())
    assert ui.fingerprint(btc) != ui.fingerprint(eth)
    assert ui.fingerprint(btc.cast({"close": pl.Float32})) != ui.fingerprint(btc)
    assert ui.fingerprint(btc.clear()) == ("frame", 0, ui.fingerprint(btc)[2], 0)
    assert ui.fingerprint("BTC") == "BTC"


def test_a_frames_fingerprint_is_hashed_once_while_the_frame_lives(monkeypatch: pytest.MonkeyPatch) -> None:
    hashed = []
    real = pl.DataFrame.hash_rows
    monkeypatch.setattr(pl.DataFrame, "hash_rows",
                        lambda frame, *a, **k: hashed.append(frame.height) or real(frame, *a, **k))
    btc = hourly_bars(48, symbol="BTC")
    first = ui.fingerprint(btc)
    assert ui.fingerprint(btc) == first and hashed == [48]  # the cached read's frame, rerun after rerun
    assert ui.fingerprint(btc.clone()) == first and hashed == [48, 48]  # another frame is hashed afresh
    del btc
    eth = hourly_bars(2, symbol="ETH")
    ui.fingerprint(eth)  # a new frame prunes the fingerprints of frames gone
    assert all(frame() is not None for frame, _ in ui._FINGERPRINTS.values())


def test_a_pages_badges_are_made_once_per_store_version_view_and_rows(active: ui.ActiveStore) -> None:
    from datetime import date

    from lib.viewstate import View

    ui._badges.clear()
    made = []

    def make(badge, names: tuple[str, ...], frame: pl.DataFrame) -> dict[str, str]:
        made.append(names)
        return {name: badge(("bars", frame)) for name in names}

    view = View(("BTC",), "test", "1h", date(2024, 1, 1), date(2024, 1, 2), "utc")
    btc = active.store.read("bars", ("BTC",), LO, HI)
    first = ui.badges(active, view, make, ("a",), btc)
    assert ui.badges(active, view, make, ("a",), btc) is first and len(made) == 1
    active.store.write("bars", hourly_bars(49, symbol="BTC"), source="test")  # a new store version
    assert ui.badges(active, view, make, ("a",), btc) == first and len(made) == 2
    assert first["a"].startswith("Data: ")


def test_fingerprints_from_many_sessions_at_once() -> None:
    from concurrent.futures import ThreadPoolExecutor

    frames = [hourly_bars(24 + i % 5, symbol="BTC") for i in range(8)]

    def fingerprints(_: int) -> list[object]:  # new frames die and are pruned while other threads insert
        return [ui.fingerprint(frame.clone()) for frame in frames for _ in range(20)]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(fingerprints, range(8)))
    assert all(result == results[0] for result in results)
