"""Liquidations: where they happened (measured), where leveraged positions would be liquidated next
(estimated, with every assumption shown), how fragile the book is, and whether the estimate was right."""

from dataclasses import replace
from datetime import date, timedelta

import polars as pl
import streamlit as st

from lib import ui, views
from lib.analytics import liquidation_levels as levels
from lib.analytics.liquidations import PLACEMENTS, nice_bucket_usd
from lib.charts.liquidations import colour_top
from lib.charts.tables import bursts_table, fragility_table
from lib.schema import TIMEFRAMES
from lib.viewstate import day_bounds

PRESET = ("Jan 31 / Feb 5-6 2026", date(2026, 1, 24), date(2026, 2, 12))

active, view = ui.analytics_page("Liquidations")
ui.preset_button(f"Preset: {PRESET[0]}", "liq_preset", *PRESET[1:])

lo, hi = day_bounds(view)
with st.sidebar:
    symbol = ui.linked(st.selectbox, "Heatmap asset", view.assets, key="liq_symbol")
bars, totals, open_interest, depth = views.liquidation_inputs(ui.loader(active), view, symbol)
window = bars.filter(pl.col("ts") >= lo)
if window.is_empty():
    ui.stop_without_bars(active, view, [symbol])

with st.sidebar:
    placement = ui.linked(st.selectbox, "Place bar totals", list(PLACEMENTS), format_func=PLACEMENTS.get,
                          key="liq_placement")
    bucket = ui.linked(st.number_input, "Price bucket (USD)", min_value=0.01, key="liq_bucket",
                             value=nice_bucket_usd(window["low"].min(), window["high"].max()))
    relative = ui.linked(st.toggle, "Relative colour scale", key="liq_relative",
                         help="Default: absolute USD, comparable across assets")
    with ui.sidebar_expander("Model assumptions"):
        tiers = ui.linked_table("liq_tiers", levels.tier_table(), levels.tiers_text, levels.tiers_from_text)
        split = ui.linked(st.selectbox, "New OI split", list(levels.SPLIT_RULES), format_func=levels.SPLIT_RULES.get,
                          key="liq_split")
        # a float box: Streamlit reads a link's "inf" for an integer box as int(inf), and raises
        half_life_h = ui.linked(st.number_input, "Decay half-life (hours, 0 = none)", 0.0, 24.0 * 365, 0.0, step=1.0,
                                format="%.0f", key="liq_decay")
realised, estimated = st.container(), st.container()
first, last = window["ts"][0], window["ts"][-1]  # a range slider, not one option per bar: 8,760 options a year
step = ui.linked(st.slider, "Replay: the liquidation map as it stood at (UTC)", first,
                 max(last, first + TIMEFRAMES[view.timeframe]), last, step=TIMEFRAMES[view.timeframe],
                 format="YYYY-MM-DD HH:mm", key="liq_step")

options = views.LiquidationOptions(
    bucket_usd=bucket, placement=placement, scale="relative" if relative else "absolute", tiers=tiers, split=split,
    half_life=timedelta(hours=half_life_h) if half_life_h else None, weekend=view.weekend,
)
try:
    with st.spinner(f"Running the level model for {symbol}..."):
        shown = ui.computed(views.liquidations, bars, lo, totals, open_interest, depth, options, step)
except ValueError as exc:
    st.error(f"The level model cannot run with these inputs: {exc}")
    ui.stop()


def estimated_top(other: str) -> float | None:
    """Another asset's largest estimated cell with this page's choices and its own default bucket,
    for the shared colour scale (None where it has no bars or the model cannot run on them)."""
    other_bars, _, other_oi, _ = views.liquidation_inputs(ui.loader(active), view, other)
    if other_bars.filter(pl.col("ts") >= lo).is_empty():
        return None
    try:
        return ui.computed(views.estimated_top, other_bars, lo, other_oi, replace(options, bucket_usd=None))
    except ValueError:
        return None


with st.spinner("Running the level model of the view's other assets, for a colour scale shared with them..."):
    tops = {} if relative else {symbol: colour_top(shown.figures["estimated"])} | {
        other: top for other in view.assets if other != symbol and (top := estimated_top(other)) is not None}
