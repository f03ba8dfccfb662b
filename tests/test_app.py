"""AppTest: the app starts on the demo market and on a cache built from ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lib.cli import main
from lib.config import PROJECT_ROOT
from lib.ui import DEMO_BANNER

APP = str(PROJECT_ROOT / "app.py")
TIMEOUT = 120


@pytest.fixture(scope="module")
def real_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip(f"real market data not found at {SHARED_DATA}")
    root = tmp_path_factory.mktemp("real")
    files = [
        *sorted((SHARED_DATA / "ohlcv").glob("binance_spot_*USDT_1h.parquet")),
        SHARED_DATA / "liquidations" / "coinglass_liquidations_agg_1d.parquet",
        SHARED_DATA / "derivatives" / "binance_usdm_BTCUSDT_funding_rate.parquet",
    ]
    assert main(["--data-dir", str(root), "--quiet", "import", *map(str, files)]) == 0
    return root


def run_app(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> AppTest:
    monkeypatch.setenv("CASCADE_DATA_DIR", str(data_dir))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def banners(at: AppTest) -> list[str]:
    return [w.value for w in at.warning]


def test_empty_cache_shows_the_demo_market_with_its_banner(monkeypatch, data_dir: Path) -> None:
    at = run_app(monkeypatch, data_dir)
    assert DEMO_BANNER in banners(at)
    table = at.dataframe[0].value
    assert set(table["exchange"]) == {"demo"}
    assert {"bars", "liquidations", "funding", "open_interest", "depth"} <= set(table["dataset"])


def test_real_cache_has_no_demo_banner_and_lists_every_series(monkeypatch, real_cache: Path) -> None:
    at = run_app(monkeypatch, real_cache)
    assert DEMO_BANNER not in banners(at)
    table = at.dataframe[0].value
    btc = table[(table["dataset"] == "bars") & (table["symbol"] == "BTC")].iloc[0]
    assert btc["rows"] == 70_008
    assert btc["gaps"] == 27
    assert btc["first"] == "2018-01-01 00:00"
    assert "liquidation_totals" in set(table["dataset"])


def test_gaps_are_listed_for_each_series_with_holes(monkeypatch, real_cache: Path) -> None:
    at = run_app(monkeypatch, real_cache)
    labels = [e.label for e in at.expander]
    assert any("bars binance BTC 1h: 27 gaps" in label for label in labels)


def test_corrupt_cache_file_is_reported_not_fatal(monkeypatch, tmp_path: Path, real_cache: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(real_cache, copy)
    victim = next(copy.glob("dataset=bars/exchange=binance/symbol=ETH/timeframe=1h/year=2020/data.parquet"))
    victim.write_bytes(b"garbage")
    at = run_app(monkeypatch, copy)
    at.run()  # the first run's scan moved the file; the page reports it on the next run too
    assert any("quarantine" in e.value for e in at.error)
