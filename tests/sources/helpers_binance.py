"""Offline ccxt clients, and Binance's REST API answered from the real data in ../shared/data.

`BinanceReplay` is assigned to `client.fetch` (ccxt's HTTP call: url, method, headers, body -> decoded
JSON), so ccxt's own request building, pagination parameters and parsing run on Binance-shaped
answers. `ScriptedSession` replaces `client.session` instead, so ccxt's own HTTP status handling runs
too (429, 451, 5xx, connection errors).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import ccxt
import polars as pl
import requests

from lib.schema import TIMEFRAMES

BTC_SPOT: dict[str, Any] = {
    "id": "BTCUSDT", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT", "baseId": "BTC", "quoteId": "USDT",
    "type": "spot", "spot": True, "margin": True, "swap": False, "future": False, "option": False,
    "contract": False, "active": True,
    "precision": {"amount": 0.00001, "price": 0.01},
    "limits": {"amount": {"min": 0.00001, "max": 9000.0}, "price": {"min": 0.01, "max": 1000000.0}},
}  # fmt: skip
BTC_PERP: dict[str, Any] = {
    "id": "BTCUSDT", "symbol": "BTC/USDT:USDT", "base": "BTC", "quote": "USDT", "settle": "USDT",
    "baseId": "BTC", "quoteId": "USDT", "settleId": "USDT",
    "type": "swap", "spot": False, "margin": False, "swap": True, "future": False, "option": False,
    "contract": True, "linear": True, "inverse": False, "contractSize": 1.0, "active": True,
    "precision": {"amount": 0.001, "price": 0.1},
    "limits": {"amount": {"min": 0.001, "max": 1000.0}, "price": {"min": 556.8, "max": 4529764.0}},
}  # fmt: skip

KLINE_FIELDS = (
    "open_time", "open", "high", "low", "close", "volume",
    "close_time", "quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume",
)  # fmt: skip
UNREAD_FIELDS = KLINE_FIELDS[7:]  # ccxt's linear kline parser stops at volume
KLINE_MAX_LIMIT = {"/api/v3/klines": 1000, "/fapi/v1/klines": 1500}  # Binance's documented caps
KLINE_DEFAULT_LIMIT = 500
FUNDING_PATH, FUNDING_MAX_LIMIT, FUNDING_DEFAULT_LIMIT = "/fapi/v1/fundingRate", 1000, 100
MS_PER_TIMEFRAME = {label: step // timedelta(milliseconds=1) for label, step in TIMEFRAMES.items()}


def offline_client(exchange_id: str, markets: list[dict[str, Any]]) -> ccxt.Exchange:
    """A ccxt client with its markets given, so load_markets() needs no network."""
    client = getattr(ccxt, exchange_id)({"enableRateLimit": True})
    client.set_markets(markets)
    return client


def _number(value: float) -> str:
    """Binance sends numbers as strings; repr round-trips the float exactly."""
    return repr(float(value))


def _window(frame: pl.DataFrame, column: str, query: dict[str, str], default_limit: int) -> pl.DataFrame:
    """Binance's range semantics: startTime <= t <= endTime, oldest first, at most `limit` rows
    (the newest `limit` when no startTime is given)."""
    limit = int(query.get("limit", default_limit))
    if "startTime" in query:
        frame = frame.filter(pl.col(column) >= int(query["startTime"]))
    if "endTime" in query:
        frame = frame.filter(pl.col(column) <= int(query["endTime"]))
    return frame.head(limit) if "startTime" in query else frame.tail(limit)


class BinanceReplay:
    """Answers Binance kline and funding requests for one market id from recorded frames.

    `klines`: columns open_time (ms), open, high, low, close, volume and, where recorded, close_time,
    quote_volume, count, taker_buy_volume, taker_buy_quote_volume. A column the file lacks is sent as
    Binance's "0" (ccxt reads only fields 0-5 of a linear kline). `funding`: funding_time, funding_rate.
    Unknown paths, another symbol or a limit over Binance's cap fail the test.
    """

    def __init__(self, market_id: str, klines: pl.DataFrame | None = None, funding: pl.DataFrame | None = None) -> None:
        self.market_id = market_id
        self.klines = klines
        self.funding = funding
        self.requests: list[dict[str, str]] = []

    def __call__(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        self.requests.append({"path": parts.path, **query})
        assert query.get("symbol") == self.market_id, f"asked for {query.get('symbol')}, replaying {self.market_id}"
        if parts.path in KLINE_MAX_LIMIT and self.klines is not None:
            assert int(query.get("limit", KLINE_DEFAULT_LIMIT)) <= KLINE_MAX_LIMIT[parts.path]
            return self._klines(query)
        if parts.path == FUNDING_PATH and self.funding is not None:
            assert int(query.get("limit", FUNDING_DEFAULT_LIMIT)) <= FUNDING_MAX_LIMIT
            rows = _window(self.funding, "funding_time", query, FUNDING_DEFAULT_LIMIT)
            return [
                {"symbol": self.market_id, "fundingTime": t, "fundingRate": _number(rate)}
                for t, rate in rows.select("funding_time", "funding_rate").iter_rows()
            ]
        raise AssertionError(f"the Binance replay does not serve {method} {url}")

    def _klines(self, query: dict[str, str]) -> list[list[Any]]:
        assert self.klines is not None
        step = MS_PER_TIMEFRAME[query["interval"]]
        rows = _window(self.klines, "open_time", query, KLINE_DEFAULT_LIMIT)
        absent = {"close_time": pl.col("open_time") + step - 1, **{column: pl.lit(0.0) for column in UNREAD_FIELDS}}
        full = rows.select(
            *KLINE_FIELDS[:6],
            *(pl.col(name) if name in rows.columns else absent[name].alias(name) for name in KLINE_FIELDS[6:]),
        )
        return [
            [t, *map(_number, (o, h, l, c, v)), close_time, _number(qv), int(n), _number(tb), _number(tbq), "0"]
            for t, o, h, l, c, v, close_time, qv, n, tb, tbq in full.iter_rows()
        ]


Answer = tuple[int, str] | Exception | Callable[[str], tuple[int, str]]


class ScriptedSession(requests.Session):
    """A requests session that answers from a script instead of the network.

    Each answer is (status, body), an exception to raise, or a function of the url giving
    (status, body). Answers are used in order; the last one repeats.
    """

    def __init__(self, *answers: Answer) -> None:
        super().__init__()
        self.answers = list(answers)
        self.urls: list[str] = []

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.urls.append(url)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        status, body = answer(url) if callable(answer) else answer
        response = requests.Response()
        response.status_code, response.reason, response.url = status, HTTPStatus(status).phrase, url
        response.headers["Content-Type"] = "application/json" if body.startswith(("{", "[")) else "text/html"
        response._content = body.encode()
        return response


def replayed(replay: BinanceReplay) -> Callable[[str], tuple[int, str]]:
    """A ScriptedSession answer that serves `replay` as a 200 JSON body."""
    return lambda url: (200, json.dumps(replay(url)))
