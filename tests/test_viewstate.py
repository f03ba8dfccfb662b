"""View state in the query string: round trip, and every bad value falls back with a note."""

from __future__ import annotations

from datetime import date

import pytest

from lib.viewstate import Choices, View, choices_from_status, parse_view, view_params

CHOICES = Choices(("BTC", "ETH", "SOL"), ("binance", "bybit"), ("1h", "1d"), date(2018, 1, 1), date(2025, 12, 31))
DEFAULT = CHOICES.default()


def test_default_is_the_last_year_of_the_first_choices() -> None:
    assert DEFAULT == View(("BTC", "ETH", "SOL"), "binance", "1h", date(2024, 12, 31), date(2025, 12, 31))


def test_round_trip() -> None:
    view = View(("SOL", "BTC"), "bybit", "1d", date(2024, 1, 1), date(2024, 6, 30), "cme")
    assert parse_view(view_params(view), CHOICES) == (view, [])


@pytest.mark.parametrize(
    ("params", "expected", "note"),
    [
        ({"assets": "DOGE"}, DEFAULT, "unknown asset"),
        ({"assets": ""}, DEFAULT, "empty 'assets'"),
        ({"assets": " , "}, DEFAULT, "empty 'assets'"),
        ({"exchange": "", "start": " "}, DEFAULT, "empty 'start'"),
        ({"assets": "btc,DOGE"}, View(("BTC",), "binance", "1h", DEFAULT.start, DEFAULT.end), "unknown asset"),
        ({"exchange": "'; DROP TABLE x;--"}, DEFAULT, "unknown exchange"),
        ({"timeframe": "7q"}, DEFAULT, "unknown timeframe"),
        ({"weekend": "<script>"}, DEFAULT, "unknown weekend"),
        ({"start": "2024-13-45"}, DEFAULT, "unreadable start"),
        ({"start": "x" * 10_000}, DEFAULT, "overlong"),
        ({"start": "2025-06-01", "end": "2025-01-01"}, View(DEFAULT.assets, "binance", "1h", date(2025, 1, 1), date(2025, 6, 1)), "reversed"),
        ({"start": "1900-01-01", "end": "2100-01-01"}, View(DEFAULT.assets, "binance", "1h", date(2018, 1, 1), date(2025, 12, 31)), "cached range"),
        ({"start": "2030-01-01", "end": "2031-01-01"}, DEFAULT, "cached range"),
        ({"assets": ["ETH", "SOL"]}, View(("SOL",), "binance", "1h", DEFAULT.start, DEFAULT.end), ""),
    ],
)
def test_bad_values_fall_back_with_a_note(params: dict, expected: View, note: str) -> None:
    view, notes = parse_view(params, CHOICES)
    assert view == expected
    assert note in " ".join(notes)
    assert bool(notes) == bool(note)


def test_choices_from_the_manifest() -> None:
    entries = [
        {"dataset": "bars", "exchange": "yfinance", "symbol": "BTC", "timeframe": "1d", "rows": 10,
         "first_ts": "2014-09-17T00:00:00Z", "last_ts": "2024-12-31T00:00:00Z"},
        {"dataset": "bars", "exchange": "binance", "symbol": "ETH", "timeframe": "1h", "rows": 70_000,
         "first_ts": "2018-01-01T00:00:00Z", "last_ts": "2025-12-31T23:00:00Z"},
        {"dataset": "funding", "exchange": "binanceusdm", "symbol": "BTC", "timeframe": "8h", "rows": 5,
         "first_ts": "2019-01-01T00:00:00Z", "last_ts": "2026-01-01T00:00:00Z"},
    ]
    assert choices_from_status(entries) == Choices(
        ("BTC", "ETH"), ("binance", "yfinance"), ("1h", "1d"), date(2014, 9, 17), date(2025, 12, 31)
    )
    assert choices_from_status(entries[2:]) is None
    assert choices_from_status(entries, preferred_exchange="yfinance").exchanges == ("yfinance", "binance")
