"""The Yahoo source against Yahoo's recorded HTTP answers (yfinance's own parsing runs), plus its pure parts."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from copy import deepcopy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pytest
import yfinance as yf
from curl_cffi import requests as curl_requests
from polars.testing import assert_frame_equal
from yfinance import cache as yf_cache
from yfinance.data import YfData

from lib.schema import BARS, TS, conform
from lib.sources import get_source
from lib.sources.base import EmptyResponse, RateLimited, SourceUnavailable
from lib.sources.yfinance import (
    INTRADAY_LOOKBACK,
    LOOKBACK_MARGIN,
    YahooSource,
    clamp_since,
    closed_within,
    normalize,
)

from .helpers_yahoo import YahooReplay

TICKER = "BTC-USD"
RECORDED = Path("fixtures/yahoo/chart-BTC-USD-2020-01-01-to-2020-01-03.json")
JAN_1, JAN_3, JAN_4 = (datetime(2020, 1, day, tzinfo=UTC) for day in (1, 3, 4))
BTC_FIRST_TRADE = 1410912000  # meta.firstTradeDate in the recorded answer


@pytest.fixture
def recorded(shared_data: Path) -> dict[str, Any]:
    """Yahoo's recorded answer to v8/finance/chart/BTC-USD, interval 1d, 2020-01-01 -> 2020-01-03."""
    return json.loads((shared_data / RECORDED).read_text())


