"""Weekend against weekday liquidity: volume, spreads, price impact and depth by day and hour of
the week, with statistics that say whether a difference is real (block bootstrap, HAC, BH)."""

import streamlit as st

from lib import ui, views
from lib.analytics import liquidity as liq
from lib.analytics.liquidity import MEASURES
from lib.charts.tables import effects_table, regimes_table

TIMEZONES = ("UTC", "America/New_York", "Europe/London", "Asia/Tokyo", "Asia/Singapore")

active, view = ui.analytics_page("Weekend vs weekday liquidity")

with st.sidebar:
    measures = list(liq.BAR_MEASURES)
    options = views.LiquidityOptions(
        measure=ui.linked(st.selectbox, "Measure", measures, index=measures.index(liq.QUOTE_VOLUME),
                             format_func=lambda m: MEASURES[m].label, key="lq_measure"),
        weekend=view.weekend,
        tz=ui.linked(st.selectbox, "Hours shown in", TIMEZONES, key="lq_tz"),
        cell_stat=ui.linked(st.radio, "Hour-of-week colour", (liq.MEAN, liq.MEDIAN), horizontal=True, key="lq_stat",
                            help="The mean of the bars in each hour of the week, or their median (robust to a few "
                                 "huge bars; Kaiko's heatmaps use it). The hover shows both."),
        with_edge=ui.linked(st.toggle, "EDGE spread (slow on long 1-minute series)", key="lq_edge",
                            help="EDGE (Ardia, Guidotti and Kroencke 2024) is computed whenever it is the measure "
                                 "shown; this adds it to the cascade comparison too."),
        estimate_quote_volume=ui.linked(
            st.toggle, "Estimate missing quote volume", value=True, key="lq_qv_estimate",
            help=f"Where the source reports base volume only (exchange REST bars): {liq.QUOTE_VOLUME_ESTIMATE}. On "
                 "Binance hourly bars that report both it is within 0.08 % at the median, 0.6 % at the 99th "
                 "percentile. Each chart's badge says how many bars it estimated."),
        regime_split=ui.linked(st.date_input, "Regime split", liq.ETF_LAUNCH, key="lq_regime",
                                   help="Default: the US spot bitcoin ETF launch, 2024-01-11"),
    )

bars, depth, events = views.liquidity_inputs(ui.loader(active), view)
if bars.is_empty():
    ui.stop_without_bars(active, view, view.assets)
with st.spinner("Computing measures and statistics..."):
    shown = ui.computed(views.liquidity, bars, depth, events, options)

for symbol, line in shown.verdicts.items():
    st.markdown(f"**{symbol}:** {line}")
# filled after the first screen: its tables load the grid's code, which would hold back the first chart
statistics = st.expander("The statistics behind the verdicts")

footers = ui.badges(active, view, views.liquidity_badges, tuple(shown.figures), bars, depth, events, shown.notes,
                    shown.asset)
if not any(name.startswith("hour_of_week_") for name in shown.figures):
    st.info(f"The hour-of-week heatmaps need bars shorter than a day: {view.timeframe} bars fill one hour of "
            "each day. Pick 1h or shorter in the sidebar.")
for index, (name, fig) in enumerate(shown.figures.items()):
    ui.chart(fig, f"lq_chart_{name}", ui.export_name(f"liquidity_{name}", view), footers[name])
    if index == 0:
        ui.first_screen_end()
with statistics:
    st.caption("Ratio = weekend mean / weekday mean of daily values, with a block-bootstrap 95 % CI (whole weeks "
               "resampled, because hours and days are autocorrelated); Mann-Whitney U, Welch t and an OLS weekend "
               "dummy with Newey-West (HAC) errors; effective sample sizes from the lag-1 autocorrelation.")
    st.dataframe(effects_table(shown.effects), hide_index=True, key="lq_effects")
    st.caption(f"Before and after {options.regime_split} (mean, median and bars per regime and weekend flag):")
    st.dataframe(regimes_table(shown.regimes), hide_index=True, key="lq_regimes")
if "cascades" not in shown.figures:
    st.info("The Jan 31 / Feb 5-6 2026 cascade comparison needs bars from late December 2025 to February 2026 "
            f"({view.exchange} {view.timeframe}); they are not cached.")
ui.export_all("liquidity", shown.figures, view, footers)
