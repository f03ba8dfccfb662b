"""Overview: the state of each asset at a glance (each number opens its page with the view that
computes it), the desk's alert limits checked against it, the story of the selected window, and
the desk's weekend brief."""

import streamlit as st

from lib import alerts, brief, export, ui
from lib import overview as ov
from lib.charts.overview import LIMIT_INPUTS, PROXY_NOTE, range_note, row_table

LIMITS_HELP = "Checked against the table's figures; 0 sets no limit. `python -m lib alerts` checks the same from cron."

ui.default_dates(ov.story_window)
active, view = ui.analytics_page("Overview")
with ui.sidebar_expander("Alert limits (kept in the link)"):
    limits = {name: value * per for name, (label, step, per) in LIMIT_INPUTS.items()
              if (value := ui.linked(st.number_input, label, min_value=0.0, value=0.0, step=step, format="%g",
                                     help=LIMITS_HELP, key=f"ov_limit_{name}"))}
shown = ui.overview(active, view)
if shown.story.bars.is_empty():
    ui.stop_without_bars(active, view, view.assets)

status = ui.status(active)
left, right = st.columns([5, 1], vertical_alignment="center")
left.caption(f"As of the last {view.timeframe} bar before {shown.asof:%a %d %b %Y %H:%M} UTC ({view.exchange}). "
             "Each number opens its page, in a new tab, with the view that computes it.")
# a callback, not the click's return value: it survives a rerun between the click and this line
right.button("Weekend brief", key="ov_brief", icon=":material/description:", width="stretch",
             on_click=st.session_state.update, kwargs={"ov_brief_asked": True})
if st.session_state.pop("ov_brief_asked", False):
    asof = min(shown.asof, brief.latest_close(status, view) or shown.asof)
    try:
        with st.spinner("Writing the brief (PNG rendered with Chromium)..."):
            files = brief.files(brief.build(ui.loader(active), view, asof, status, active.is_demo))
    except export.ExportError as exc:
        st.error(str(exc))
    else:
        right.download_button("Download (zip)", export.zip_bytes(files), f"{brief.stem(asof)}.zip",
                              mime="application/zip", key="ov_brief_download", width="stretch")

st.markdown(row_table(shown.rows, {symbol: ov.links(view, shown.asof, symbol) for symbol in view.assets}))
if limits:
    checks = alerts.check(shown.rows, limits)
    (st.warning if (checks["status"] == alerts.CROSSED).any() else st.success)(alerts.markdown(checks))
ranges = st.empty()  # filled after the chart: 3 more level-model runs per asset
st.caption("  \n".join(v for v in shown.rows["verdict"].drop_nulls()))
if shown.rows["volume_proxy"].any():
    st.caption(PROXY_NOTE)

footers = {"story": ui.badge(active, view)(("bars", shown.story.bars), ("liquidation_totals", shown.story.totals))}
ui.chart(shown.figure, "ov_story", ui.export_name("overview_story", view), footers["story"])
ui.first_screen_end()
ui.export_all("overview", {"story": shown.figure}, view, footers)
with st.spinner(f"Re-running the level model under {ov.levels.SPREAD_RUNS} assumption sets..."):
    ranges.caption(range_note(ui.level_ranges(active, view), ov.levels.SPREAD_RUNS))
