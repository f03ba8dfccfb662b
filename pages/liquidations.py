"""Liquidations: where they happened (measured), where leveraged positions would be liquidated next
(estimated, with every assumption shown), how fragile the book is, and whether the estimate was right."""

from datetime import date, timedelta

import polars as pl
import streamlit as st

from lib import ui
from lib.analytics import liquidation_levels as levels
from lib.analytics.liquidations import PLACEMENTS, largest_bursts, nice_bucket_usd, realised_heatmap
from lib.charts.liquidations import (
    estimated_heatmap_figure,
    liquidation_map_figure,
    realised_heatmap_figure,
    scorecard_figure,
)
from lib.charts.tables import bursts_table, fragility_table

PRESET = ("Jan 31 / Feb 5-6 2026", date(2026, 1, 24), date(2026, 2, 12))
WARM_UP = timedelta(days=60)  # levels opened before the window still count inside it

active = ui.active_store()
ui.data_banner(active)
st.title("Liquidations")
st.sidebar.button(f"Preset: {PRESET[0]}", key="liq_preset", width="stretch", on_click=ui.set_view_range, args=PRESET[1:])
view = ui.view_controls(active)
if view is None:
    st.stop()

with st.sidebar:
    symbol = st.selectbox("Heatmap asset", view.assets, key="liq_symbol")
    placement = st.selectbox("Place bar totals", list(PLACEMENTS), format_func=PLACEMENTS.get, key="liq_placement")
    relative = st.toggle("Relative colour scale", key="liq_relative", help="Default: absolute USD, comparable across assets")
    with st.expander("Model assumptions"):
        tiers = st.data_editor(levels.tier_table(), key="liq_tiers", hide_index=True, num_rows="dynamic")
        split = st.selectbox("New OI split", list(levels.SPLIT_RULES), format_func=levels.SPLIT_RULES.get, key="liq_split")
        half_life_h = st.number_input("Decay half-life (hours, 0 = none)", 0, 24 * 365, 0, key="liq_decay")

lo, hi = ui.day_bounds(view)
bars = ui.rows(active, "bars", (symbol,), lo - WARM_UP, hi, view.exchange, view.timeframe)
window = bars.filter(pl.col("ts") >= lo)
if window.is_empty():
    st.warning(f"No {view.timeframe} {symbol} bars from {view.exchange} between {view.start} and {view.end}.")
    st.stop()
bucket = st.sidebar.number_input("Price bucket (USD)", min_value=0.01,
                                 value=nice_bucket_usd(window["low"].min(), window["high"].max()), key="liq_bucket")
scale = "relative" if relative else "absolute"
ui.provenance(active, view, window)

liquidations = ui.liquidation_totals(active, view, view.timeframe)
st.subheader(f"Realised liquidations: {symbol} (measured)")
mine = liquidations.filter(pl.col("symbol") == symbol)
if mine.is_empty():
    st.info(f"No {view.timeframe} liquidation totals for {symbol} are cached in this range. Import Coinglass-style "
            "exports or record them with a collector (Data page).")
else:
    grid = realised_heatmap(mine, window, bucket_usd=bucket, placement=placement)
    ui.chart(realised_heatmap_figure(grid, window, scale=scale, title=f"{symbol} realised liquidations"),
             "liq_realised", ui.export_name("liquidations_realised", symbol, view))
    st.dataframe(bursts_table(largest_bursts(mine, n=10, every=view.timeframe, bars=window)), hide_index=True,
                 key="liq_bursts")

st.subheader(f"Estimated liquidation levels: {symbol} (a model, not a measurement)")
oi = ui.rows(active, "open_interest", (symbol,), lo - WARM_UP, hi)
half_life = timedelta(hours=half_life_h) if half_life_h else None
try:
    estimate = levels.estimate_levels(bars, None if oi.is_empty() else oi, bucket_usd=bucket, split=split,
                                      half_life=half_life, leverage_mix=tiers.select("leverage", "weight"),
                                      mmr=tiers.select("leverage", "mmr"))
except ValueError as exc:
    st.error(f"The level model cannot run with these inputs: {exc}")
    st.stop()
ui.chart(estimated_heatmap_figure(estimate, bars, scale=scale, since=lo, title=f"{symbol} estimated liquidation levels"),
         "liq_estimated", ui.export_name("liquidations_estimated", symbol, view))

step = st.select_slider("Replay: the map as it stood at", options=window["ts"].to_list(), value=window["ts"][-1],
                        format_func=lambda t: f"{t:%Y-%m-%d %H:%M} UTC", key="liq_step")
at_step = estimate if step == window["ts"][-1] else levels.estimate_levels(
    bars.filter(pl.col("ts") <= step), None if oi.is_empty() else oi.filter(pl.col("ts") <= step), bucket_usd=bucket,
    split=split, half_life=half_life, leverage_mix=tiers.select("leverage", "weight"), mmr=tiers.select("leverage", "mmr"))
ui.chart(liquidation_map_figure(at_step, title=f"{symbol} liquidation map at {step:%Y-%m-%d %H:%M} UTC"),
         "liq_map", ui.export_name(f"liquidation_map_{step:%Y%m%dT%H%M}", symbol, view))
left, right = st.columns(2)
with left:
    st.markdown("**Cascade fragility** (estimated USD that a move would liquidate)")
    depth = ui.rows(active, "depth", (symbol,), lo - WARM_UP, hi)
    fragility = levels.fragility_by_weekend(at_step, depth, view.weekend)
    st.dataframe(fragility_table(fragility), hide_index=True, key="liq_fragility")
with right:
    st.markdown("**Assumptions** (they go into every export)")
    st.json(at_step.assumptions, expanded=False)
    for note in at_step.notes:
        st.caption(note)

if not mine.is_empty():
    st.subheader("Scorecard: were the estimated levels where liquidations happened?")
    captured = levels.capture(estimate, grid)
    ui.chart(scorecard_figure(captured, levels.capture_summary(captured),
                              consumption=levels.consumption_score(estimate, bars, mine)),
             "liq_scorecard", ui.export_name("liquidations_scorecard", symbol, view))
