"""Alert thresholds: each rule on hand-made rows (crossed at the limit itself, not checked where the
figure is not cached), and `python -m lib alerts` on a cache built from ../shared/data, against the
weekend brief's figures for the same moment."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from lib import alerts, brief
from lib import overview as ov
from lib.cli import ALERT_OPTIONS, ALERTS_CROSSED, main
from lib.schema import SYMBOL
from lib.sources.files import read_import
from lib.store import Store
from lib.viewstate import View
from tests.test_overview import recent_cache  # noqa: F401  (the fixture)

CASCADE_DAY = datetime(2026, 2, 6, tzinfo=UTC)  # after Thursday 5 Feb 2026
DEPTH_DAY = datetime(2025, 8, 31, 20, tzinfo=UTC)  # Coinglass 1 % depth is cached up to 2025-09-08


def row(symbol: str = "BTC", **figures: float | None) -> dict:
    blank = {"change_24h": None, "drawdown_from_30d_high": None, "liquidated_long_usd": None,
             "liquidated_short_usd": None, "longs_depth_multiple": None, "funding_rate": None, "ratio": None}
    return {SYMBOL: symbol, **blank, **figures}


def status(rows: list[dict], limits: dict[str, float]) -> list[str]:
    return alerts.check(pl.DataFrame(rows), limits)["status"].to_list()


def test_the_command_line_offers_one_option_per_rule() -> None:
    assert list(ALERT_OPTIONS) == list(alerts.RULES)


@pytest.mark.parametrize(("name", "figures", "limit", "expected"), [
    ("drop_24h", {"change_24h": -0.05}, 5, alerts.CROSSED),  # at the limit: crossed
    ("drop_24h", {"change_24h": -0.049}, 5, alerts.OK),
    ("drop_24h", {"change_24h": 0.08}, 5, alerts.OK),  # a rise is no fall
    ("off_30d_high", {"drawdown_from_30d_high": -0.2}, 15, alerts.CROSSED),
    ("liquidated_24h", {"liquidated_long_usd": 60e6, "liquidated_short_usd": 40e6}, 100e6, alerts.CROSSED),
    ("liquidated_24h", {"liquidated_long_usd": 60e6, "liquidated_short_usd": None}, 100e6, alerts.OK),
    ("longs_vs_depth", {"longs_depth_multiple": 2.5}, 2, alerts.CROSSED),
    ("funding", {"funding_rate": -0.0003}, 0.03, alerts.CROSSED),  # either sign
    ("funding", {"funding_rate": 0.0001}, 0.03, alerts.OK),
    ("weekend_ratio", {"ratio": 0.55}, 0.6, alerts.CROSSED),  # thinner weekends cross from above
    ("weekend_ratio", {"ratio": 0.75}, 0.6, alerts.OK),
])
def test_each_rule_crosses_at_its_limit(name: str, figures: dict, limit: float, expected: str) -> None:
    assert status([row(**figures)], {name: limit}) == [expected]


def test_a_figure_that_is_not_cached_is_not_checked_and_says_why() -> None:
    checks = alerts.check(pl.DataFrame([row()]), {name: 1.0 for name in alerts.RULES})
    assert checks["status"].to_list() == [alerts.NOT_CHECKED] * len(alerts.RULES)
    assert checks.filter(pl.col("rule") == "longs_vs_depth")["text"].item() == (
        "estimated longs against 1 % depth: no 1 % depth cached")


def test_the_lines_put_crossed_limits_first() -> None:
    checks = alerts.check(pl.DataFrame([row("BTC", change_24h=0.01), row("ETH", change_24h=-0.1)]), {"drop_24h": 5})
    made = alerts.lines(checks)
    assert made == ["CROSSED      ETH  −10.0 % over 24 h (limit −5 %)", "OK           BTC  +1.0 % over 24 h (limit −5 %)"]


@pytest.fixture(scope="module")
def cache_with_depth(recent_cache: Path) -> Path:  # noqa: F811
    """The recent cache with Coinglass's aggregated 1 % depth (to 2025-09-08)."""
    from tests.conftest import SHARED_DATA

    imported = read_import(SHARED_DATA / "derivatives" / "coinglass_orderbook_depth_1pct_agg_1d.parquet")
    Store(recent_cache).write(imported.dataset, imported.frame, source="file:coinglass_orderbook_depth_1pct_agg_1d")
    return recent_cache


def test_the_cli_flags_the_weekday_cascade_and_exits_3(cache_with_depth: Path, capsys) -> None:
    code = main(["--data-dir", str(cache_with_depth), "alerts", "--asof", CASCADE_DAY.isoformat(), "--drop-24h", "5",
                 "--liquidated-24h", "100e6", "--funding", "1"])
    out = capsys.readouterr().out
    assert code == ALERTS_CROSSED
    lines = out.splitlines()
    assert lines[0].startswith("Cascade alerts as of 2026-02-06 00:00 UTC (BTC, ETH, SOL, binance 1h; data read up "
                               "to the bar of 2026-02-05 23:00 UTC): 4 of 9 limits crossed")
    assert lines[1:5] == ["CROSSED      BTC  −14.0 % over 24 h (limit −5 %)",
                          "CROSSED      BTC  $483M liquidated over 24 h (limit $100M)",
                          "CROSSED      ETH  −15.0 % over 24 h (limit −5 %)",
                          "CROSSED      SOL  −14.9 % over 24 h (limit −5 %)"]
    assert "NOT CHECKED  ETH  liquidations over 24 h: no realised liquidations cached" in lines  # BTC's alone cached


def test_the_cli_reads_the_figures_the_brief_shows(cache_with_depth: Path, capsys) -> None:
    code = main(["--data-dir", str(cache_with_depth), "alerts", "--asof", DEPTH_DAY.isoformat(), "--format", "json",
                 "--longs-vs-depth", "1e9", "--weekend-ratio", "0"])
    assert code == 0  # nothing crossed
    checks = pl.DataFrame(json.loads(capsys.readouterr().out)["checks"])
    view = View(("BTC", "ETH", "SOL"), "binance", "1h", date(2025, 8, 1), date(2025, 8, 31), "utc")
    made = brief.build(Store(cache_with_depth).read, view, DEPTH_DAY, Store(cache_with_depth).status(), is_demo=False)
    nearest = ov.weekend_book(made.fragility).filter(pl.col("side") == "long", pl.col("band") == -0.05)
    multiples = dict(zip(nearest[SYMBOL], nearest["depth_multiple"], strict=True))
    depth = checks.filter(pl.col("rule") == "longs_vs_depth")
    assert len(multiples) == 3 and dict(zip(depth[SYMBOL], depth["value"], strict=True)) == multiples
    ratio = checks.filter(pl.col("rule") == "weekend_ratio")
    assert ratio["value"].to_list() == made.rows["ratio"].to_list()


def test_the_cli_asks_for_a_limit_and_refuses_one_that_is_not_a_number(cache_with_depth: Path, capsys) -> None:
    assert main(["--data-dir", str(cache_with_depth), "alerts"]) == 1
    assert "give at least one limit" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        main(["--data-dir", str(cache_with_depth), "alerts", "--funding", "nan"])
    assert refused.value.code == 2
