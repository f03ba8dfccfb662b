"""lib.sources.files: every real file in ../shared/data, hand-written CSVs, and the error messages."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from lib.gaps import find_gaps
from lib.schema import TS, conform
from lib.sources.files import (
    ImportFormatError,
    base_from_name,
    exchange_from_name,
    read_import,
    timeframe_from_name,
)


def utc(text: str) -> datetime:
    """'2018-01-01 00:00' -> that minute in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


# (file under shared/data, layout, dataset, rows, first ts, last ts, symbols, exchange, timeframe), per SOURCES.md
REAL_FILES = [
    ("ohlcv/binance_spot_BTCUSDT_1h.parquet", "binance_klines", "bars", 70_008, "2018-01-01 00:00", "2025-12-31 23:00", "BTC", "binance", "1h"),
    ("ohlcv/binance_spot_ETHUSDT_1h.parquet", "binance_klines", "bars", 70_008, "2018-01-01 00:00", "2025-12-31 23:00", "ETH", "binance", "1h"),
    ("ohlcv/binance_spot_SOLUSDT_1h.parquet", "binance_klines", "bars", 17_544, "2024-01-01 00:00", "2025-12-31 23:00", "SOL", "binance", "1h"),
    ("ohlcv/binance_spot_BTCUSDT_1d.parquet", "binance_klines", "bars", 2_922, "2018-01-01 00:00", "2025-12-31 00:00", "BTC", "binance", "1d"),
    ("ohlcv/binance_spot_ETHUSDT_1d.parquet", "binance_klines", "bars", 2_922, "2018-01-01 00:00", "2025-12-31 00:00", "ETH", "binance", "1d"),
    ("ohlcv/binance_spot_BTCUSDT_1h_ohlcv.parquet", "ohlcv", "bars", 73_265, "2018-01-01 00:00", "2026-05-16 18:00", "BTC", "binance", "1h"),
    ("ohlcv/binance_spot_ETHUSDT_1h_ohlcv.parquet", "ohlcv", "bars", 73_265, "2018-01-01 00:00", "2026-05-16 18:00", "ETH", "binance", "1h"),
    ("ohlcv/binance_spot_SOLUSDT_1h_ohlcv.parquet", "ohlcv", "bars", 50_489, "2020-08-11 06:00", "2026-05-16 18:00", "SOL", "binance", "1h"),
    ("ohlcv/binance_usdm_BTCUSDT_1h.parquet", "ohlcv", "bars", 58_623, "2019-09-08 17:00", "2026-05-17 07:00", "BTC", "binanceusdm", "1h"),
    ("ohlcv/binance_usdm_ETHUSDT_1h.parquet", "ohlcv", "bars", 56_713, "2019-11-27 07:00", "2026-05-17 07:00", "ETH", "binanceusdm", "1h"),
    ("ohlcv/binance_usdm_SOLUSDT_1h.parquet", "ohlcv", "bars", 11_267, "2025-02-01 00:00", "2026-05-16 10:00", "SOL", "binanceusdm", "1h"),
    ("ohlcv/binance_usdm_SOLUSDT_5m.parquet", "ohlcv", "bars", 116_425, "2025-04-07 00:00", "2026-05-16 06:00", "SOL", "binanceusdm", "5m"),
    ("ohlcv/binance_usdm_BTCUSDT_15m.parquet", "ohlcv", "bars", 26_244, "2025-08-17 00:00", "2026-05-17 08:45", "BTC", "binanceusdm", "15m"),
    ("ohlcv/binance_usdm_ETHUSDT_15m.parquet", "ohlcv", "bars", 26_244, "2025-08-17 00:00", "2026-05-17 08:45", "ETH", "binanceusdm", "15m"),
    ("derivatives/binance_usdm_BTCUSDT_markprice_1h.parquet", "price_candles", "bars", 56_084, "2019-12-23 11:00", "2026-05-17 06:00", "BTC", "binanceusdm", "1h"),
    ("derivatives/binance_usdm_ETHUSDT_markprice_1h.parquet", "price_candles", "bars", 56_084, "2019-12-23 11:00", "2026-05-17 06:00", "ETH", "binanceusdm", "1h"),
    ("derivatives/binance_usdm_BTCUSDT_funding_rate.parquet", "funding", "funding", 7_323, "2019-09-10 08:00", "2026-05-17 00:00", "BTC", "binanceusdm", "8h"),
    ("derivatives/binance_usdm_ETHUSDT_funding_rate.parquet", "funding", "funding", 7_089, "2019-11-27 08:00", "2026-05-17 00:00", "ETH", "binanceusdm", "8h"),
    ("derivatives/binance_usdm_SOLUSDT_funding_rate.parquet", "funding", "funding", 1_379, "2025-02-01 00:00", "2026-05-06 08:00", "SOL", "binanceusdm", "8h"),
    ("derivatives/coinglass_open_interest_agg_1d.parquet", "coinglass_open_interest", "open_interest", 5_912, "2020-02-27 00:00", "2025-09-08 00:00", "BTC ETH SOL", "coinglass", "1d"),
    ("derivatives/coinglass_funding_oi_weighted_1d.parquet", "coinglass_funding", "funding", 5_793, "2020-03-31 00:00", "2025-09-08 00:00", "BTC ETH SOL", "coinglass", "1d"),
    ("derivatives/coinglass_orderbook_depth_1pct_agg_1d.parquet", "coinglass_depth", "depth", 1_506, "2024-04-25 00:00", "2025-09-08 00:00", "BTC ETH SOL", "coinglass", "1d"),
    ("liquidations/coinglass_liquidations_agg_1d.parquet", "coinglass_liquidations", "liquidation_totals", 5_163, "2020-12-23 00:00", "2025-09-08 00:00", "BTC ETH SOL", "coinglass", "1d"),
    ("liquidations/coinglass_BTC_liquidations_agg_1h.parquet", "coinglass_liquidations", "liquidation_totals", 4_320, "2025-11-23 06:00", "2026-05-22 05:00", "BTC", "coinglass", "1h"),
    ("daily/yahoo_BTC-USD_1d.csv", "yfinance", "bars", 3_759, "2014-09-17 00:00", "2024-12-31 00:00", "BTC", "yfinance", "1d"),
    ("daily/yahoo_ETH-USD_1d.csv", "yfinance", "bars", 2_610, "2017-11-09 00:00", "2024-12-31 00:00", "ETH", "yfinance", "1d"),
    ("daily/yahoo_SOL-USD_1d.csv", "yfinance", "bars", 1_727, "2020-04-10 00:00", "2024-12-31 00:00", "SOL", "yfinance", "1d"),
    ("samples/binance_spot_BTCUSDT_1h_2024-03.csv", "binance_klines", "bars", 744, "2024-03-01 00:00", "2024-03-31 23:00", "BTC", "binance", "1h"),
    ("samples/binance_spot_ETHUSDT_1h_2024-03.csv", "binance_klines", "bars", 744, "2024-03-01 00:00", "2024-03-31 23:00", "ETH", "binance", "1h"),
    ("samples/binance_spot_SOLUSDT_1h_2024-03.csv", "binance_klines", "bars", 744, "2024-03-01 00:00", "2024-03-31 23:00", "SOL", "binance", "1h"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "layout", "dataset", "rows", "first", "last", "symbols", "exchange", "timeframe"),
    REAL_FILES,
    ids=[row[0] for row in REAL_FILES],
)
def test_real_file(shared_data, name, layout, dataset, rows, first, last, symbols, exchange, timeframe):
    imported = read_import(shared_data / name)
    frame = imported.frame
    assert (imported.layout, imported.dataset.name, frame.height) == (layout, dataset, rows)
    assert (frame[TS].min(), frame[TS].max()) == (utc(first), utc(last))
    assert " ".join(frame["symbol"].unique().sort()) == symbols
    assert frame["exchange"].unique().to_list() == [exchange]
    assert frame["timeframe"].unique().to_list() == [timeframe]
    assert_frame_equal(conform(frame, imported.dataset), frame)
    assert frame.select(pl.struct("symbol", TS).is_unique().all()).item()


