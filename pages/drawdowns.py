"""Drawdowns: how deep each asset is below its running peak, the worst episodes, and where the
declines happened (weekend or weekday, which session, during liquidation bursts)."""

import streamlit as st

from lib import ui, views
from lib.charts.drawdowns import episode_id
from lib.charts.tables import EPISODE_FORMATS, episode_table, metrics_table

active, view = ui.analytics_page("Drawdowns")

with st.sidebar:
    options = views.DrawdownOptions(
        top_n=ui.linked(st.slider, "Episodes per asset", 1, 25, 5, key="dd_top"),
        threshold=ui.linked(st.slider, "Deep drawdown threshold (%)", 5, 80, 20, step=5, key="dd_threshold") / -100,
        intrabar=ui.linked(st.toggle, "Intrabar (low against running high)", key="dd_intrabar"),
        log_price=ui.linked(st.toggle, "Log price axis", key="dd_log"),
        weekend=view.weekend,
    )

bars, liquidations = views.drawdown_inputs(ui.loader(active), view)
if bars.is_empty():
    ui.stop_without_bars(active, view, view.assets)

shown = ui.computed(views.drawdowns, bars, liquidations, options)
zoomed = views.zoomed_to_episode(shown, picked) if (picked := ui.picked_episode()) else None
figures = zoomed or shown.figures
if picked and zoomed is None:
    st.caption(":material/info: The episode picked (or in the link) is not among this view's episodes: "
               "the charts show the whole range.")

footers = ui.badges(active, view, views.bars_badges, tuple(figures), bars)


def show(name: str) -> None:
    ui.chart(figures[name], f"dd_chart_{name}", ui.export_name(f"drawdowns_{name}", view), footers[name],
             ui.episode_picker(f"dd_chart_{name}"))


headline, *rest = figures  # the comparison (or the one asset's chart) above the tables, in the first screen
show(headline)
ui.first_screen_end()

st.subheader("Desk metrics")
table = metrics_table(shown.metrics)
st.dataframe(table, hide_index=True, width="stretch", height=ui.table_height(table), key="dd_metrics")

st.subheader("Worst episodes")
st.caption("Select a row, or click an episode on a chart (a bubble, a peak or a trough), to zoom the charts to it. "
           "Durations are real hours (crypto trades 24/7).")
st.dataframe(episode_table(shown.ranked), hide_index=True, width="stretch", key="dd_episodes", selection_mode="single-row",
             column_config={name: st.column_config.NumberColumn(format=spec) for name, spec in EPISODE_FORMATS.items()},
             on_select=ui.episode_picker("dd_episodes", shown.ranked.select(episode_id()).to_series().to_list()))
st.download_button("Episodes as CSV", shown.ranked.write_csv(), f"drawdown_episodes_{view.start}_{view.end}.csv",
                   mime="text/csv", key="dd_csv")

for name in rest:
    show(name)
ui.export_all("drawdowns", figures, view, footers)
