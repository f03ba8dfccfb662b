"""Cascade: the entry point routes to the pages and does nothing else."""

import streamlit as st

from lib import ui

ui.use_explicit_navigation()
st.set_page_config(page_title="Cascade: crypto market stress", page_icon=":material/waterfall_chart:", layout="wide")

OVERVIEW = st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", url_path="", default=True)
PAGES = [
    OVERVIEW,
    st.Page("pages/drawdowns.py", title="Drawdowns", icon=":material/trending_down:", url_path="drawdowns"),
    st.Page("pages/liquidity.py", title="Weekend liquidity", icon=":material/water_drop:", url_path="liquidity"),
    st.Page("pages/liquidations.py", title="Liquidations", icon=":material/local_fire_department:", url_path="liquidations"),
    st.Page("pages/data.py", title="Data", icon=":material/database:", url_path="data"),
]


def overview_by_name() -> None:
    """/overview: the default page is served at "/", so its name forwards there, the link's view kept."""
    st.switch_page(OVERVIEW, query_params=st.query_params.to_dict())


ROUTES = [*PAGES, st.Page(overview_by_name, title="Overview", url_path="overview", visibility="hidden")]
LOGIN = st.Page("pages/login.py", title="Sign in", icon=":material/login:", url_path="login")

if ui.identity() is None:  # hosted mode before sign-in: the login view and nothing else
    # ...answering at every page's address, so a shared link keeps its page and its view through the sign-in
    at_every_address = [st.Page("pages/login.py", title="Sign in", url_path=page.url_path, default=page.url_path == "")
                        for page in ROUTES]
    st.navigation([*at_every_address, LOGIN], position="hidden").run()
else:
    ui.account_box()
    st.navigation(ROUTES).run()
