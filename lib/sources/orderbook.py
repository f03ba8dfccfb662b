"""One order-book snapshot reduced to the `depth` dataset: mid, spread and USD resting near mid.

Pure: a book in ccxt's unified shape in, one row out. Used by the ccxt source; any source with a
book (a recorded snapshot, an archive row) can call it too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import polars as pl

from lib.schema import DEPTH_BANDS, TS, TS_TYPE, depth_column

BPS = 1e4  # basis points per unit
PCT = 100.0  # percent per unit
# A level exactly on a band's edge counts as inside it, whatever the float rounding of its distance.
EDGE_TOLERANCE_PCT = 1e-9

Level = Sequence[float]  # [price, amount, ...]: ccxt levels may carry a count or an order id after the amount


def depth_from_order_book(
    book: Mapping[str, Sequence[Level]], ts: datetime, contract_size: float = 1.0
) -> pl.DataFrame:
    """One row: ts, mid, spread_bps and, per band b in DEPTH_BANDS, bid/ask USD within b % of mid.

    mid = (best bid + best ask) / 2; spread_bps = (best ask - best bid) / mid * 1e4.
    bid USD within b % = sum of price * amount * contract_size over bids with |price - mid| / mid <= b/100;
    asks likewise. `contract_size` turns contracts into base units
    (1 on spot and Binance/Bybit linear perps; 0.01 BTC on OKX BTC-USDT-SWAP).

    A band is null when that side of the snapshot stops before the band's edge: the book was cut by
    the request's level limit, so the true depth there is unknown (and larger than the sum). On fine-tick
    markets a REST snapshot of a few hundred levels rarely reaches 0.5 %, so expect nulls there.
    Raises ValueError when a side is empty (no mid exists).
    """
    bids = [(float(level[0]), float(level[1])) for level in book["bids"]]
    asks = [(float(level[0]), float(level[1])) for level in book["asks"]]
    if not bids or not asks:
        raise ValueError(f"order book has {len(bids)} bid and {len(asks)} ask levels; both sides are needed for a mid")
    best_bid = max(price for price, _ in bids)
    best_ask = min(price for price, _ in asks)
    mid = (best_bid + best_ask) / 2
    row: dict[str, object] = {TS: ts, "mid": mid, "spread_bps": (best_ask - best_bid) / mid * BPS}
    for band in DEPTH_BANDS:
        for side, levels in (("bid", bids), ("ask", asks)):
            row[depth_column(side, band)] = _band_usd(levels, mid, band, contract_size)
    return pl.DataFrame([row], schema={TS: TS_TYPE, **{name: pl.Float64() for name in row if name != TS}})


def _band_usd(levels: list[tuple[float, float]], mid: float, band_pct: float, contract_size: float) -> float | None:
    """USD (price * amount * contract_size) of the levels within `band_pct` % of mid; None when the
    farthest level is nearer than that (the snapshot stops before the band's edge)."""
    distance = [(abs(price - mid) / mid * PCT, price * amount * contract_size) for price, amount in levels]
    if max(pct for pct, _ in distance) < band_pct - EDGE_TOLERANCE_PCT:
        return None
    return sum(usd for pct, usd in distance if pct <= band_pct + EDGE_TOLERANCE_PCT)
