"""Cascade: the entry point routes to the pages and does nothing else."""

import streamlit as st

from lib import ui

ui.use_explicit_navigation()
st.set_page_config(page_title="Cascade: crypto market stress", page_icon=":material/waterfall_chart:", layout="wide")

PAGES = [
    st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", url_path="overview", default=True),
    st.Page("pages/drawdowns.py", title="Drawdowns", icon=":material/trending_down:", url_path="drawdowns"),
    st.Page("pages/liquidity.py", title="Weekend liquidity", icon=":material/water_drop:", url_path="liquidity"),
    st.Page("pages/liquidations.py", title="Liquidations", icon=":material/local_fire_department:", url_path="liquidations"),
    st.Page("pages/data.py", title="Data", icon=":material/database:", url_path="data"),
]

LOGIN = st.Page("pages/login.py", title="Sign in", icon=":material/login:", url_path="login")

if ui.identity() is None:  # hosted mode before sign-in: the login view and nothing else
    st.navigation([LOGIN], position="hidden").run()
else:
    ui.account_box()
    st.navigation(PAGES).run()