@pytest.mark.parametrize("name", ["coinglass_taker_volume_agg_1d.parquet", "coinglass_long_short_ratio_1d.parquet"])
def test_real_files_without_a_canonical_dataset_are_refused(shared_data, name):
    with pytest.raises(ImportFormatError, match="^unknown layout: columns found date, symbol, "):
        read_import(shared_data / "derivatives" / name)


@pytest.mark.parametrize(
    ("name", "gaps", "largest_gap_start", "largest_missing"),
    [
        ("binance_spot_BTCUSDT_1h.parquet", 27, "2018-02-08 01:00", 32),
        ("binance_spot_ETHUSDT_1h.parquet", 27, "2018-02-08 01:00", 32),
        ("binance_spot_BTCUSDT_1h_ohlcv.parquet", 27, "2018-02-08 01:00", 33),
        ("binance_spot_SOLUSDT_1h_ohlcv.parquet", 10, None, None),
    ],
)
def test_outage_gaps_stay_gaps(shared_data, name, gaps, largest_gap_start, largest_missing):
    found = find_gaps(read_import(shared_data / "ohlcv" / name).frame, "1h")
    assert found.height == gaps
    if largest_gap_start:
        largest = found.sort("missing").row(-1, named=True)
        assert (largest["gap_start"], largest["missing"]) == (utc(largest_gap_start), largest_missing)


