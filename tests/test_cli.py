"""`python -m lib`: status, import, demo, refresh failures; run as a real subprocess where it matters."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import ccxt
import polars as pl
import pytest

from lib.cli import main
from lib.config import PROJECT_ROOT
from lib.sources.ccxt import CcxtSource
from lib.store import Store


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lib", "--quiet", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )


def minute_csv(path: Path, shared_data: Path, rows: int) -> pl.DataFrame:
    """A `timestamp,open,high,low,close,volume` CSV in epoch ms, from real Binance closes."""
    real = pl.read_parquet(shared_data / "ohlcv" / "binance_spot_BTCUSDT_1h.parquet").head(rows)
    frame = real.select(
        timestamp=pl.datetime(2024, 1, 1, time_zone="UTC").dt.epoch("ms") + pl.int_range(rows) * 60_000,
        open="open", high="high", low="low", close="close", volume="volume",
    )
    frame.write_csv(path)
    return frame


def test_import_csv_then_status_json_lists_it(tmp_path: Path, data_dir: Path, shared_data: Path) -> None:
    csv = tmp_path / "coinbase_btc.csv"
    minute_csv(csv, shared_data, 1_500)
    done = run_cli("--data-dir", str(data_dir), "import", str(csv), "--kind", "bars", "--exchange", "coinbase",
                   "--symbol", "BTC", "--timeframe", "1m")
    assert done.returncode == 0, done.stderr
    status = run_cli("--data-dir", str(data_dir), "status", "--json")
    assert status.returncode == 0, status.stderr
    (entry,) = json.loads(status.stdout)
    assert entry["dataset"] == "bars"
    assert entry["exchange"] == "coinbase"
    assert entry["symbol"] == "BTC"
    assert entry["timeframe"] == "1m"
    assert entry["rows"] == 1_500
    assert entry["first_ts"] == "2024-01-01T00:00:00Z"
    assert entry["last_ts"] == "2024-01-02T00:59:00Z"
    assert entry["gap_count"] == 0


def test_data_dir_from_environment(tmp_path: Path, data_dir: Path, shared_data: Path, monkeypatch) -> None:
    monkeypatch.setenv("CASCADE_DATA_DIR", str(data_dir))
    csv = tmp_path / "x.csv"
    minute_csv(csv, shared_data, 10)
    assert main(["--quiet", "import", str(csv), "--exchange", "coinbase", "--symbol", "BTC", "--timeframe", "1m"]) == 0
    assert Store(data_dir).status()[0]["rows"] == 10


def test_malformed_import_fails_with_one_line_and_stores_nothing(tmp_path: Path, data_dir: Path) -> None:
    bad = tmp_path / "garbage.csv"
    bad.write_bytes(b"\x00\x01 not a table \xff")
    done = run_cli("--data-dir", str(data_dir), "import", str(bad), "--kind", "bars")
    assert done.returncode == 1
    assert "garbage.csv" in done.stderr
    assert "Traceback" not in done.stderr
    assert Store(data_dir).status() == []


def test_status_on_empty_cache(data_dir: Path, capsys) -> None:
    assert main(["--data-dir", str(data_dir), "status"]) == 0
    assert "empty" in capsys.readouterr().out
    assert main(["--data-dir", str(data_dir), "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_bad_arguments_exit_2() -> None:
    assert run_cli("refresh", "--since", "yesterday-ish").returncode == 2
    assert run_cli("frobnicate").returncode == 2


def offline_binance(name: str) -> CcxtSource:
    """A real ccxt client whose HTTP layer fails as it does on a machine without network."""
    client = ccxt.binance({"enableRateLimit": False})

    def fetch(url: str, method: str = "GET", headers: object = None, body: object = None) -> None:
        raise ccxt.NetworkError(f"binance GET {url} Could not resolve host")

    client.fetch = fetch
    return CcxtSource(name, client=client, sleep=lambda seconds: None)


def test_refresh_without_network_fails_with_a_reason_and_keeps_the_cache(data_dir: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr("lib.refresh.get_source", offline_binance)
    Store(data_dir).write("funding", pl.DataFrame({
        "exchange": "binance", "symbol": "BTC", "timeframe": "8h",
        "ts": [datetime(2024, 1, 1, tzinfo=timezone.utc)], "funding_rate": [0.0001],
    }), source="test")
    code = main(["--data-dir", str(data_dir), "--quiet", "refresh", "--source", "binance", "--assets", "BTC"])
    assert code == 1
    err = capsys.readouterr().err
    assert "failed  bars binance BTC 1h" in err
    assert "Traceback" not in err
    assert len(Store(data_dir).status()) == 1


def test_demo_writes_its_own_store_apart_from_the_cache(data_dir: Path) -> None:
    assert main(["--data-dir", str(data_dir), "--quiet", "demo"]) == 0
    assert Store(data_dir).status() == []
    demo = Store(data_dir / "_demo").status()
    assert {e["dataset"] for e in demo} >= {"bars", "liquidations", "open_interest", "funding", "depth"}
    assert {e["exchange"] for e in demo} == {"demo"}


def test_a_data_directory_that_cannot_be_made_fails_with_its_path(a_file: Path, capsys) -> None:
    assert main(["--data-dir", str(a_file / "cache"), "--quiet", "demo"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {a_file / 'cache'}") and "Not a directory" in err  # one line, no traceback


@pytest.mark.parametrize("args", [["status"], ["status", "--json"]])
def test_status_runs_as_a_module(data_dir: Path, args: list[str]) -> None:
    assert run_cli("--data-dir", str(data_dir), *args).returncode == 0
