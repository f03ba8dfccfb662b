"""`python -m lib refresh --all`: every cached series of a fetchable source from its last row, imported
files and demo data skipped with a note, one line per failure, and one refresh at a time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from lib.cli import main
from lib.config import PROJECT_ROOT
from lib.refresh import cached_series, refresh_lock
from lib.sources.base import SourceError, SourceUnavailable
from lib.store import Store

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
NOW_HOUR = 12  # the fake sources have bars up to T0 + 12 h
QUICK_S = 5.0  # "at once": a blocked refresh returns well within this


def bars(exchange: str, symbol: str, hours: range) -> pl.DataFrame:
    """Hourly canonical bars at T0 + h for h in `hours`; price 100 + h."""
    prices = [100.0 + h for h in hours]
    return pl.DataFrame({
        "exchange": exchange, "symbol": symbol, "timeframe": "1h", "ts": [T0 + h * HOUR for h in hours],
        "open": prices, "high": prices, "low": prices, "close": prices,
    })  # fmt: skip


class FakeSource:
    """A source answered from memory: bars from `since` up to NOW_HOUR, or `error` raised. Records each fetch."""

    datasets = frozenset({"bars"})
    timeframes = ("1h",)

    def __init__(self, name: str, calls: list[tuple], error: SourceError | None = None) -> None:
        self.name, self.calls, self.error = name, calls, error

    def market_id(self, symbol: str, dataset: str) -> str:
        return f"{symbol}/USDT"

    def fetch(
        self, dataset: str, symbol: str, timeframe: str, since: datetime | None, until: datetime | None
    ) -> Iterator[pl.DataFrame]:
        self.calls.append((self.name, dataset, symbol, timeframe, since))
        if self.error:
            raise self.error
        yield bars(self.name, symbol, range((since - T0) // HOUR, NOW_HOUR + 1))


@pytest.fixture
def calls(monkeypatch) -> list[tuple]:
    """The fetches made; binance and bybit answer, okx is unreachable."""
    made: list[tuple] = []
    errors = {"okx": SourceUnavailable("okx GET https://www.okx.com/api/v5/market/candles: timed out (3 tries)")}
    monkeypatch.setattr("lib.refresh.get_source", lambda name: FakeSource(name, made, errors.get(name)))
    return made


@pytest.fixture
def cache(data_dir: Path) -> Store:
    """Series from binance (BTC to 9 h, ETH to 4 h), okx (BTC to 2 h), an imported file (SOL) and demo data."""
    store = Store(data_dir)
    store.write("bars", bars("binance", "BTC", range(10)), source="binance")
    store.write("bars", bars("binance", "ETH", range(5)), source="binance")
    store.write("bars", bars("okx", "BTC", range(3)), source="okx")
    store.write("bars", bars("binance", "SOL", range(5)), source="file:SOLUSDT-1h-2024-01.zip")
    store.write("bars", bars("demo", "BTC", range(5)), source="demo")
    return store


def refresh_all(data_dir: Path) -> int:
    return main(["--data-dir", str(data_dir), "--quiet", "refresh", "--all"])


def test_only_the_missing_tail_is_fetched_and_failures_get_a_line_each(
    cache: Store, calls: list[tuple], capsys
) -> None:
    assert refresh_all(cache.root) == 1
    assert sorted(calls) == [
        ("binance", "bars", "BTC", "1h", T0 + 9 * HOUR),  # resumes at the last stored bar (it may have been open)
        ("binance", "bars", "ETH", "1h", T0 + 4 * HOUR),
        ("okx", "bars", "BTC", "1h", T0 + 2 * HOUR),
    ]
    assert cache.last_ts("bars", "binance", "BTC", "1h") == T0 + NOW_HOUR * HOUR
    assert cache.last_ts("bars", "binance", "ETH", "1h") == T0 + NOW_HOUR * HOUR
    assert cache.last_ts("bars", "okx", "BTC", "1h") == T0 + 2 * HOUR
    out, err = capsys.readouterr()
    assert err.splitlines() == ["failed  bars okx BTC 1h: okx GET https://www.okx.com/api/v5/market/candles: "
                                "timed out (3 tries) (0 rows kept)"]  # fmt: skip
    assert "ok      bars binance BTC 1h: 3 new rows" in out
    assert "ok      bars binance ETH 1h: 8 new rows" in out
    assert "skipped bars binance SOL 1h: written by file:SOLUSDT-1h-2024-01.zip" in out
    assert "skipped bars demo BTC 1h: written by demo" in out


def test_all_up_to_date_exits_zero(data_dir: Path, calls: list[tuple]) -> None:
    Store(data_dir).write("bars", bars("bybit", "ETH", range(NOW_HOUR + 1)), source="bybit")
    assert refresh_all(data_dir) == 0
    assert calls == [("bybit", "bars", "ETH", "1h", T0 + NOW_HOUR * HOUR)]
    assert Store(data_dir).status()[0]["rows"] == NOW_HOUR + 1


def test_an_empty_cache_has_nothing_to_refresh(data_dir: Path, calls: list[tuple], capsys) -> None:
    assert refresh_all(data_dir) == 0
    assert "nothing to refresh" in capsys.readouterr().out
    assert calls == []


CACHED = [
    ({"source": "binance", "exchange": "binance"}, True),
    ({"source": "yfinance", "exchange": "yfinance"}, True),
    ({"source": "file:BTCUSDT-1h-2024-01.zip", "exchange": "binance"}, False),
    ({"source": "demo", "exchange": "demo"}, False),
    ({"source": "demo (synthetic)", "exchange": "demo"}, False),
    ({"source": "unknown", "exchange": "binance"}, False),
]


@pytest.mark.parametrize(("entry", "refreshed"), CACHED)
def test_which_cached_series_are_refreshed(entry: dict, refreshed: bool) -> None:
    jobs, skipped = cached_series([{"dataset": "bars", "symbol": "BTC", "timeframe": "1h", **entry}])
    assert (len(jobs), len(skipped)) == ((1, 0) if refreshed else (0, 1))


def test_a_second_refresh_exits_at_once_while_one_runs(cache: Store, calls: list[tuple], capsys) -> None:
    with refresh_lock(cache):
        started = time.monotonic()
        assert refresh_all(cache.root) == 1
        assert time.monotonic() - started < QUICK_S
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: another refresh is running") and f"held by pid {os.getpid()};" in error
    assert calls == []
    assert refresh_all(cache.root) == 1  # free again: runs (okx still fails)
    assert len(calls) == 3


HOLD_LOCK = """
import sys
from lib.refresh import refresh_lock
from lib.store import Store
with refresh_lock(Store(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_the_lock_holds_across_processes(cache: Store, calls: list[tuple], capsys) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(cache.root)], cwd=PROJECT_ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline() == "held\n"
        assert refresh_all(cache.root) == 1
    finally:
        holder.communicate("", timeout=30)
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: another refresh is running") and f"held by pid {holder.pid};" in error
    assert calls == []
