"""The ccxt source against Binance's API replayed from real klines and funding (ccxt's own request
building, paging parameters and parsing run), its error mapping through ccxt's HTTP handling, and
its pure parts (depth from a book, frames from ccxt structures, paging)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import ccxt
import polars as pl
import pytest
import requests
from polars.testing import assert_frame_equal

from lib.schema import BARS, DEPTH, SNAPSHOT, TS, depth_column
from lib.sources import CCXT_EXCHANGES, get_source
from lib.sources.base import EmptyResponse, GeoBlocked, RateLimited, SourceError, SourceUnavailable
from lib.sources.ccxt import (
    BACKOFF_SECONDS,
    MAX_ATTEMPTS,
    TIMEOUT_MS,
    CcxtSource,
    classify,
    depth_frame,
    liquidations_frame,
    open_interest_frame,
    paginate,
)
from lib.sources.orderbook import depth_from_order_book

from .helpers_binance import BTC_PERP, BTC_SPOT, BinanceReplay, ScriptedSession, offline_client, replayed

SPOT_KLINES = Path("ohlcv/binance_spot_BTCUSDT_1h.parquet")
PERP_KLINES = Path("ohlcv/binance_usdm_BTCUSDT_1h.parquet")
PERP_FUNDING = Path("derivatives/binance_usdm_BTCUSDT_funding_rate.parquet")
HOUR_MS = 3_600_000
CANDLE = (TS, "open", "high", "low", "close", "volume")  # what ccxt's unified candle carries


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class Sleeps(list[float]):
    """An injected sleep that records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def spot_klines(shared_data: Path) -> pl.DataFrame:
    return pl.read_parquet(shared_data / SPOT_KLINES)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def binance_spot(replay: BinanceReplay | None, sleeps: Sleeps) -> CcxtSource:
    """Binance spot with its HTTP call answered by `replay`."""
    client = offline_client("binance", [BTC_SPOT])
    if replay is not None:
        client.fetch = replay
    return CcxtSource("binance", client=client, sleep=sleeps)


def recorded_bars(klines: pl.DataFrame, since: datetime, until: datetime) -> pl.DataFrame:
    """The parquet's rows with since <= open time < until, in the columns ccxt's candle carries."""
    open_time = pl.from_epoch("open_time", time_unit="ms").dt.replace_time_zone("UTC").dt.cast_time_unit("us")
    return klines.filter(pl.col("open_time").is_between(ms(since), ms(until), closed="left")).select(
        open_time.alias(TS), *CANDLE[1:]
    )


def fetch_all(
    source: CcxtSource, dataset: str, since: datetime | None, until: datetime | None, timeframe: str = "1h"
) -> list[pl.DataFrame]:
    return list(source.fetch(dataset, "BTC", timeframe, since, until))


# --- klines replayed -----------------------------------------------------------------------------


def test_multi_page_klines_are_the_recorded_rows(spot_klines: pl.DataFrame, sleeps: Sleeps) -> None:
    replay = BinanceReplay("BTCUSDT", klines=spot_klines)
    since, until = utc(2024, 1, 1), utc(2024, 3, 1)

    pages = fetch_all(binance_spot(replay, sleeps), "bars", since, until)
    bars = pl.concat(pages)

    assert [page.height for page in pages] == [1000, 440]
    assert (bars[TS][0], bars[TS][-1]) == (since, utc(2024, 2, 29, 23))
    assert not bars[TS].is_duplicated().any()
    assert_frame_equal(bars.select(CANDLE), recorded_bars(spot_klines, since, until))
    assert bars.row(0, named=True) == {
        "exchange": "binance", "symbol": "BTC", "timeframe": "1h", TS: since,
        "open": 42283.58, "high": 42554.57, "low": 42261.02, "close": 42475.23, "volume": 1271.68108,
        "quote_volume": None, "trades": None, "taker_buy_volume": None, "volume_reliable": True,
    }  # fmt: skip
    assert bars.schema == pl.Schema(BARS.schema)
    assert sleeps == []


def test_pages_ask_binance_for_one_window_each(spot_klines: pl.DataFrame, sleeps: Sleeps) -> None:
    replay = BinanceReplay("BTCUSDT", klines=spot_klines)

    fetch_all(binance_spot(replay, sleeps), "bars", utc(2024, 1, 1), utc(2024, 3, 1))

    first, second = replay.requests
    start = ms(utc(2024, 1, 1))
    assert first == {"path": "/api/v3/klines", "symbol": "BTCUSDT", "interval": "1h", "limit": "1000",
                     "startTime": str(start), "endTime": str(start + 1000 * HOUR_MS - 1)}  # fmt: skip
    assert int(second["startTime"]) == start + 1000 * HOUR_MS  # the bar after the last one received
    assert int(second["endTime"]) == ms(utc(2024, 3, 1)) - 1


