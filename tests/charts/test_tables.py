"""Display tables: units in the names, values formatted for reading."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from lib.charts.tables import bursts_table


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