@pytest.fixture
def yahoo(recorded: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[YahooReplay]:
    """Every curl_cffi request answered by the replay; yfinance's caches fresh and under tmp_path."""
    body = recorded["response"]["bodyJson"]
    replay = YahooReplay(TICKER, recorded=json.dumps(body).encode())
    replay.answer(recorded["response"]["status"], body)
    monkeypatch.setattr(curl_requests.Session, "request", replay)
    monkeypatch.setattr(yf_cache._TzCacheManager, "_tz_cache", None)
    monkeypatch.setattr(yf_cache._CookieCacheManager, "_Cookie_cache", None)
    yf.set_tz_cache_location(str(tmp_path))
    YfData.cache_get.cache_clear()  # yfinance's in-process answer cache outlives a test
    yield replay
    YfData.cache_get.cache_clear()
    assert replay.unexpected == []


def fetch_btc(since: datetime | None, until: datetime | None, timeframe: str = "1d") -> pl.DataFrame:
    return pl.concat(YahooSource().fetch("bars", "BTC", timeframe, since, until))


def expected_bars(body: dict[str, Any], rows: int) -> pl.DataFrame:
    """The first `rows` bars of a chart answer, read straight from its JSON."""
    result = body["chart"]["result"][0]
    quote = result["indicators"]["quote"][0]
    frame = pl.DataFrame(
        {
            TS: [datetime.fromtimestamp(t, UTC) for t in result["timestamp"]],
            **{name: quote[name] for name in ("open", "high", "low", "close")},
            "quote_volume": [float(v) for v in quote["volume"]],
        }
    ).head(rows)
    return conform(
        frame.with_columns(
            volume=pl.col("quote_volume") / pl.col("close"),
            volume_reliable=pl.lit(True),
            exchange=pl.lit("yfinance"),
            symbol=pl.lit("BTC"),
            timeframe=pl.lit("1d"),
        ),
        BARS,
    )


# --- replayed through yfinance -------------------------------------------------------------------


def test_daily_bars_are_the_recorded_rows(yahoo: YahooReplay, recorded: dict[str, Any]) -> None:
    bars = fetch_btc(JAN_1, JAN_4)

    assert bars[TS].to_list() == [datetime(2020, 1, day, tzinfo=UTC) for day in (1, 2, 3)]
    assert bars.row(0, named=True) | {"volume": None} == {
        "exchange": "yfinance", "symbol": "BTC", "timeframe": "1d", TS: JAN_1,
        "open": 7194.89208984375, "high": 7254.33056640625, "low": 7174.9443359375, "close": 7200.17431640625,
        "volume": None, "quote_volume": 18565664997.0, "trades": None, "taker_buy_volume": None,
        "volume_reliable": True,
    }  # fmt: skip
    assert_frame_equal(bars, expected_bars(recorded["response"]["bodyJson"], rows=3))
    assert bars["volume"][0] == pytest.approx(18565664997 / 7200.17431640625)


def test_request_asks_for_the_range_in_epoch_seconds(yahoo: YahooReplay) -> None:
    fetch_btc(JAN_1, JAN_4)

    (request,) = yahoo.chart_requests
    assert (request["period1"], request["period2"], request["interval"]) == (1577836800, 1578096000, "1d")


def test_until_is_exclusive(yahoo: YahooReplay, recorded: dict[str, Any]) -> None:
    # the recorded answer runs to 2020-01-03 inclusive; asking until then drops that bar
    assert_frame_equal(fetch_btc(JAN_1, JAN_3), expected_bars(recorded["response"]["bodyJson"], rows=2))


def test_no_since_asks_for_the_full_history(yahoo: YahooReplay) -> None:
    bars = fetch_btc(None, JAN_4)

    (request,) = yahoo.chart_requests
    assert request["period1"] < BTC_FIRST_TRADE and request["period2"] == 1578096000
    assert bars.height == 3


def test_naive_datetimes_are_utc(yahoo: YahooReplay) -> None:
    fetch_btc(datetime(2020, 1, 1), datetime(2020, 1, 4))

    assert yahoo.chart_requests[0]["period1"] == 1577836800


def without_rows(body: dict[str, Any]) -> dict[str, Any]:
    """The recorded answer with its bars taken out: what Yahoo sends for a range with no trading."""
    empty = deepcopy(body)
    result = empty["chart"]["result"][0]
    del result["timestamp"]
    result["indicators"] = {"quote": [{}], "adjclose": [{}]}
    return empty


# Yahoo's error object for a range it has no data for (hand-made in the shape yfinance parses).
NO_DATA = {"code": "Bad Request", "description": "Data doesn't exist for startDate = 1577836800, endDate = 1578096000"}
NO_DATA_ERROR = {"chart": {"result": None, "error": NO_DATA}}


def test_an_answer_without_rows_raises_empty_response(yahoo: YahooReplay, recorded: dict[str, Any]) -> None:
    yahoo.answer(200, without_rows(recorded["response"]["bodyJson"]))

    with pytest.raises(EmptyResponse, match="BTC-USD"):
        fetch_btc(JAN_1, JAN_4)


def test_yahoo_error_object_raises_empty_response_with_its_reason(yahoo: YahooReplay) -> None:
    yahoo.answer(400, NO_DATA_ERROR)

    with pytest.raises(EmptyResponse, match="Data doesn't exist"):
        fetch_btc(JAN_1, JAN_4)


def test_an_error_page_raises_source_unavailable(yahoo: YahooReplay) -> None:
    yahoo.answer(502, b"<html><body>502 Bad Gateway</body></html>")

    with pytest.raises(SourceUnavailable, match="not chart data") as caught:
        fetch_btc(JAN_1, JAN_4)
    assert "\n" not in str(caught.value)


def test_yahoo_down_page_raises_source_unavailable(yahoo: YahooReplay) -> None:
    yahoo.answer(503, b"<html>Will be right back...</html>")

    with pytest.raises(SourceUnavailable, match="DOWN"):
        fetch_btc(JAN_1, JAN_4)


def test_network_error_raises_source_unavailable(yahoo: YahooReplay) -> None:
    yahoo.fail(curl_requests.exceptions.ConnectionError("Failed to perform, curl: (7) Couldn't connect to server"))

    with pytest.raises(SourceUnavailable, match="BTC-USD.*Couldn't connect"):
        fetch_btc(JAN_1, JAN_4)


def test_http_429_raises_rate_limited(yahoo: YahooReplay) -> None:
    yahoo.answer(429, b"Too Many Requests")

    with pytest.raises(RateLimited, match="rate limiting"):
        fetch_btc(JAN_1, JAN_4)


def test_a_failure_is_not_served_again_from_yfinance_cache(yahoo: YahooReplay, recorded: dict[str, Any]) -> None:
    yahoo.answer(502, b"<html>Bad Gateway</html>")
    with pytest.raises(SourceUnavailable):
        fetch_btc(JAN_1, JAN_4)

    yahoo.answer(200, recorded["response"]["bodyJson"])
    assert fetch_btc(JAN_1, JAN_4).height == 3


def test_intraday_range_older_than_yahoo_keeps_raises_before_any_request(yahoo: YahooReplay) -> None:
    with pytest.raises(EmptyResponse, match="730 days"):
        fetch_btc(JAN_1, JAN_4, timeframe="1h")
    assert yahoo.chart_requests == []


# --- pure parts ----------------------------------------------------------------------------------


def yahoo_frame(index: list[str], close: list[float], volume: list[int], tz: str = "UTC") -> pd.DataFrame:
    """A frame shaped like yfinance's history(auto_adjust=False, actions=False)."""
    prices = {name: close for name in ("Open", "High", "Low", "Close", "Adj Close")}
    return pd.DataFrame({**prices, "Volume": volume}, index=pd.DatetimeIndex(index, name="Date").tz_localize(tz))


@pytest.mark.parametrize(
    ("case", "timeframe", "frame", "expected"),
    [
        (
            "daily_with_a_zero_volume_day", "1d",
            yahoo_frame(["2024-01-01", "2024-01-02"], close=[100.0, 200.0], volume=[0, 2_000_000]),
            {"volume": [0.0, 10_000.0], "quote_volume": [0.0, 2_000_000.0], "volume_reliable": [False, True]},
        ),
        (
            "intraday_is_never_reliable", "1h",
            yahoo_frame(["2024-01-01 00:00", "2024-01-01 01:00"], close=[100.0, 200.0], volume=[0, 2_000_000]),
            {"volume": [0.0, 10_000.0], "quote_volume": [0.0, 2_000_000.0], "volume_reliable": [False, False]},
        ),
        (
            "row_without_price_dropped", "1d",
            yahoo_frame(["2024-01-01", "2024-01-02"], close=[float("nan"), 50.0], volume=[10, 100]),
            {"volume": [2.0], "quote_volume": [100.0], "volume_reliable": [True]},
        ),
    ],
)  # fmt: skip
def test_normalize(case: str, timeframe: str, frame: pd.DataFrame, expected: dict[str, list[Any]]) -> None:
    bars = normalize(frame, "ETH", timeframe)

    assert bars.select(list(expected)).to_dict(as_series=False) == expected
    assert bars.schema == pl.Schema(BARS.schema)
    assert set(bars["symbol"]) == {"ETH"} and set(bars["exchange"]) == {"yfinance"}


def test_normalize_converts_ts_to_utc_and_leaves_its_input_alone() -> None:
    frame = yahoo_frame(["2024-01-01 19:00"], close=[1.0], volume=[1], tz="America/New_York")
    before = frame.copy()

    bars = normalize(frame, "SOL", "1h")

    assert bars[TS].to_list() == [datetime(2024, 1, 2, 0, 0, tzinfo=UTC)]
    pd.testing.assert_frame_equal(frame, before)


THREE_DAYS = ["2024-01-01", "2024-01-02", "2024-01-03"]


@pytest.mark.parametrize(
    ("case", "since", "until", "now", "expected_days"),
    [
        ("todays_bar_still_open", None, None, datetime(2024, 1, 3, 12, tzinfo=UTC), [1, 2]),
        ("all_closed", None, None, datetime(2024, 1, 4, tzinfo=UTC), [1, 2, 3]),
        ("since_inclusive_until_exclusive", datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 1, 3, tzinfo=UTC),
         datetime(2024, 2, 1, tzinfo=UTC), [2]),
    ],
)  # fmt: skip
def test_closed_within(
    case: str, since: datetime | None, until: datetime | None, now: datetime, expected_days: list[int]
) -> None:
    bars = normalize(yahoo_frame(THREE_DAYS, close=[1.0, 2.0, 3.0], volume=[1, 1, 1]), "BTC", "1d")

    kept = closed_within(bars, since, until, now)

    assert kept[TS].to_list() == [datetime(2024, 1, day, tzinfo=UTC) for day in expected_days]


NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("timeframe", "since", "until", "expected"),
    [
        ("1d", None, None, None),
        ("1d", datetime(2014, 1, 1, tzinfo=UTC), None, datetime(2014, 1, 1, tzinfo=UTC)),
        ("1h", None, None, NOW - INTRADAY_LOOKBACK["1h"] + LOOKBACK_MARGIN),
        ("5m", NOW - timedelta(days=1), None, NOW - timedelta(days=1)),
        ("1m", NOW - timedelta(days=30), NOW, NOW - timedelta(days=7) + LOOKBACK_MARGIN),
    ],
)
def test_clamp_since(timeframe: str, since: datetime | None, until: datetime | None, expected: datetime | None) -> None:
    assert clamp_since(timeframe, since, until, NOW) == expected


def test_clamp_since_says_when_it_moves_since(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="lib.sources.yfinance"):
        clamp_since("15m", NOW - timedelta(days=90), None, NOW)
    assert "last 60 days" in caplog.text


def test_clamp_since_refuses_a_range_entirely_before_the_limit() -> None:
    with pytest.raises(EmptyResponse, match="last 7 days"):
        clamp_since("1m", NOW - timedelta(days=30), NOW - timedelta(days=20), NOW)


def test_declared_capabilities_and_registry() -> None:
    source = get_source("yfinance")

    assert isinstance(source, YahooSource)
    assert (source.name, source.datasets) == ("yfinance", frozenset({"bars"}))
    assert {"1d", "1h", "1m", "5m", "15m", "30m"} == set(source.timeframes)
    assert source.market_id("SOL", "bars") == "SOL-USD"


@pytest.mark.parametrize(("dataset", "timeframe"), [("funding", "1d"), ("bars", "4h")])
def test_unsupported_requests_raise_before_any_request(dataset: str, timeframe: str) -> None:
    with pytest.raises(ValueError, match="yfinance offers bars"):
        next(YahooSource().fetch(dataset, "BTC", timeframe, None, None))
