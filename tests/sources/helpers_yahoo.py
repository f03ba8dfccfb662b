"""A stand-in for Yahoo Finance's HTTP API, installed as curl_cffi's Session.request.

yfinance 1.7 sends every request through a curl_cffi Session (libcurl, so the socket guard in
conftest never sees it). Replacing Session.request on the class answers all of them here, so
yfinance's own cookie/crumb handshake, URL building and JSON parsing run on the recorded answer.
A request this stand-in does not know is recorded in `unexpected` and fails.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from curl_cffi.requests import Response

# Hosts and paths of yfinance's cookie/crumb handshake (see yfinance/data.py).
HANDSHAKE_HOSTS = frozenset({"fc.yahoo.com", "guce.yahoo.com", "consent.yahoo.com"})
CRUMB_PATH = "/v1/test/getcrumb"
CRUMB = "replayed-crumb"
CHART_PATH = "/v8/finance/chart/"


class UnexpectedRequest(AssertionError):
    """yfinance asked for something the replay does not serve."""


def response(url: str, status: int, body: bytes, content_type: str = "application/json;charset=utf-8") -> Response:
    """A curl_cffi Response as libcurl would have filled it."""
    answer = Response()
    answer.url = url
    answer.status_code = status
    answer.ok = status < 400
    answer.reason = "OK" if answer.ok else "Error"
    answer.headers["content-type"] = content_type
    answer.content = body
    return answer


@dataclass
class YahooReplay:
    """Serves chart requests for `ticker` with `status`/`body` (or raises `error`).

    yfinance first probes the ticker's timezone with a chart request for range=1d; that probe is
    always answered with `recorded` (a real chart answer), so every scenario tests the bar request.
    """

    ticker: str
    recorded: bytes
    status: int = 200
    body: bytes = b""
    error: Exception | None = None
    chart_requests: list[dict[str, Any]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def answer(self, status: int, body: dict[str, Any] | bytes) -> None:
        """Serve the next bar requests with `status` and `body` (a dict is sent as JSON)."""
        self.status, self.error = status, None
        self.body = json.dumps(body).encode() if isinstance(body, dict) else body

    def fail(self, error: Exception) -> None:
        """Raise `error` on the next bar requests, as libcurl would on a network failure."""
        self.error = error

    def __call__(self, method: str, url: str, params: dict[str, Any] | None = None, **_: Any) -> Response:
        parts = urlsplit(url)
        if parts.hostname in HANDSHAKE_HOSTS:
            return response(url, 200, b"", content_type="text/html")
        if parts.path == CRUMB_PATH:
            return response(url, 200, CRUMB.encode(), content_type="text/plain")
        if parts.path == f"{CHART_PATH}{self.ticker}":
            params = dict(params or {})
            if "range" in params:  # the timezone probe
                return response(url, 200, self.recorded)
            self.chart_requests.append(params)
            if self.error is not None:
                raise self.error
            return response(url, self.status, self.body)
        self.unexpected.append(f"{method} {url}")
        raise UnexpectedRequest(f"the Yahoo replay does not serve {method} {url}")
