"""Pure plotly figure builders: polars frames in, `plotly.graph_objects.Figure` out.

No Streamlit, no data loading, no statistics: analytics computes, charts format and draw. Every
builder uses the one shared look in `lib.charts.theme`.
"""