figures = views.shared_colour(shown.figures, tops)
footers = ui.badges(active, view, views.liquidation_badges, view, bars, totals, open_interest, step)
with realised:
    st.subheader(f"Realised liquidations: {symbol} ({'synthetic, demo' if active.is_demo else 'measured'})")
    if shown.grid is None:
        elsewhere = views.cached_elsewhere(ui.status(active), "liquidation_totals", [symbol], view)
        st.info(f"No {view.timeframe} liquidation totals for {symbol} are cached in this range. "
                + (f"{elsewhere} " if elsewhere else "")
                + "Import Coinglass-style exports on the Data page, or record them with a collector.")
    else:
        ui.chart(figures["realised"], "liq_realised", ui.export_name(f"liquidations_realised_{symbol}", view),
                 footers["realised"])
        ui.first_screen_end()
        bursts = bursts_table(shown.bursts)
        st.dataframe(bursts, hide_index=True, height=ui.table_height(bursts), key="liq_bursts")

with estimated:
    st.subheader(f"Estimated liquidation levels: {symbol} (a model, not a measurement)")
    ui.chart(figures["estimated"], "liq_estimated", ui.export_name(f"liquidations_estimated_{symbol}", view),
             footers["estimated"])
    ui.first_screen_end()  # where no totals are cached, the estimate is the first chart
with st.spinner(f"Re-running the level model under {levels.SPREAD_RUNS} assumption sets..."):
    spread = ui.computed(views.sensitivity, bars, open_interest, shown.bucket_usd, options, shown.at_step.last_ts)
figures = views.with_map(figures, symbol, shown.at_step, spread)
ui.chart(figures["map"], "liq_map", ui.export_name(f"liquidations_map_{step:%Y%m%dT%H%M}_{symbol}", view),
         footers["map"])
left, right = st.columns(2)
with left:
    st.markdown("**Cascade fragility** (estimated USD a move would liquidate, against 1 % depth)")
    fragility = fragility_table(shown.fragility, spread)
    st.dataframe(fragility, hide_index=True, height=ui.table_height(fragility), key="liq_fragility")
    st.caption(views.sensitivity_note(spread, bars.height))
with right:
    st.markdown("**Assumptions** (they go into every export)")
    st.json(shown.at_step.assumptions, expanded=False)
    for note in shown.at_step.notes:
        st.caption(note)

replay = {}  # offered to "Export all charts" on request only: its 60 PNGs take 30-60 s
if ui.linked(st.toggle, f"Play the map: up to {views.REPLAY_STEPS} steps, animated", key="liq_play",
             help="Re-runs the level model up to each step. Play shows the estimated levels being consumed as "
                  "price moves, and marks the liquidations measured since the step before where they happened"):
    mode = ui.linked(st.radio, "Steps", list(views.REPLAY_MODES), format_func=views.REPLAY_MODES.get,
                     horizontal=True, key="liq_play_steps")
    with st.spinner(f"Re-running the level model at {views.REPLAY_STEPS} steps, and under "
                    f"{levels.SPREAD_RUNS} assumption sets at each for its range..."):
        replay["replay"] = ui.computed(views.replay, bars, lo, totals, open_interest, options, shown.bucket_usd,
                                       views.replay_until(mode, shown.at_step))
    footers = footers | {"replay": footers["map"]}  # a new dict: the badges are a cached, shared one
    ui.chart(replay["replay"], "liq_replay", ui.export_name(f"liquidations_replay_{symbol}", view), footers["replay"])
    if note := views.replay_range_note(bars.height):
        st.caption(note)

if "scorecard" in figures:
    st.subheader("Scorecard: were the estimated levels where liquidations happened?")
    ui.chart(figures["scorecard"], "liq_scorecard", ui.export_name(f"liquidations_scorecard_{symbol}", view),
             footers["scorecard"])
ui.export_all(f"liquidations_{symbol}", figures, view, footers, shown.at_step.assumptions,
              optional=("With the replay: a PNG per step (30-60 s more)", replay))
