"""The weekend brief: as of a time it reads nothing after it, its figures are the pages' own, and
`python -m lib brief` writes the PNG, the HTML and the Markdown."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

from lib import brief, export, views
from lib import overview as ov
from lib.charts.overview import pct_text, ratio_text
from lib.cli import main
from lib.store import Store
from lib.viewstate import View, day_bounds
from tests.test_overview import recent_cache  # noqa: F401  (the fixture)

UTC = timezone.utc
FRIDAY_EVENING = datetime(2026, 1, 30, 20, tzinfo=UTC)  # the brief the desk should have read before Sat 31 Jan
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
VIEW = View(("BTC", "ETH", "SOL"), "binance", "1h", date(2026, 1, 20), date(2026, 2, 12))


@pytest.fixture(scope="module")
def friday(recent_cache: Path) -> brief.Brief:  # noqa: F811
    store = Store(recent_cache)
    return brief.build(store.read, VIEW, FRIDAY_EVENING, store.status(), is_demo=False)


def test_as_of_passes_on_only_what_had_closed() -> None:
    rows = pl.DataFrame({
        "symbol": "BTC",
        "timeframe": ["1h", "1h", "1h", "1d", "event"],
        "ts": [datetime(2026, 1, 30, h, m, tzinfo=UTC) for h, m in ((18, 0), (19, 0), (20, 0), (0, 0), (19, 59))],
    })
    reader = brief.AsOf(lambda *args: rows, FRIDAY_EVENING)
    kept = reader("bars", ("BTC",), FRIDAY_EVENING - timedelta(days=1), FRIDAY_EVENING + timedelta(days=1))
    # the 20:00 bar and the day's total are still open at 20:00
    assert kept["ts"].dt.strftime("%H:%M").to_list() == ["18:00", "19:00", "19:59"]
    assert reader.used_until == datetime(2026, 1, 30, 19, 59, tzinfo=UTC)


def test_a_friday_brief_uses_nothing_after_friday_evening(friday: brief.Brief) -> None:
    assert friday.used_until == datetime(2026, 1, 30, 19, tzinfo=UTC)  # the last hourly bar closing by 20:00
    assert friday.rows["ts"].max() < FRIDAY_EVENING
    assert friday.funding["ts"].max() < FRIDAY_EVENING
    assert friday.weekends["end"].max() < FRIDAY_EVENING
    assert "31 Jan" not in brief.markdown(friday)


def test_its_markdown_gives_the_weekend_liquidity_ratio_and_the_drawdowns(friday: brief.Brief) -> None:
    text = brief.markdown(friday)
    btc = friday.rows.row(0, named=True)
    assert "as of Fri 30 Jan 2026 20:00 UTC" in text
    assert f"weekend / weekday base volume {ratio_text(btc['ratio'], btc['ci_low'], btc['ci_high'])}" in text
    assert btc["verdict"].startswith("Weekend BTC base volume is")  # January's bars have no quote volume
    assert btc["verdict"] in text
    assert f"BTC $84,242.99: drawdown {pct_text(btc['current_drawdown'])} from its 1-year peak" in text
    assert "weekend of Sat 24 Jan" in text  # the last complete weekend
    assert text.count("_Data: binance bars 1h") == 3  # every figure with its provenance
    assert "Open interest: No open_interest rows cached in this window." in text


def test_a_saturday_brief_gives_the_weekend_so_far(recent_cache: Path) -> None:  # noqa: F811
    """As of Sat 31 Jan 18:00, in the cascade: that weekend has no Monday open yet, so it moves from
    Friday's close to the last close (17:00's bar), said to be so far."""
    store = Store(recent_cache)
    saturday = brief.build(store.read, VIEW, datetime(2026, 1, 31, 18, tzinfo=UTC), store.status(), is_demo=False)
    btc = saturday.weekends.filter(pl.col("symbol") == "BTC")
    assert btc["start"].to_list() == [datetime(2026, 1, 24, tzinfo=UTC), datetime(2026, 1, 31, tzinfo=UTC)]
    assert btc["so_far"].to_list() == [False, True]
    bars = store.read("bars", ("BTC",), datetime(2026, 1, 30, 23, tzinfo=UTC), datetime(2026, 1, 31, 18, tzinfo=UTC),
                      "binance", "1h")
    friday_close, last_close = bars["close"][0], bars["close"][-1]
    assert btc["move"][1] == pytest.approx(last_close / friday_close - 1)
    assert f"weekend of Sat 31 Jan {pct_text(btc['move'][1], signed=True)} so far" in brief.markdown(saturday)


def test_its_figures_are_the_pages_own_for_the_same_time(recent_cache: Path) -> None:  # noqa: F811
    store = Store(recent_cache)
    asof = datetime(2025, 12, 20, tzinfo=UTC)  # a midnight, so each link's days cover exactly the brief's windows
    view = View(("BTC",), "binance", "1h", date(2025, 12, 1), date(2025, 12, 19))
    made = brief.build(store.read, view, asof, store.status(), is_demo=False)
    row = made.rows.row(0, named=True)
    pages = {name: ov.history(view, asof, length) for name, (_, length) in ov.LINKS.items()}

    drawn = views.drawdowns(*views.drawdown_inputs(store.read, pages["current_drawdown"]), views.DrawdownOptions())
    assert row["current_drawdown"] == pytest.approx(drawn.metrics["current_drawdown"][0])
    assert row["drawdown_from_30d_high"] == pytest.approx(drawn.metrics["drawdown_from_30d_high"][0])

    liquidity = views.liquidity(*views.liquidity_inputs(store.read, pages["weekend_ratio"]), views.LiquidityOptions())
    assert row["measure"] == "quote_volume"  # 2025 bars have it: the page's default measure
    assert row["verdict"] == liquidity.verdicts["BTC"]
    assert row["ratio"] == pytest.approx(liquidity.effects["ratio"][0])

    levels_view = pages["estimated_5pct"]
    bars, totals, oi, depth = views.liquidation_inputs(store.read, levels_view, "BTC")
    shown = views.liquidations(bars, day_bounds(levels_view)[0], totals, oi, depth, views.LiquidationOptions())
    page_fragility = shown.fragility.select("side", "band", "liquidation_usd")
    assert made.fragility.select("side", "band", "liquidation_usd").equals(page_fragility)
    page_range = views.sensitivity(bars, oi, shown.bucket_usd, views.LiquidationOptions(), shown.at_step.last_ts)
    assert made.fragility.select("side", "band", "low_usd", "high_usd").equals(page_range.fragility)


def test_its_clusters_give_each_bands_range_over_the_assumptions(friday: brief.Brief) -> None:
    (clusters,) = [s for s in brief.sections(friday) if s.title == brief.TITLES["clusters"]]
    assert all(line.count("(range $") == 6 for line in clusters.lines), clusters.lines  # 3 bands a side
    whiskered = [t for t in brief.figure(friday).data if t.type == "bar" and t.error_y.array is not None]
    assert len(whiskered) == 3  # one bar trace per asset
    for bars in whiskered:
        assert min(bars.error_y.array) >= 0 and min(bars.error_y.arrayminus) >= 0  # the estimate lies within


def test_the_cli_writes_the_png_html_and_markdown(
    monkeypatch: pytest.MonkeyPatch, recent_cache: Path, tmp_path: Path  # noqa: F811
) -> None:
    monkeypatch.setattr(export, "png", lambda fig: PNG_MAGIC + b"...")  # rendered for real in test_overview.py
    out = tmp_path / "brief"
    assert main(["--data-dir", str(recent_cache), "brief", "--out", str(out), "--asof", "2026-01-30T20:00"]) == 0
    files = {p.suffix: p for p in out.iterdir()}
    assert set(files) == {".png", ".html", ".md"}
    assert files[".png"].read_bytes().startswith(PNG_MAGIC)
    page = files[".html"].read_text()
    assert "plotly.js v" in page and "Weekend liquidity, last 12 weeks" in page and "binance bars 1h" in page
    assert files[".md"].read_text().startswith("**Cascade weekend brief · as of Fri 30 Jan 2026 20:00 UTC")


def test_the_cli_writes_no_brief_of_nothing(recent_cache: Path, tmp_path: Path, capsys) -> None:  # noqa: F811
    out = tmp_path / "brief"
    assert main(["--data-dir", str(recent_cache), "brief", "--out", str(out), "--asof", "1999-01-01"]) == 1
    err = capsys.readouterr().err
    assert "no 1h bars of BTC" in err and "up to 1999-01-01 00:00 UTC" in err and "BTC from 20" in err
    assert not out.exists()


def test_the_cli_says_when_it_cannot_write_the_brief(monkeypatch: pytest.MonkeyPatch, recent_cache: Path,  # noqa: F811
                                                     a_file: Path, capsys) -> None:
    monkeypatch.setattr(export, "png", lambda fig: PNG_MAGIC + b"...")
    assert main(["--data-dir", str(recent_cache), "brief", "--out", str(a_file / "brief"), "--asof", "2026-01-30T20:00"]) == 1
    assert f"cannot write into {a_file / 'brief'}: " in capsys.readouterr().err