def test_unaligned_2018_bars_are_kept_and_noted(shared_data):
    imported = read_import(shared_data / "ohlcv" / "binance_spot_BTCUSDT_1h.parquet")
    unaligned = imported.frame.filter(pl.col(TS) != pl.col(TS).dt.truncate("1h"))
    assert unaligned.height == 43
    assert (unaligned[TS].min(), unaligned[TS].max()) == (
        datetime(2018, 2, 9, 9, 28, 14, 789_000, tzinfo=UTC),
        datetime(2018, 2, 11, 3, 28, 14, 789_000, tzinfo=UTC),
    )
    assert "43 rows not aligned to the 1h grid (kept as they are)" in imported.notes
    assert "timestamps were epoch ms" in imported.notes


@pytest.mark.parametrize(
    ("name", "column", "expected"),
    [
        ("daily/yahoo_BTC-USD_1d.csv", "quote_volume", 21_056_800.0),  # Yahoo Volume is USD
        ("daily/yahoo_BTC-USD_1d.csv", "volume", 21_056_800 / 457.3340148925781),  # / Close
        ("derivatives/coinglass_funding_oi_weighted_1d.parquet", "funding_rate", -0.0002801456),  # percent / 100
        ("derivatives/coinglass_orderbook_depth_1pct_agg_1d.parquet", "bid_usd_1pct", 159_359_747.9771),
        ("derivatives/coinglass_orderbook_depth_1pct_agg_1d.parquet", "ask_usd_1pct", 155_479_552.4085),
        ("derivatives/coinglass_orderbook_depth_1pct_agg_1d.parquet", "bid_usd_2pct", None),
        ("derivatives/coinglass_open_interest_agg_1d.parquet", "open_interest_usd", 3.5273e9),
        ("derivatives/binance_usdm_BTCUSDT_markprice_1h.parquet", "volume", None),
        ("derivatives/binance_usdm_BTCUSDT_markprice_1h.parquet", "volume_reliable", False),
        ("ohlcv/binance_spot_BTCUSDT_1h.parquet", "trades", 5228),
    ],
)
def test_units_fixed_at_the_boundary(shared_data, name, column, expected):
    value = read_import(shared_data / name).frame[column][0]
    assert value == (pytest.approx(expected, rel=1e-4) if isinstance(expected, float) else expected)


def test_explicit_symbol_picks_it_out_of_a_multi_symbol_file(shared_data):
    imported = read_import(shared_data / "liquidations" / "coinglass_liquidations_agg_1d.parquet", symbol="ETH")
    assert imported.frame["symbol"].unique().to_list() == ["ETH"]
    assert "kept the 1,721 ETH rows of 5,163" in imported.notes