def test_resuming_from_a_later_since_gives_the_rest(spot_klines: pl.DataFrame, sleeps: Sleeps) -> None:
    replay = BinanceReplay("BTCUSDT", klines=spot_klines)
    last_stored, until = utc(2024, 2, 10, 13), utc(2024, 3, 1)

    bars = pl.concat(fetch_all(binance_spot(replay, sleeps), "bars", last_stored, until))

    assert_frame_equal(bars.select(CANDLE), recorded_bars(spot_klines, last_stored, until))
    assert len(replay.requests) == 1


def test_the_still_open_candle_is_left_out(spot_klines: pl.DataFrame, sleeps: Sleeps) -> None:
    source = binance_spot(BinanceReplay("BTCUSDT", klines=spot_klines), sleeps)
    source.client.milliseconds = lambda: ms(utc(2024, 1, 1, 5, 30))  # the 05:00 bar is still open

    bars = pl.concat(fetch_all(source, "bars", utc(2024, 1, 1), None))

    assert bars[TS].to_list() == [utc(2024, 1, 1, hour) for hour in range(5)]


def test_perp_klines_come_from_the_futures_api(shared_data: Path, sleeps: Sleeps) -> None:
    klines = pl.read_parquet(shared_data / PERP_KLINES)
    replay = BinanceReplay("BTCUSDT", klines=klines)
    client = offline_client("binanceusdm", [BTC_PERP])
    client.fetch = replay
    since, until = utc(2024, 1, 1), utc(2024, 2, 1)

    bars = pl.concat(fetch_all(CcxtSource("binanceusdm", client=client, sleep=sleeps), "bars", since, until))

    assert {r["path"] for r in replay.requests} == {"/fapi/v1/klines"}
    assert len(replay.requests) == 2  # ccxt declares 500 candles per request for Binance perps
    assert_frame_equal(bars.select(CANDLE), recorded_bars(klines, since, until))


def test_a_range_with_no_klines_raises_empty_response(spot_klines: pl.DataFrame, sleeps: Sleeps) -> None:
    source = binance_spot(BinanceReplay("BTCUSDT", klines=spot_klines), sleeps)

    with pytest.raises(EmptyResponse, match="binance returned no bars for BTC/USDT 1h"):
        fetch_all(source, "bars", utc(2016, 1, 1), utc(2016, 1, 10))  # the recorded klines start in 2018


def test_a_symbol_the_exchange_does_not_list_raises_source_error(sleeps: Sleeps) -> None:
    with pytest.raises(SourceError, match="lists no market ETH/USDT"):
        list(binance_spot(None, sleeps).fetch("bars", "ETH", "1h", utc(2024, 1, 1), utc(2024, 1, 2)))


# --- funding replayed ----------------------------------------------------------------------------


def test_funding_history_is_the_recorded_rows(shared_data: Path, sleeps: Sleeps) -> None:
    funding = pl.read_parquet(shared_data / PERP_FUNDING)
    replay = BinanceReplay("BTCUSDT", funding=funding)
    client = offline_client("binanceusdm", [BTC_PERP])
    client.fetch = replay
    since, until = utc(2023, 1, 1), utc(2024, 6, 1)

    pages = fetch_all(CcxtSource("binanceusdm", client=client, sleep=sleeps), "funding", since, until)
    rates = pl.concat(pages)

    expected = funding.filter(pl.col("funding_time").is_between(ms(since), ms(until), closed="left"))
    assert [page.height for page in pages] == [1000, expected.height - 1000]
    assert {r["path"] for r in replay.requests} == {"/fapi/v1/fundingRate"}
    assert rates["funding_rate"].to_list() == expected["funding_rate"].to_list()
    assert rates[TS].to_list() == [datetime.fromtimestamp(t / 1000, UTC) for t in expected["funding_time"]]
    assert set(rates["timeframe"]) == {"8h"} and rates[TS][0] == since


# --- errors through ccxt's own HTTP handling -----------------------------------------------------

# Hand-made bodies in the venues' shapes.
RESTRICTED = (
    '{"code":0,"msg":"Service unavailable from a restricted location according to \'b. Eligibility\' in '
    "https://www.binance.com/en/terms. Please contact customer service if you believe you received this "
    'message in error."}'
)
TOO_MANY = '{"code":-1003,"msg":"Too many requests; current limit of IP is 6000 requests per minute."}'
CLOUDFRONT_BLOCK = (
    "<html><body><h1>403 ERROR</h1>The Amazon CloudFront distribution is configured to block access from your "
    "country.</body></html>"
)


