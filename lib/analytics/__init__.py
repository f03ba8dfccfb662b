"""Pure polars analytics: frames and expressions in, frames and expressions out.

No I/O, no Streamlit, no plotting. One module per question (drawdowns, sessions, liquidity,
liquidations); each documents its formulas and the reference it follows.
"""
