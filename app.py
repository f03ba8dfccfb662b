"""Cascade: the entry point routes to the pages and does nothing else."""

import streamlit as st

st.set_page_config(page_title="Cascade: crypto market stress", page_icon=":material/waterfall_chart:", layout="wide")

PAGES = [
    st.Page("pages/data.py", title="Data", icon=":material/database:", url_path="data", default=True),
]

st.navigation(PAGES).run()
