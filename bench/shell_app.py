"""The second browser floor of pages_bench: app.py's shell with one small chart.

A wide page in a navigation of five pages, whose sidebar holds the controls the Liquidations page
has (the view's assets, exchange, timeframe, dates and weekend, a preset button, its own select box,
number input and toggle, and a collapsed expander with a table editor), above one 100-point plotly
chart: what a page of ours costs a new tab before any of its own charts, tables or text.
"""

import datetime

import plotly.graph_objects as go
import polars as pl
import streamlit as st


def chart_page() -> None:
    with st.sidebar:
        st.multiselect("Assets", ["BTC", "ETH", "SOL"], ["BTC", "ETH", "SOL"])
        st.selectbox("Exchange / source", ["binance", "bybit"])
        st.selectbox("Timeframe", ["1h", "1d"])
        st.date_input("Dates (UTC)", (datetime.date(2026, 1, 1), datetime.date(2026, 2, 1)))
        st.radio("Weekend", ["UTC calendar weekend", "CME crypto futures closed"])
        st.button("Preset: the Jan-Feb 2026 selloff", width="stretch")
        st.selectbox("Heatmap asset", ["BTC", "ETH", "SOL"])
        st.number_input("Price bucket (USD)", min_value=0.01, value=250.0)
        st.toggle("Relative colour scale")
        with st.expander("Model assumptions"):
            st.data_editor(pl.DataFrame({"leverage": [5, 10, 25, 50, 100], "weight": [0.35, 0.3, 0.2, 0.1, 0.05]}))
            st.selectbox("New OI split", ["taker", "even"])
    st.plotly_chart(go.Figure(go.Scatter(x=list(range(100)), y=[i * i for i in range(100)])))


def other_page() -> None:
    st.write("Another page.")


st.set_page_config(layout="wide")
st.navigation([st.Page(chart_page, title="Chart", default=True),
               *(st.Page(other_page, title=f"Page {i}", url_path=f"page{i}") for i in range(2, 6))]).run()
