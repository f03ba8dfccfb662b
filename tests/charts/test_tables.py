"""Display tables: units in the names, values formatted for reading."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from lib.analytics.liquidation_levels import Spread
from lib.charts.tables import bursts_table, effects_table, fragility_table, metrics_table, regimes_table


def test_bursts_table_signs_the_move_and_names_a_window_without_price() -> None:
    """Three windows: a fall, a rise, and one with no price bar (which Streamlit would show as None)."""
    bursts = pl.DataFrame({
        "rank": [1, 2, 3],
        "ts": [datetime(2026, 1, 31, h, tzinfo=UTC) for h in (14, 15, 16)],
        "long_usd": [2.5e9, 1.2e6, 25_400.0],
        "short_usd": [3.0e8, 4.0e5, 0.4],
        "total_usd": [2.8e9, 1.6e6, 25_400.0],
        "move": [-0.0412, 0.00155, None],
    })
    table = bursts_table(bursts)
    assert table.columns == ["#", "Window start (UTC)", "Longs liquidated", "Shorts liquidated", "Total", "Price move"]
    assert table["Price move"].to_list() == ["-4.12 %", "+0.16 %", "no price bar"]
    assert table["Total"].to_list() == ["$2.8B", "$1.6M", "$25K"]
    assert table["Shorts liquidated"].to_list() == ["$300.0M", "$400K", "$0"]
    assert table["Window start (UTC)"][0] == "2026-01-31 14:00"


def test_fragility_table_signs_each_move() -> None:
    fragility = pl.DataFrame({
        "period": ["weekday", "weekday", None], "band": [-0.02, 0.10, -0.05],
        "liquidation_usd": [3.2e7, 5.61e8, 7.0e7], "depth_usd": [3.743e8, 3.808e8, None],
        "depth_multiple": [0.0855, 1.473, None],
    })
    table = fragility_table(fragility)
    assert table["Move"].to_list() == ["-2 %", "+10 %", "-5 %"]
    assert table["Book"].to_list() == ["weekday", "weekday", "-"]
    assert table["1 % depth"].to_list() == ["$374.3M", "$380.8M", "no depth data"]


def test_fragility_table_gives_each_moves_range_over_the_assumption_sets() -> None:
    fragility = pl.DataFrame({
        "side": ["long", "short", "long"], "period": ["weekday", "weekday", "weekend"], "band": [-0.02, 0.10, -0.02],
        "liquidation_usd": [3.2e7, 5.61e8, 3.2e7], "depth_usd": [3.743e8, 3.808e8, 4.396e8],
        "depth_multiple": [0.0855, 1.473, 0.0728],
    })
    ranges = pl.DataFrame({"side": ["short", "long"], "band": [0.10, -0.02], "low_usd": [3.533e8, 9.6e6],
                           "high_usd": [7.061e8, 5.22e7]})
    table = fragility_table(fragility, Spread(9, ranges, pl.DataFrame()))
    assert table.columns == ["Book", "Move", "Est. liquidations", "Range over 9 assumption sets", "1 % depth", "x depth"]
    assert table["Range over 9 assumption sets"].to_list() == ["$9.6M–$52.2M", "$353.3M–$706.1M",
                                                               "$9.6M–$52.2M"]
    assert table["Book"].to_list() == ["weekday", "weekday", "weekend"]


def test_metrics_table_writes_ratios_with_two_decimals_and_an_unrecovered_drawdown() -> None:
    """BTC still under water, ETH recovered, SOL never below its peak (no drawdown to recover)."""
    metrics = pl.DataFrame({
        "symbol": ["BTC", "ETH", "SOL"], "max_drawdown": [-0.501, -0.2, 0.0],
        "max_drawdown_recovery_ts": [None, datetime(2026, 3, 1, 5, tzinfo=UTC), None],
        "calmar": [-0.2, 1.0, float("nan")], "ulcer_performance_index": [-0.894, 12.3456, None],
    })
    table = metrics_table(metrics)
    assert table.columns == ["Metric", "BTC", "ETH", "SOL"]
    rows = {row[0]: row[1:] for row in table.iter_rows()}
    assert rows["Max drawdown"] == ("-50.1 %", "-20.0 %", "0.0 %")
    assert rows["Max drawdown recovered (UTC)"] == ("still under water", "2026-03-01 05:00", "n/a")
    assert rows["Calmar"] == ("-0.20", "1.00", "n/a")
    assert rows["Ulcer performance index"] == ("-0.89", "12.35", "n/a")


def test_the_statistics_tables_give_each_row_its_unit() -> None:
    """Raw values run from 1e-5 to 1e9: each row reads in its chart's unit, named after its measure."""
    from lib.analytics import liquidity as liq

    regimes = pl.DataFrame({
        "symbol": ["BTC", "BTC", "BTC"], liq.REGIME: ["after"] * 3, liq.WEEKEND: [False] * 3,
        liq.MEASURE: [liq.QUOTE_VOLUME, "roll_spread", "unknown_measure"],
        liq.MEAN: [83_791_234.0, 0.001244, 7.0], liq.MEDIAN: [73_850_000.0, 0.0011, 6.0], liq.N: [6240, 6240, 6240],
    })
    table = regimes_table(regimes)
    assert table["Measure"].to_list() == ["Quote volume per bar ($M)", "Roll spread estimate (bp)", "unknown_measure"]
    assert table["Mean"].to_list() == [83.79, 12.44, 7.0] and table["Median"].to_list() == [73.85, 11.0, 6.0]


def test_the_statistics_tables_read_in_words_and_keep_numbers_sortable() -> None:
    """The weekend effect and the regime split of eight weeks of hourly bars, as the page shows them."""
    from lib.analytics import liquidity as liq
    from lib.analytics import liquidity_stats as stats
    from tests.analytics.test_liquidity import random_walk

    measured = liq.with_calendar(liq.with_measures(random_walk(24 * 56)))
    effects = stats.weekend_effect(liq.daily(measured), [liq.VOLUME])
    table = effects_table(effects)
    assert table.columns[:4] == ["Asset", "Measure", "From", "To"] and "p (Mann-Whitney)" in table.columns
    row = table.row(0, named=True)
    assert row["Measure"] == "Base volume per bar" and row["From"] == "2024-03-04", row
    assert row["Weekend / weekday"] == round(effects["ratio"][0], 3)
    assert row["Weekday mean"] == pytest.approx(effects["weekday_mean"][0], rel=1e-3)
    assert table["Weekday mean"].dtype == pl.Float64  # still a number: the table sorts by it
    regimes = regimes_table(liq.aggregate(measured, (liq.REGIME, liq.WEEKEND), [liq.VOLUME]))
    assert regimes.columns == ["Asset", "Regime", "Days", "Measure", "Mean", "Median", "Bars"]
    assert set(regimes["Days"]) == {"weekday", "weekend"} and set(regimes["Measure"]) == {"Base volume per bar"}
