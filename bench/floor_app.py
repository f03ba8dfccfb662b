"""The browser floor of pages_bench: a bare Streamlit page that draws one 100-point plotly chart.

What any Streamlit page with a chart costs a new user on the machine at hand (the frontend's
boot, the websocket, loading and evaluating plotly.js), whatever the app does.
"""

import plotly.graph_objects as go
import streamlit as st

st.plotly_chart(go.Figure(go.Scatter(x=list(range(100)), y=[i * i for i in range(100)])))
