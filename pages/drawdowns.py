"""Drawdowns: how deep each asset is below its running peak, the worst episodes, and where the
declines happened (weekend or weekday, which session, during liquidation bursts)."""

from datetime import timedelta

import polars as pl
import streamlit as st

from lib import ui
from lib.analytics import drawdowns as dd
from lib.charts.drawdowns import drawdown_figure, episode_scatter, underwater_comparison
from lib.charts.tables import episode_table, episodes_with_attribution, metrics_table

active = ui.active_store()
ui.data_banner(active)
st.title("Drawdowns")
view = ui.view_controls(active)
if view is None:
    st.stop()

with st.sidebar:
    top_n = st.slider("Episodes per asset", 1, 25, 5, key="dd_top")
    threshold = st.slider("Deep drawdown threshold (%)", 5, 80, 20, step=5, key="dd_threshold") / -100
    intrabar = st.toggle("Intrabar (low against running high)", key="dd_intrabar")
    log_price = st.toggle("Log price axis", key="dd_log")

bars = ui.bars(active, view)
if bars.is_empty():
    st.warning(f"No {view.timeframe} bars from {view.exchange} for {', '.join(view.assets)} between "
               f"{view.start} and {view.end}. Pick another exchange, timeframe or range.")
    st.stop()

series = dd.with_drawdown(bars, intrabar=intrabar)
episodes = dd.episodes(series)
top = dd.top_episodes(episodes, top_n)
metrics = dd.desk_metrics(series, deeper_than=threshold)
liquidations = ui.liquidation_totals(active, view)
attribution = dd.attribution(series, top, weekend=view.weekend, liquidations=None if liquidations.is_empty() else liquidations)
ranked = episodes_with_attribution(top.sort(dd.DEPTH), attribution)
ui.provenance(active, view, bars)

st.subheader("Desk metrics")
table = metrics_table(metrics)
st.dataframe(table, hide_index=True, width="stretch", height=ui.table_height(table), key="dd_metrics")

st.subheader("Worst episodes")
st.caption("Select a row to zoom the charts to that episode. Durations are real hours (crypto trades 24/7).")
picked = st.dataframe(episode_table(ranked), hide_index=True, width="stretch", key="dd_episodes",
                      on_select="rerun", selection_mode="single-row")
st.download_button("Episodes as CSV", ranked.write_csv(), f"drawdown_episodes_{view.start}_{view.end}.csv",
                   mime="text/csv", key="dd_csv")
rows = picked.selection.rows if picked else []
zoom = ranked.row(rows[0], named=True) if rows else None

for symbol in view.assets:
    part = series.filter(pl.col("symbol") == symbol)
    if part.is_empty():
        st.info(f"No {symbol} bars in this view.")
        continue
    fig = drawdown_figure(part, top.filter(pl.col("symbol") == symbol), log_price=log_price, weekends=view.weekend,
                          title=f"{symbol} drawdown from the running peak ({view.exchange}, {view.timeframe})")
    if zoom and zoom["symbol"] == symbol:
        margin = timedelta(hours=max(zoom[dd.UNDERWATER_HOURS] or 0, 24) * 0.1)
        end = zoom[dd.RECOVERY_TS] or part["ts"].max()
        fig.update_xaxes(range=[zoom[dd.PEAK_TS] - margin, end + margin])
    ui.chart(fig, f"dd_chart_{symbol}", ui.export_name("drawdown", symbol, view))

left, right = st.columns(2)
with left:
    ui.chart(episode_scatter(dd.top_episodes(episodes, max(top_n, 10)), title="Depth against time under water"),
             "dd_scatter", ui.export_name("drawdown_episodes", "all", view))
with right:
    if len(view.assets) > 1:
        aligned = dd.aligned_drawdowns(bars, intrabar=intrabar)
        together = dd.underwater_together(aligned, deeper_than=threshold)
        ui.chart(underwater_comparison(aligned, together=together, weekends=view.weekend, title="Under water together"),
                 "dd_compare", ui.export_name("drawdown_compare", "all", view))
    else:
        st.info("Pick two or more assets to compare their drawdowns.")