def test_header_csv_in_epoch_ms_stores_every_row(shared_data, tmp_path):
    real = pl.read_parquet(shared_data / "ohlcv" / "binance_spot_BTCUSDT_1h_ohlcv.parquet").head(500)
    path = tmp_path / "upload.csv"
    real.rename({"open_time": "timestamp"}).write_csv(path)
    imported = read_import(path, kind="bars", exchange="coinbase", symbol="BTC", timeframe="1m")
    frame = imported.frame
    assert (imported.layout, frame.height) == ("ohlcv", 500)
    assert frame.select("exchange", "symbol", "timeframe").unique().rows() == [("coinbase", "BTC", "1m")]
    assert frame[TS].to_list() == pl.from_epoch(real["open_time"], time_unit="ms").dt.replace_time_zone("UTC").to_list()
    assert_frame_equal(frame.select("open", "high", "low", "close", "volume"), real.select("open", "high", "low", "close", "volume"))


def test_headerless_binance_klines_in_microseconds(shared_data, tmp_path):
    sample = pl.read_csv(shared_data / "samples" / "binance_spot_SOLUSDT_1h_2024-03.csv")
    micros = sample.with_columns(pl.col("open_time", "close_time") * 1000, ignore=pl.lit(0))
    path = tmp_path / "SOLUSDT-1h-2024-03.csv"
    micros.write_csv(path, include_header=False)
    imported = read_import(path, exchange="binance")
    assert (imported.layout, imported.frame.height, imported.frame["symbol"][0]) == ("binance_klines", 744, "SOL")
    assert imported.frame[TS].min() == utc("2024-03-01 00:00")
    assert "timestamps were epoch µs" in imported.notes
    assert imported.frame["taker_buy_volume"].to_list() == sample["taker_buy_volume"].to_list()


def test_a_file_mixing_ms_and_us_is_read_row_by_row(shared_data, tmp_path):
    """Binance's spot archive switched from ms to µs on 2025-01-01; a file spanning it mixes both."""
    sample = pl.read_csv(shared_data / "samples" / "binance_spot_BTCUSDT_1h_2024-03.csv")
    mixed = sample.with_columns(
        pl.when(pl.int_range(pl.len()) >= 400).then(pl.col(c) * 1000).otherwise(pl.col(c)).alias(c)
        for c in ("open_time", "close_time")
    )
    path = tmp_path / "binance_spot_BTCUSDT_1h_mixed.csv"
    mixed.write_csv(path)
    imported = read_import(path)
    assert "timestamps were epoch ms (400 rows) and µs (344 rows)" in imported.notes
    assert find_gaps(imported.frame, "1h").is_empty()
    assert imported.frame[TS].max() == utc("2024-03-31 23:00")


@pytest.mark.parametrize(
    ("first", "second", "expected", "note"),
    [
        ("1704067200", "1704096000", "2024-01-01 00:00", "timestamps were epoch s"),
        ("1704067200000", "1704096000000", "2024-01-01 00:00", "timestamps were epoch ms"),
        ("1704067200000000", "1704096000000000", "2024-01-01 00:00", "timestamps were epoch µs"),
        ("1704067200000000000", "1704096000000000000", "2024-01-01 00:00", "timestamps were epoch ns"),
        ("2024-01-01T00:00:00Z", "2024-01-01T08:00:00Z", "2024-01-01 00:00", None),
        ("2024-01-01T02:00:00+02:00", "2024-01-01T10:00:00+02:00", "2024-01-01 00:00", None),
        ("2024-01-01 00:00:00", "2024-01-01 08:00:00", "2024-01-01 00:00", "timestamps without a time zone were taken as UTC"),
        ("2024-01-01", "2024-01-02", "2024-01-01 00:00", "timestamps without a time zone were taken as UTC"),
    ],
)
def test_timestamp_formats_become_utc(tmp_path, first, second, expected, note):
    path = write(tmp_path, "binance_usdm_BTCUSDT_funding.csv", f"timestamp,funding_rate\n{first},0.0001\n{second},0.0002\n")
    imported = read_import(path)
    assert imported.frame[TS][0] == utc(expected)
    assert note is None or note in imported.notes