def scripted(
    exchange_id: str, market: dict[str, Any], sleeps: Sleeps, *answers: Any
) -> tuple[CcxtSource, ScriptedSession]:
    """A source whose client's HTTP session answers from a script (ccxt's own status handling runs)."""
    client = offline_client(exchange_id, [market])
    session = ScriptedSession(*answers)
    client.session = session
    return CcxtSource(exchange_id, client=client, sleep=sleeps), session


def one_day(source: CcxtSource) -> list[pl.DataFrame]:
    return fetch_all(source, "bars", utc(2024, 1, 1), utc(2024, 1, 2))


def test_a_network_error_is_retried(spot_klines: pl.DataFrame, sleeps: Sleeps) -> None:
    replay = BinanceReplay("BTCUSDT", klines=spot_klines)
    reset = requests.ConnectionError("Connection reset by peer")
    source, session = scripted("binance", BTC_SPOT, sleeps, reset, replayed(replay))

    bars = pl.concat(one_day(source))

    assert bars.height == 24 and len(session.urls) == 2
    assert sleeps == [BACKOFF_SECONDS]


def test_a_lasting_network_error_raises_source_unavailable(sleeps: Sleeps) -> None:
    source, session = scripted("binance", BTC_SPOT, sleeps, requests.ConnectionError("Connection refused"))

    with pytest.raises(SourceUnavailable, match=f"binance did not answer after {MAX_ATTEMPTS} attempts"):
        one_day(source)
    assert len(session.urls) == MAX_ATTEMPTS
    assert sleeps == [BACKOFF_SECONDS * 2**n for n in range(MAX_ATTEMPTS - 1)]


def test_a_server_error_is_retried_then_raises_source_unavailable(sleeps: Sleeps) -> None:
    source, session = scripted("binance", BTC_SPOT, sleeps, (503, "Service Unavailable"))

    with pytest.raises(SourceUnavailable):
        one_day(source)
    assert len(session.urls) == MAX_ATTEMPTS


def test_http_429_raises_rate_limited_after_retries(sleeps: Sleeps) -> None:
    source, session = scripted("binance", BTC_SPOT, sleeps, (429, TOO_MANY))

    with pytest.raises(RateLimited, match="rate limiting"):
        one_day(source)
    assert len(session.urls) == MAX_ATTEMPTS


def test_http_451_raises_geo_blocked_naming_alternatives(sleeps: Sleeps) -> None:
    source, session = scripted("binance", BTC_SPOT, sleeps, (451, RESTRICTED))

    with pytest.raises(GeoBlocked) as caught:
        one_day(source)
    message = str(caught.value)
    assert "HTTP 451" in message and "bybit or okx" in message and "python -m lib import" in message
    assert "\n" not in message
    assert len(session.urls) == 1 and sleeps == []  # refusing a location is not worth retrying


def test_bybit_403_is_geo_blocked_when_it_names_the_country(sleeps: Sleeps) -> None:
    perp = BTC_PERP | {"info": {"symbol": "BTCUSDT"}}
    source, _ = scripted("bybit", perp, sleeps, (403, CLOUDFRONT_BLOCK))

    with pytest.raises(GeoBlocked, match="okx or binance"):
        one_day(source)


def test_bybit_403_without_a_country_is_its_rate_limit(sleeps: Sleeps) -> None:
    perp = BTC_PERP | {"info": {"symbol": "BTCUSDT"}}
    source, session = scripted("bybit", perp, sleeps, (403, "<html>403 Forbidden</html>"))

    with pytest.raises(RateLimited):
        one_day(source)
    assert len(session.urls) == MAX_ATTEMPTS


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ccxt.NetworkError("binance GET https://api.binance.com/api/v3/klines"), SourceUnavailable),
        (ccxt.RequestTimeout("binance GET https://api.binance.com/api/v3/klines"), SourceUnavailable),
        (ccxt.OnMaintenance("okx system upgrade"), SourceUnavailable),
        (ccxt.RateLimitExceeded("okx 50011 Too Many Requests"), RateLimited),
        (ccxt.BadSymbol("binance does not have market symbol DOGE/USDT"), SourceError),
    ],
)
def test_classify(error: ccxt.BaseError, expected: type[SourceError]) -> None:
    assert classify(error) is expected


# --- depth ---------------------------------------------------------------------------------------

