"""The provenance badge: which series, coverage, gaps per chart, sampled feeds, measured or estimated, demo."""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl
import pytest

from lib.analytics.liquidations import SAMPLED_NOTE
from lib.provenance import DEMO_PREFIX, ESTIMATED, MEASURED, chart_provenance, sources_between
from lib.views import drawn_rows

LO, HI = datetime(2025, 1, 1, tzinfo=timezone.utc), datetime(2025, 1, 3, tzinfo=timezone.utc)


def entry(dataset: str, symbol: str, gaps: list[tuple[str, str]] = (), exchange: str = "binance") -> dict:
    return {"dataset": dataset, "exchange": exchange, "symbol": symbol, "timeframe": "1h", "source": f"{exchange}-rest",
            "fetched_at": "2025-01-04T08:30:00+00:00", "gaps": [{"start": s, "end": e} for s, e in gaps]}


STATUS = [
    entry("bars", "BTC", [("2025-01-01T05:00:00+00:00", "2025-01-01T07:00:00+00:00")]),
    entry("bars", "ETH", [("2024-06-01T00:00:00+00:00", "2024-06-01T02:00:00+00:00")]),  # outside the range
    entry("liquidations", "BTC", exchange="binanceusdm"),
]


def rows(symbols: tuple[str, ...], exchange: str = "binance", **extra: object) -> pl.DataFrame:
    ts = [LO, datetime(2025, 1, 2, 23, tzinfo=timezone.utc)]
    return pl.DataFrame([{"exchange": exchange, "symbol": s, "timeframe": "1h", "ts": t, **extra}
                         for s in symbols for t in ts])


@pytest.mark.parametrize(
    ("inputs", "is_demo", "estimated", "says", "never"),
    [
        ([("bars", rows(("BTC",)))], False, False,
         ["Data: binance bars 1h (from binance-rest); covers 2025-01-01 00:00 to 2025-01-02 23:00 UTC; 1 gap(s) in range",
          "cached 2025-01-04 08:30 UTC.", MEASURED], [DEMO_PREFIX.strip(), ESTIMATED]),
        ([("bars", rows(("ETH",)))], False, False, ["0 gap(s) in range"], []),  # ETH's own gaps, not BTC's
        ([("bars", rows(("BTC", "ETH")))], True, False, [DEMO_PREFIX.strip(), "1 gap(s)"], [MEASURED]),
        ([("bars", rows(("BTC",))), ("liquidations", rows(("BTC",), "binanceusdm", sampled=True))], False, True,
         ["binanceusdm liquidations 1h", SAMPLED_NOTE, ESTIMATED], [MEASURED]),
        ([("liquidations", rows(("BTC",), "binanceusdm", sampled=False))], False, False, [MEASURED], [SAMPLED_NOTE]),
        ([("bars", rows(("BTC",))), ("open_interest", rows(("BTC",)).clear())], False, True,
         ["No open_interest rows cached in this range.", ESTIMATED], ["nothing cached"]),
    ],
)
def test_chart_provenance(inputs: list, is_demo: bool, estimated: bool, says: list[str], never: list[str]) -> None:
    text = chart_provenance(STATUS, inputs, LO, HI, is_demo, estimated)
    assert all(part in text for part in says), text
    assert not any(part in text for part in never), text
    assert text.startswith(DEMO_PREFIX.strip()) == is_demo


@pytest.mark.parametrize(("figure", "symbols"), [("drawdown_BTC", {"BTC"}), ("episodes", {"BTC", "ETH"}),
                                                   ("hour_of_week_ETH", {"ETH"}), ("drawdown_DOGE", {"BTC", "ETH"})])
def test_a_per_asset_figure_draws_its_asset_only(figure: str, symbols: set[str]) -> None:
    assert set(drawn_rows(figure, rows(("BTC", "ETH")))["symbol"]) == symbols


SPANS = {"source": "rest", "spans": [  # REST over 2018-2026, then the archive over 2018-2025 (it wins there)
    {"source": "rest", "first_ts": "2018-01-01T00:00:00Z", "last_ts": "2026-05-16T18:00:00Z"},
    {"source": "archive", "first_ts": "2018-01-01T00:00:00Z", "last_ts": "2025-12-31T23:00:00Z"},
]}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("first", "last", "sources"),
    [
        (utc(2026, 1, 5), utc(2026, 2, 27), ["rest"]),  # after the archive: the REST's rows
        (utc(2024, 1, 1), utc(2025, 12, 31, 23), ["archive"]),  # the archive replaced the REST's rows
        (utc(2025, 6, 1), utc(2026, 3, 1), ["archive", "rest"]),
        (utc(2017, 1, 1), utc(2017, 2, 1), ["rest"]),  # outside every span: the entry's source
    ],
)
def test_sources_between_names_whose_rows_are_in_the_range(first: datetime, last: datetime, sources: list[str]) -> None:
    assert sources_between(SPANS, first, last) == sources


def test_the_badge_names_the_source_of_the_rows_drawn() -> None:
    status = [STATUS[0] | SPANS]
    text = chart_provenance(status, [("bars", rows(("BTC",)))], LO, HI, is_demo=False)  # 2025-01-01 to 01-02
    assert "(from archive)" in text, text