def test_duplicated_timestamps_keep_the_last_row(tmp_path):
    text = "timestamp,open,high,low,close,volume\n1,1,2,1,2,10\n3601,2,3,2,3,20\n3601,2,3,2,9,99\n7201,9,9,9,9,30\n"
    imported = read_import(write(tmp_path, "okx_BTCUSDT_1h.csv", text))
    assert imported.frame["close"].to_list() == [2.0, 9.0, 9.0]
    assert "1 duplicated rows dropped (kept the last of each)" in imported.notes


def test_timeframe_from_the_median_step(tmp_path):
    hours = (0, 4, 12, 16)  # steps of 4, 8 and 4 hours: the median is 4 h
    text = "timestamp,open,high,low,close\n" + "".join(f"{1704067200 + h * 3600},1,1,1,1\n" for h in hours)
    imported = read_import(write(tmp_path, "bybit_ETHUSDT_mark.csv", text))
    assert (imported.layout, imported.frame["timeframe"][0]) == ("price_candles", "4h")
    assert "timeframe 4h inferred from the median step between rows" in imported.notes


def test_funding_trusts_its_rows_over_a_freqtrade_filename(tmp_path):
    text = "funding_time,funding_rate\n1704067200000,0.0001\n1704096000000,0.0002\n1704124800000,0.0001\n"
    imported = read_import(write(tmp_path, "BTC_USDT_USDT-1h-funding_rate.csv", text), exchange="binanceusdm")
    assert imported.frame["timeframe"].unique().to_list() == ["8h"]
    assert "timeframe 8h inferred from the median step between rows" in imported.notes


@pytest.mark.parametrize(
    ("header", "rows", "layout", "sides", "sampled"),
    [
        ("timestamp,side,price,qty", ["1704067200000,Long,42000,0.5", "1704067201000,SHORT,42100,0.25"], "liquidation_events", ["long", "short"], None),
        (
            "time,side,order_type,time_in_force,original_quantity,price,average_price",
            ["1704067200000,SELL,LIMIT,IOC,0.5,41000,42000", "1704067201000,BUY,LIMIT,IOC,0.25,43000,42100"],
            "binance_forced_orders", ["long", "short"], True,
        ),
    ],
)  # fmt: skip
def test_liquidation_events(tmp_path, header, rows, layout, sides, sampled):
    path = write(tmp_path, "binanceusdm_BTCUSDT_liquidations.csv", "\n".join([header, *rows]) + "\n")
    imported = read_import(path, kind="liquidations", timeframe="1h")  # events have no timeframe
    frame = imported.frame
    assert (imported.layout, imported.dataset.name, frame["timeframe"][0]) == (layout, "liquidations", "event")
    assert frame["side"].to_list() == sides
    assert frame["notional_usd"].to_list() == [42000 * 0.5, 42100 * 0.25]
    assert frame["sampled"].to_list() == [sampled, sampled]


@pytest.mark.parametrize(
    ("stem", "symbol", "exchange", "timeframe"),
    [
        ("binance_spot_BTCUSDT_1h", "BTC", "binance", "1h"),
        ("binance_usdm_SOLUSDT_5m", "SOL", "binanceusdm", "5m"),
        ("yahoo_BTC-USD_1d", "BTC", "yfinance", "1d"),
        ("BTC_USDT_USDT-15m-futures", "BTC", None, "15m"),
        ("ETHUSDT-1m-2024-01", "ETH", None, "1m"),
        ("coinglass_BTC_liquidations_agg_1h", "BTC", "coinglass", "1h"),
        ("dogeusdc_4h", "DOGE", None, "4h"),
        ("okx-eth-perp", "ETH", "okx", None),
        ("coinglass_funding_oi_weighted_1d", None, "coinglass", "1d"),
        ("export", None, None, None),
    ],
)
def test_inference_from_the_filename(stem, symbol, exchange, timeframe):
    assert (base_from_name(stem), exchange_from_name(stem), timeframe_from_name(stem)) == (symbol, exchange, timeframe)