# Hand-made: mid 100, spread 1 (100 bps); levels at 0.5 %, 1 %, 2 % and 4 % from mid on each side.
BOOK = {
    "bids": [[99.5, 2.0], [99.0, 1.0], [98.0, 10.0], [96.0, 5.0]],
    "asks": [[100.5, 1.0], [101.0, 3.0], [102.5, 4.0], [104.0, 2.0]],
}
BOOK_ROW = {
    "mid": 100.0, "spread_bps": 100.0,
    depth_column("bid", 0.5): 199.0, depth_column("ask", 0.5): 100.5,  # 99.5*2 | 100.5*1
    depth_column("bid", 1.0): 298.0, depth_column("ask", 1.0): 403.5,  # + 99*1 | + 101*3
    depth_column("bid", 2.0): 1278.0, depth_column("ask", 2.0): 403.5,  # + 98*10 | 102.5 is beyond 102
}  # fmt: skip
NOON = utc(2024, 3, 1, 12)


def values(frame: pl.DataFrame) -> dict[str, Any]:
    return {k: v for k, v in frame.row(0, named=True).items() if k != TS}


SHUFFLED_WITH_COUNTS = {side: [[*level, 7] for level in reversed(levels)] for side, levels in BOOK.items()}
ASKS_CUT_SHORT = {"bids": BOOK["bids"], "asks": BOOK["asks"][:2]}  # the last ask is 1 % from mid
IN_HUNDREDTHS = {name: value if name in ("mid", "spread_bps") else value * 0.01 for name, value in BOOK_ROW.items()}


@pytest.mark.parametrize(
    ("case", "book", "contract_size", "expected"),
    [
        ("hand_computed", BOOK, 1.0, BOOK_ROW),
        ("levels_in_any_order_with_counts", SHUFFLED_WITH_COUNTS, 1.0, BOOK_ROW),
        ("contracts_of_a_hundredth", BOOK, 0.01, IN_HUNDREDTHS),
        ("asks_cut_before_2pct", ASKS_CUT_SHORT, 1.0, BOOK_ROW | {depth_column("ask", 2.0): None}),
    ],
)
def test_depth_from_order_book(case: str, book: dict[str, Any], contract_size: float, expected: dict[str, Any]) -> None:
    row = values(depth_from_order_book(book, NOON, contract_size=contract_size))

    assert row == pytest.approx(expected)


def test_depth_from_an_empty_side_raises() -> None:
    with pytest.raises(ValueError, match="0 ask levels"):
        depth_from_order_book({"bids": BOOK["bids"], "asks": []}, NOON)


def test_depth_frame_is_one_snapshot_row() -> None:
    frame = depth_frame(BOOK, ms(NOON), "okx", "BTC")

    assert frame.schema == pl.Schema(DEPTH.schema)
    assert frame.select("exchange", "symbol", "timeframe", TS).row(0) == ("okx", "BTC", SNAPSHOT, NOON)


def test_depth_fetch_reads_the_book_through_ccxt(sleeps: Sleeps) -> None:
    # hand-made book in Binance's /api/v3/depth shape
    answer = {"lastUpdateId": 1, **{side: [[str(p), str(q)] for p, q in levels] for side, levels in BOOK.items()}}
    asked: list[str] = []
    client = offline_client("binance", [BTC_SPOT])
    client.fetch = lambda url, method="GET", headers=None, body=None: asked.append(url) or answer
    client.milliseconds = lambda: ms(NOON)

    (frame,) = fetch_all(CcxtSource("binance", client=client, sleep=sleeps), "depth", None, None)

    assert "/api/v3/depth" in asked[0] and "limit=5000" in asked[0]
    assert frame[TS][0] == NOON and values(frame.drop("exchange", "symbol", "timeframe")) == pytest.approx(BOOK_ROW)


# --- open interest and liquidations --------------------------------------------------------------


