"""`python -m lib report drawdowns|liquidations`, run in-process on a store built from ../shared/data.

Expected values come from the shared files read directly (polars and numpy), not from lib.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lib.cli import main
from lib.reports import drawdown_report, pick_series, records
from lib.sources.files import read_import
from lib.store import Store

IMPORTED = (
    "ohlcv/binance_spot_BTCUSDT_1h_ohlcv.parquet",  # exchange binance
    "ohlcv/binance_usdm_BTCUSDT_1h.parquet",  # exchange binanceusdm
    "liquidations/coinglass_BTC_liquidations_agg_1h.parquet",  # liquidation_totals, exchange coinglass
)
DRAWDOWN_WINDOW = ("2025-06-01", "2026-05-16")  # --end is a date: the whole of 16 May is in
LIQUIDATION_WINDOW = ("2025-11-23", "2026-05-16")
WINDOW_END = datetime(2026, 5, 17, tzinfo=UTC)


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip(f"real market data not found at {SHARED_DATA}")
    root = tmp_path_factory.mktemp("reports") / "data"
    store = Store(root)
    for name in IMPORTED:
        imported = read_import(SHARED_DATA / name)
        store.write(imported.dataset, imported.frame, source="test")
    return root


def report(store_dir: Path, capsys: pytest.CaptureFixture, *args: str) -> str:
    """stdout of a successful `report` run."""
    code = main(["--data-dir", str(store_dir), "report", *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err == ""
    return captured.out


def drawdowns_json(store_dir: Path, capsys: pytest.CaptureFixture, *extra: str) -> dict:
    start, end = DRAWDOWN_WINDOW
    return json.loads(report(store_dir, capsys, "drawdowns", "--symbol", "BTC", "--start", start, "--end", end, *extra))


def liquidations_json(store_dir: Path, capsys: pytest.CaptureFixture, *extra: str) -> dict:
    start, end = LIQUIDATION_WINDOW
    args = ("liquidations", "--symbol", "BTC", "--exchange", "binanceusdm", "--start", start, "--end", end, *extra)
    return json.loads(report(store_dir, capsys, *args))


def file_window(name: str, time_column: str, start: str) -> pl.DataFrame:
    """Rows of a shared file with start <= time < WINDOW_END, times as UTC datetimes."""
    from tests.conftest import SHARED_DATA

    frame = pl.read_parquet(SHARED_DATA / name).with_columns(
        pl.from_epoch(time_column, "ms").dt.replace_time_zone("UTC").alias("time")
    )
    return frame.filter(pl.col("time") >= datetime.fromisoformat(start).replace(tzinfo=UTC), pl.col("time") < WINDOW_END)


# --- drawdowns ----------------------------------------------------------------------------------


def test_drawdowns_json_matches_numpy_on_the_same_closes(store_dir: Path, capsys: pytest.CaptureFixture) -> None:
    result = drawdowns_json(store_dir, capsys, "--exchange", "binance")
    bars = file_window(IMPORTED[0], "open_time", DRAWDOWN_WINDOW[0])
    closes = bars["close"].to_numpy()
    reference = closes / np.maximum.accumulate(closes) - 1
    assert (result["symbol"], result["exchange"], result["timeframe"]) == ("BTC", "binance", "1h")
    assert (result["start"], result["end"]) == ("2025-06-01T00:00:00Z", "2026-05-16T18:00:00Z")
    assert result["bars"] == len(closes)
    assert result["max_drawdown"] == pytest.approx(reference.min(), abs=1e-15)
    assert result["current_drawdown"] == pytest.approx(reference[-1], abs=1e-15)
    assert (result["peak_ts"], result["trough_ts"], result["recovery_ts"]) == (
        "2025-10-06T18:00:00Z", "2026-02-24T13:00:00Z", None,
    )
    assert bars["time"][int(reference.argmin())] == datetime(2026, 2, 24, 13, tzinfo=UTC)
    deepest = result["episodes"][0]
    assert (deepest["peak_ts"], deepest["trough_ts"], deepest["recovery_ts"]) == (
        result["peak_ts"], result["trough_ts"], None,
    )
    assert deepest["depth"] == result["max_drawdown"]
    assert deepest["peak_to_trough_hours"] == (datetime(2026, 2, 24, 13) - datetime(2025, 10, 6, 18)).total_seconds() / 3600
    assert deepest["trough_to_recovery_hours"] is None
    assert deepest["weekend_share"] + deepest["weekday_share"] == pytest.approx(1)
    assert result["liquidation_attribution"] is True
    assert 0 < deepest["liquidation_coverage"] < 1  # the Coinglass file starts on 23 Nov 2025
    assert len(result["episodes"]) == 10
    assert [e["depth"] for e in result["episodes"]] == sorted(e["depth"] for e in result["episodes"])


def test_exchange_is_picked_and_named_when_not_given(store_dir: Path, capsys: pytest.CaptureFixture) -> None:
    result = drawdowns_json(store_dir, capsys)
    assert result["exchange"] == "binance"  # 73,265 cached bars against binanceusdm's 58,623
    assert result["notes"] == ["exchange binance picked: the most cached 1h BTC bars of binance, binanceusdm"]


def test_drawdowns_csv_is_the_episode_table(store_dir: Path, capsys: pytest.CaptureFixture) -> None:
    start, end = DRAWDOWN_WINDOW
    args = ("drawdowns", "--symbol", "BTC", "--start", start, "--end", end, "--top", "25")
    table = pl.read_csv(io.StringIO(report(store_dir, capsys, *args, "--format", "csv")))
    episodes = json.loads(report(store_dir, capsys, *args))["episodes"]
    assert table.height == len(episodes) == 25
    assert table["peak_ts"].to_list() == [e["peak_ts"] for e in episodes]
    assert table["depth"].to_list() == pytest.approx([e["depth"] for e in episodes])
    assert table["recovery_ts"][0] is None and table["active"][0] is True


# --- liquidations -------------------------------------------------------------------------------


def test_liquidation_totals_equal_the_file_and_the_grid(store_dir: Path, capsys: pytest.CaptureFixture) -> None:
    result = liquidations_json(store_dir, capsys)
    rows = file_window(IMPORTED[2], "timestamp", LIQUIDATION_WINDOW[0])
    assert result["total_long_usd"] == pytest.approx(rows["longUsd"].sum(), rel=1e-12)
    assert result["total_short_usd"] == pytest.approx(rows["shortUsd"].sum(), rel=1e-12)
    grid = result["grid"]
    assert grid["cell_total_usd"] + grid["unplaced_usd"] == pytest.approx(rows["totalUsd"].sum(), rel=1e-9)
    assert grid["long_usd"] + grid["short_usd"] == pytest.approx(grid["cell_total_usd"], rel=1e-12)
    assert grid["times"] == rows.height
    assert grid["buckets"] > 0 and grid["bucket_usd"] > 0
    assert "placement 'range'" in grid["method"]
    assert result["liquidation_exchanges"] == ["coinglass"]
    assert (result["liquidations_start"], result["liquidations_end"]) == ("2025-11-23T06:00:00Z", "2026-05-16T23:00:00Z")


def test_largest_burst_is_the_feb_5_cascade(store_dir: Path, capsys: pytest.CaptureFixture) -> None:
    bursts = liquidations_json(store_dir, capsys)["largest_bursts"]
    rows = file_window(IMPORTED[2], "timestamp", LIQUIDATION_WINDOW[0])
    assert rows.sort("totalUsd")["time"][-1] == datetime(2026, 2, 5, 20, tzinfo=UTC)
    assert (bursts[0]["rank"], bursts[0]["ts"]) == (1, "2026-02-05T20:00:00Z")
    assert bursts[0]["total_usd"] == pytest.approx(rows["totalUsd"].max())
    assert bursts[0]["move"] < 0  # longs liquidated into a falling hour
    assert len(bursts) == 10


def test_estimated_levels_carry_their_assumptions(store_dir: Path, capsys: pytest.CaptureFixture) -> None:
    estimated = liquidations_json(store_dir, capsys)["estimated"]
    assert estimated["kind"].startswith("estimated")
    assert estimated["from"] == "2025-09-24T00:00:00Z"  # 60 days of warm-up before the window
    assert estimated["as_of"] == "2026-05-16T23:00:00Z"
    assert {row["band"] for row in estimated["fragility"]} == {-0.02, -0.05, -0.1, 0.02, 0.05, 0.1}
    ranges = estimated["fragility_range"]
    assert ranges["runs"] == 9 and len(ranges["split_rules"]) * len(ranges["leverage_tilts"]) == 9
    for row, band in zip(estimated["fragility"], ranges["bands"], strict=True):  # the default run is one of the 9
        assert (row["side"], row["band"]) == (band["side"], band["band"])
        assert band["low_usd"] <= row["liquidation_usd"] <= band["high_usd"]
    assert {"tiers", "liquidation_price", "split", "open_interest", "bucket_usd"} <= set(estimated["assumptions"])
    assert any("no open interest" in note for note in estimated["notes"])  # none cached: the volume proxy


def test_liquidations_csv_is_the_non_empty_cells(store_dir: Path, capsys: pytest.CaptureFixture) -> None:
    start, end = LIQUIDATION_WINDOW
    args = ("liquidations", "--symbol", "BTC", "--exchange", "binanceusdm", "--start", start, "--end", end,
            "--bucket-usd", "500")
    cells = pl.read_csv(io.StringIO(report(store_dir, capsys, *args, "--format", "csv")))
    grid = json.loads(report(store_dir, capsys, *args))["grid"]
    assert cells.columns == ["ts", "price", "side", "usd"]
    assert (cells["usd"] > 0).all()
    assert (cells["price"] % 500 == 0).all()
    by_side = dict(cells.group_by("side").agg(pl.col("usd").sum()).iter_rows())
    assert by_side["long"] == pytest.approx(grid["long_usd"], rel=1e-12)
    assert by_side["short"] == pytest.approx(grid["short_usd"], rel=1e-12)


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["drawdowns", "--symbol", "DOGE"], "no 1h DOGE bars in the cache"),
        (["drawdowns", "--symbol", "BTC", "--exchange", "kraken"], "no 1h BTC bars from kraken"),
        (["drawdowns", "--symbol", "BTC", "--start", "2030-01-01"], "no 1h BTC bars since 2030-01-01 00:00 UTC"),
        (["drawdowns", "--symbol", "BTC", "--start", "2026-01-01", "--end", "2025-01-01"], "--start must be before --end"),
        (["liquidations", "--symbol", "ETH"], "no 1h ETH liquidations in the cache"),
        (["liquidations", "--symbol", "BTC", "--start", "2024-01-01", "--end", "2024-02-01"],
         "no 1h BTC liquidations since 2024-01-01 00:00 UTC"),
        (["liquidations", "--symbol", "BTC", "--start", "2026-02-02", "--end", "2026-02-01"],
         "--start must be before --end"),
        (["liquidations", "--symbol", "BTC", "--bucket-usd", "0.5"], "choose a bucket of at least"),
    ],
)
def test_nothing_to_report_exits_1_with_one_line(
    store_dir: Path, capsys: pytest.CaptureFixture, args: list[str], message: str
) -> None:
    assert main(["--data-dir", str(store_dir), "report", *args]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("error: ") and message in captured.err
    assert "Traceback" not in captured.err


# --- choosing a series --------------------------------------------------------------------------


def entry(exchange: str, rows: int, first: str, last: str, timeframe: str = "1h") -> dict:
    return {"exchange": exchange, "timeframe": timeframe, "rows": rows, "first_ts": first, "last_ts": last}


SPOT = entry("binance", 100, "2018-01-01T00:00:00Z", "2026-05-16T18:00:00Z")
PERP = entry("binanceusdm", 80, "2019-09-08T17:00:00Z", "2026-05-17T07:00:00Z")
TWIN = entry("aaa", 100, "2018-01-01T00:00:00Z", "2026-05-16T18:00:00Z")


@pytest.mark.parametrize(
    ("entries", "start", "end", "expected"),
    [
        ([], None, None, None),
        ([PERP, SPOT], None, None, SPOT),  # most rows
        ([SPOT, TWIN], None, None, TWIN),  # a tie: the name first in order
        ([SPOT, PERP], datetime(2026, 5, 17, tzinfo=UTC), None, PERP),  # only the perp reaches 17 May
        ([SPOT, PERP], None, datetime(2019, 1, 1, tzinfo=UTC), SPOT),  # only spot before the perp listed
        ([SPOT, PERP], datetime(2026, 5, 18, tzinfo=UTC), None, None),
        ([SPOT], datetime(2026, 5, 16, 18, tzinfo=UTC), None, SPOT),  # the last bar itself
        ([SPOT], None, datetime(2018, 1, 1, tzinfo=UTC), None),  # the end is left out
    ],
)
def test_pick_series(entries: list[dict], start: datetime | None, end: datetime | None, expected: dict | None) -> None:
    assert pick_series(entries, start, end) == expected


# --- the pure builders on hand-computed shapes --------------------------------------------------

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def hourly_bars(closes: list[float]) -> pl.DataFrame:
    return pl.DataFrame({
        "exchange": "test", "symbol": "BTC", "timeframe": "1h",
        "ts": [T0 + timedelta(hours=i) for i in range(len(closes))], "close": closes,
    })


@pytest.mark.parametrize(
    ("closes", "max_drawdown", "dates", "episodes"),
    [
        ([5.0], 0.0, (None, None, None), 0),  # single_row
        ([1.0, 2.0, 3.0], 0.0, (None, None, None), 0),  # monotonic_up
        ([4.0, 2.0, 1.0], -0.75, ("2024-01-01T00:00:00Z", "2024-01-01T02:00:00Z", None), 1),  # all_down
        ([2.0, 1.0, 2.0, 1.5], -0.5, ("2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z", "2024-01-01T02:00:00Z"), 2),
    ],
)
def test_drawdown_report_on_shapes(closes: list[float], max_drawdown: float, dates: tuple, episodes: int) -> None:
    result = drawdown_report(hourly_bars(closes))
    summary = result.summary
    assert (summary["symbol"], summary["exchange"], summary["timeframe"]) == ("BTC", "test", "1h")
    assert summary["max_drawdown"] == max_drawdown
    assert (summary["peak_ts"], summary["trough_ts"], summary["recovery_ts"]) == dates
    assert len(summary["episodes"]) == result.table.height == episodes
    json.dumps(summary, allow_nan=False)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2026, 2, 5, 20, tzinfo=UTC), "2026-02-05T20:00:00Z"),
        (datetime(2018, 2, 9, 9, 28, 14, 789_000, tzinfo=UTC), "2018-02-09T09:28:14.789Z"),  # Binance's 2018 bars
        (None, None),
    ],
)
def test_records_write_utc_times_with_a_z(value: datetime | None, text: str | None) -> None:
    frame = pl.DataFrame({"ts": [value], "x": [float("nan")]}, schema={"ts": pl.Datetime("us", "UTC"), "x": pl.Float64})
    assert records(frame) == [{"ts": text, "x": None}]


def test_liquidity_json_has_every_metric_and_an_honest_ratio(store_dir: Path, capsys: pytest.CaptureFixture) -> None:
    out = json.loads(report(store_dir, capsys, "liquidity", "--symbol", "BTC", "--exchange", "binanceusdm",
                            "--start", "2025-03-01", "--end", "2025-08-31", "--weekend", "us-closed"))
    assert (out["symbol"], out["weekend_definition"]) == ("BTC", "cme")
    assert {"volume", "quote_volume", "amihud", "edge_spread", "realized_vol"} <= set(out["metrics"])
    volume = out["metrics"]["volume"]
    for key in ("weekday_mean", "weekend_mean", "weekday_median", "weekend_median", "ratio", "ci_low", "ci_high",
                "p_mannwhitney", "n_weekday", "n_weekend"):
        assert key in volume
    assert volume["ratio"] == pytest.approx(volume["weekend_mean"] / volume["weekday_mean"])
    assert volume["ci_low"] <= volume["ratio"] <= volume["ci_high"]
    assert "volume" in out["verdicts"]["volume"]
    moves = out["weekend_moves"]
    assert moves and all(m["start"].endswith("Z") and m["max_drawdown"] <= 0 for m in moves)
    assert all(m["move"] == pytest.approx(m["monday_open"] / m["friday_close"] - 1) for m in moves)


def test_liquidity_json_says_how_many_quote_volumes_it_estimated(store_dir: Path, capsys: pytest.CaptureFixture) -> None:
    window = ("--symbol", "BTC", "--exchange", "binanceusdm", "--start", "2025-03-01", "--end", "2025-08-31")
    estimated = json.loads(report(store_dir, capsys, "liquidity", *window))
    measured = json.loads(report(store_dir, capsys, "liquidity", *window, "--no-estimate-quote-volume"))
    n = estimated["quote_volume_estimated_bars"]
    assert n > 0 and measured["quote_volume_estimated_bars"] == 0
    assert any(f"quote volume estimated for {n} of" in note for note in estimated["notes"])
    assert estimated["metrics"]["quote_volume"]["n_weekday"] > measured["metrics"]["quote_volume"]["n_weekday"]