OHLCV_CSV = "timestamp,open,high,low,close,volume\n1704067200000,1,2,1,2,10\n1704070800000,2,3,2,3,20\n"

ERRORS = [
    ("empty.csv", b"", {}, "empty.csv is empty"),
    ("garbage.csv", bytes(range(256)) * 4, {}, "garbage.csv is neither CSV text nor Parquet (binary content)"),
    ("archive.csv", b"PK\x03\x04rest-of-zip", {}, "archive.csv is a zip archive: unzip it and import the CSV inside"),
    ("header_only_BTCUSDT.csv", "timestamp,open,high,low,close,volume\n", {}, "header_only_BTCUSDT.csv has a header but no rows"),
    ("mystery_BTCUSDT.csv", "foo,bar\n1,2\n", {}, "unknown layout: columns found foo, bar; known layouts binance_klines, yfinance, ohlcv"),
    ("wide_BTCUSDT.csv", "1,2,3,4,5,6,7\n", {}, "headerless CSV with 7 columns; headerless layouts (columns): binance_klines (12), ohlcv (6)"),
    ("binance_BTC_ETH_1h.csv", OHLCV_CSV, {}, "filename 'binance_BTC_ETH_1h' names several symbols (BTC, ETH): pass symbol="),
    ("prices.csv", OHLCV_CSV, {"exchange": "binance"}, "cannot infer the symbol from filename 'prices': pass symbol= (e.g. BTC)"),
    ("BTCUSDT-1h-2024-01.csv", OHLCV_CSV, {}, "cannot infer the exchange from filename 'BTCUSDT-1h-2024-01': pass exchange="),
    ("binance_BTCUSDT.csv", "timestamp,open,high,low,close,volume\n0,1,2,1,2,10\n420,1,2,1,2,10\n1200,1,2,1,2,10\n", {}, "cannot infer the timeframe of 'binance_BTCUSDT' from its name or rows: pass timeframe="),
    ("binance_BTCUSDT_1h.csv", OHLCV_CSV, {"kind": "funding"}, "columns (timestamp, open, high, low, close, volume) don't fit kind 'funding'"),
    ("binance_BTCUSDT_1h.csv", OHLCV_CSV, {"kind": "trades"}, "unknown kind 'trades'; known: bars, liquidations"),
    ("binance_BTCUSDT_1h.csv", OHLCV_CSV.replace(",2,3,2,3,", ",2,3,2,abc,"), {}, "column 'close' is not numeric: 'abc' in data row 2"),
    ("binance_BTCUSDT_1h.csv", OHLCV_CSV.replace("1704070800000", "yesterday"), {}, "unparseable timestamp 'yesterday' in column 'timestamp', data row 2"),
    ("bybit_BTCUSDT_liq.csv", "timestamp,side,price,qty\n1704067200000,BUY,42000,0.5\n", {}, "side has buy/sell values, which are ambiguous"),
    ("bybit_BTCUSDT_liq.csv", "timestamp,side,price,qty\n1704067200000,up,42000,0.5\n", {}, "side must be one of long, short; found up"),
    ("coinglass_depth_1d.csv", "date,symbol,range_pct,bids_usd,asks_usd\n2024-01-01,BTC,5,1,1\n", {}, "range_pct value(s) 5 are not depth bands (0.5, 1, 2 %)"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "content", "options", "message"), ERRORS, ids=[e[3][:40] for e in ERRORS])
def test_errors_say_why_in_one_line(tmp_path, name, content, options, message):
    with pytest.raises(ImportFormatError, match=re.escape(message)) as caught:
        read_import(write(tmp_path, name, content), **options)
    assert "\n" not in str(caught.value)


def test_explicit_options_win_over_the_filename(tmp_path):
    path = write(tmp_path, "binance_spot_BTCUSDT_1h.csv", OHLCV_CSV)
    frame = read_import(path, exchange="kraken", symbol="eth", timeframe="4h").frame
    assert frame.select("exchange", "symbol", "timeframe").unique().rows() == [("kraken", "ETH", "4h")]