def test_binance_open_interest_starts_within_its_30_days(sleeps: Sleeps, caplog: pytest.LogCaptureFixture) -> None:
    now = utc(2026, 5, 1, 0, 30)
    asked: list[str] = []

    def open_interest_hist(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> list[dict]:
        asked.append(url)  # the first window starts with two hand-made rows; the later ones are empty
        start = int(dict(parse_qsl(urlsplit(url).query))["startTime"])
        row = {"symbol": "BTCUSDT", "sumOpenInterest": "80000.5", "sumOpenInterestValue": "6400040000.0"}
        return [row | {"timestamp": t} for t in (start, start + HOUR_MS)] if len(asked) == 1 else []

    client = offline_client("binanceusdm", [BTC_PERP])
    client.fetch = open_interest_hist
    client.milliseconds = lambda: ms(now)
    with caplog.at_level(logging.WARNING, logger="lib.sources.ccxt"):
        source = CcxtSource("binanceusdm", client=client, sleep=sleeps)
        frames = fetch_all(source, "open_interest", now - timedelta(days=90), now)

    earliest = now - timedelta(days=30) + timedelta(hours=1)
    assert "/futures/data/openInterestHist" in asked[0] and f"startTime={ms(earliest)}" in asked[0]
    assert "last 30 days" in caplog.text
    assert len(asked) == 3  # 30 days in windows of 500 hours, the second resuming after the rows received
    first = frames[0].row(0, named=True)
    assert (first[TS], first["timeframe"]) == (earliest, "1h")
    assert (first["open_interest"], first["open_interest_usd"]) == (80000.5, 6400040000.0)


def test_open_interest_frame_in_base_units() -> None:
    rows = [  # OKX-like: amounts in contracts of 0.01 BTC; ccxt gives baseVolume on the first only
        {"timestamp": ms(NOON), "baseVolume": 3.0, "openInterestAmount": 300.0, "openInterestValue": 210_000.0},
        {"timestamp": ms(NOON) + HOUR_MS, "openInterestAmount": 400.0, "openInterestValue": 280_000.0},
    ]

    frame = open_interest_frame(rows, "okx", "BTC", "1h", contract_size=0.01)

    assert frame["open_interest"].to_list() == [3.0, 4.0]
    assert frame["open_interest_usd"].to_list() == [210_000.0, 280_000.0]


def test_liquidations_frame_names_the_liquidated_position() -> None:
    # ccxt's gate parser: side "buy" when the liquidated position was long
    rows = [
        {"timestamp": ms(NOON), "side": "buy", "price": 60_000.0, "baseValue": 0.5, "quoteValue": 30_000.0},
        {"timestamp": ms(NOON) + 1, "side": "sell", "price": 61_000.0, "baseValue": 2.0, "quoteValue": None},
        {"timestamp": ms(NOON) + 2, "side": None, "price": 61_000.0, "baseValue": 1.0, "quoteValue": None},
    ]

    frame = liquidations_frame(rows, "gate", "BTC", {"buy": "long", "sell": "short"})

    assert frame.select("side", "qty", "notional_usd", "sampled", "timeframe").rows() == [
        ("long", 0.5, 30_000.0, False, "event"),
        ("short", 2.0, 122_000.0, False, "event"),
    ]


# --- declared capabilities and paging ------------------------------------------------------------


@pytest.mark.parametrize(
    ("exchange_id", "expected"),
    [
        ("binance", {"bars", "depth"}),
        ("binanceusdm", {"bars", "funding", "open_interest", "depth"}),
        ("bybit", {"bars", "funding", "open_interest", "depth"}),
        ("okx", {"bars", "funding", "open_interest", "depth"}),
        ("gate", {"bars", "funding", "open_interest", "liquidations", "depth"}),
    ],
)
def test_declared_datasets(exchange_id: str, expected: set[str]) -> None:
    source = get_source(exchange_id) if exchange_id in CCXT_EXCHANGES else CcxtSource(exchange_id)

    assert (source.name, source.datasets) == (exchange_id, frozenset(expected))
    assert {"1m", "1h", "1d"} <= set(source.timeframes)
    assert source.client.enableRateLimit and source.client.timeout == TIMEOUT_MS


def test_market_id_is_the_exchange_id_once_markets_are_loaded() -> None:
    assert CcxtSource("bybit").market_id("ETH", "bars") == "ETH/USDT:USDT"
    assert CcxtSource("binance", client=offline_client("binance", [BTC_SPOT])).market_id("BTC", "bars") == "BTCUSDT"


def test_unsupported_requests_raise_value_error(sleeps: Sleeps) -> None:
    source = binance_spot(None, sleeps)
    with pytest.raises(ValueError, match="not funding"):
        fetch_all(source, "funding", None, None)
    with pytest.raises(ValueError, match="not 7m"):
        fetch_all(source, "bars", None, None, timeframe="7m")


def test_paginate_skips_an_empty_window_and_resumes_after_a_short_page() -> None:
    rows = [0, 1, 2, 10, 11]  # a gap from 3 to 9
    calls: list[tuple[int, int]] = []

    def call(since: int, last: int) -> list[int]:
        calls.append((since, last))
        return [r for r in rows if since <= r <= last][:2]  # two rows per answer at most

    pages = list(paginate(call, start=0, end=12, span=3, ts=lambda r: r))

    assert pages == [[0, 1], [2], [10, 11]]
    assert calls == [(0, 2), (2, 4), (3, 5), (6, 8), (9, 11)]
