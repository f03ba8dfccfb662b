"""Display tables: units in the names, values formatted for reading."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from lib.charts.tables import bursts_table, fragility_table


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
