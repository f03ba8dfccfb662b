"""Estimated liquidation levels: where leveraged positions would be liquidated. ESTIMATED, not measured.

An open version of CoinGlass's liquidation heatmap ("model 1"; PRODUCT-RESEARCH.md §1.1, §1.6). Every
input is a parameter or a named constant below, and `assumptions` lists them for display and export.

The model, bar by bar (bars of one symbol, sorted by time; ``t`` is a bar):

1. New positions: ``opened_t = max(ΔOI_t, 0)`` USD, entering at the bar's typical price
   ``(high + low + close) / 3`` (or its close). The long share ``s_t`` comes from a split rule
   (`SPLIT_RULES`): taker-buy volume / volume; `direction_share` on up bars and ``1 − direction_share``
   on down bars; or 1/2. Each new contract has a buyer and a seller: the rule says which side holds the
   leveraged position. Per leverage tier ``L`` with weight ``w_L``:
   ``long_{t,L} = opened_t × s_t × w_L`` and ``short_{t,L} = opened_t × (1 − s_t) × w_L``.
2. Liquidation prices (isolated margin, no fees, no funding):
   ``long = entry × (1 − 1/L + mmr_L)``, ``short = entry × (1 + 1/L − mmr_L)``.
3. Consumption: levels sit in price buckets of ``b`` USD, at the bucket centre. A long bucket is
   emptied by a later bar whose low reaches its centre, a short bucket by a later bar whose high does.
4. Closures: when OI falls by the fraction ``c_t = max(−ΔOI_t, 0) / OI_{t−1}``, every open level
   shrinks by ``(1 − c_t)`` (pro rata: nobody knows who closed).
5. Decay (optional): open levels also shrink by ``0.5 ** (Δt / half_life)`` per bar, for closures that
   netted OI changes hide.

``density[t, k]`` is the USD of open levels in bucket ``k`` after bar ``t``: what the heatmap draws.

Open interest: per-bar OI gives ``ΔOI_t`` directly. Coarser OI (e.g. daily) is spread over its
period's bars by volume, ``ΔOI_t = (OI_d − OI_{d−1}) × volume_t / Σ_{t in d} volume`` (equal shares
where there is no volume). Without OI, ``opened_t = volume_share × volume_t × close_t`` (a proxy: the
USD scale is then arbitrary) and levels leave only by consumption and decay. Positions opened before
the first bar are unknown: start the window early enough (a warm-up).

Also here: the current map (price × leverage), cascade fragility, and the scorecard, which checks the
estimate against what happened afterwards (nobody else does).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from lib.analytics.liquidations import (
    LONG,
    MAX_BUCKETS,
    SHORT,
    SIDES,
    TARGET_BUCKETS,
    Grid,
    bucket_index,
    nice_bucket_usd,
    require_one_symbol,
)
from lib.analytics.sessions import is_weekend
from lib.schema import TS, depth_column

VOLUME_PROXY = "a proxy"  # in the open-interest note whenever traded volume stood in for open interest
LEVERAGE_MIX = pl.DataFrame({"leverage": [5.0, 10.0, 25.0, 50.0, 100.0], "weight": [0.35, 0.30, 0.20, 0.10, 0.05]})
# Maintenance-margin rate per tier, shaped like exchange brackets (bigger positions need lower
# leverage and pay a higher rate); illustrative, not any venue's table: pass the venue's own.
MMR_TABLE = pl.DataFrame({"leverage": [5.0, 10.0, 25.0, 50.0, 100.0], "mmr": [0.010, 0.005, 0.005, 0.004, 0.004]})

SPLIT_RULES: dict[str, str] = {
    "taker": "long share = taker-buy volume / volume (50/50 where missing)",
    "direction": "long share = direction_share on up bars, 1 - direction_share on down bars, 1/2 on flat bars",
    "even": "half long, half short",
}
ENTRY_RULES: dict[str, str] = {"typical": "(high + low + close) / 3", "close": "close"}
WARM_UP = timedelta(days=60)  # levels opened before a window still count inside it: load bars this much earlier
DIRECTION_LONG_SHARE = 0.7
VOLUME_OPEN_SHARE = 0.05  # without OI: the part of a bar's traded notional taken as newly opened
LIQUIDATION_FORMULAS = {LONG: "entry × (1 − 1/L + mmr)", SHORT: "entry × (1 + 1/L − mmr)"}
CONSUMPTION_RULE = "a level is consumed when a later bar's low (longs) or high (shorts) reaches its bucket centre"
CLOSURE_RULE = "an open-interest fall of c % removes c % of every open level (pro rata)"

FRAGILITY_BANDS: tuple[float, ...] = (0.02, 0.05, 0.10)
SCORE_HORIZONS: dict[str, timedelta] = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
SCORE_EVERY = "1d"
BASELINE_BAND = 0.02  # the naive forecast: liquidations happen within ±2 % of the last close
_BLOCK = 1024  # bars per block of survival masks in the bar loop (bounds its memory)


@dataclass(frozen=True)
class LevelEstimate:
    """The estimate: open level USD per time × price bucket, and the levels left after the last bar.

    `density` rows are bars (state after each bar closes); `open_long_usd` / `open_short_usd` are
    (tier × bucket) on `density.price`, tiers in `leverage` order; `consumed_usd` (bar × [long,
    short]) the levels each bar traded through: the model's estimated liquidations; `close` the
    bars' closes.
    """

    density: Grid
    leverage: np.ndarray
    open_long_usd: np.ndarray
    open_short_usd: np.ndarray
    consumed_usd: np.ndarray
    close: np.ndarray
    notes: tuple[str, ...]
    assumptions: dict[str, Any]

    @property
    def volume_proxy(self) -> bool:
        """Whether new positions were sized by the volume proxy (no usable open interest)."""
        return VOLUME_PROXY in self.assumptions["open_interest"]

    @property
    def last_price(self) -> float:
        return float(self.close[-1])

    @property
    def last_ts(self) -> datetime:
        return self.density.ts[-1]

    def open_usd(self, side: str) -> np.ndarray:
        """USD of `side`'s levels open after the last bar, per bucket of `density.price`, all tiers summed."""
        return (self.open_long_usd if side == LONG else self.open_short_usd).sum(axis=0)


# ---------------------------------------------------------------------------------------------
# Inputs


def tier_table(leverage_mix: pl.DataFrame = LEVERAGE_MIX, mmr: pl.DataFrame = MMR_TABLE) -> pl.DataFrame:
    """leverage, weight, mmr per tier, sorted by leverage; raises ValueError when weights do not sum to
    1, a tier has no mmr, or ``mmr >= 1/L`` (the position would be liquidated on entry)."""
    tiers = leverage_mix.select("leverage", "weight").join(mmr.select("leverage", "mmr"), on="leverage", how="left")
    tiers = tiers.sort("leverage")
    if tiers["mmr"].null_count():
        missing = tiers.filter(pl.col("mmr").is_null())["leverage"].to_list()
        raise ValueError(f"no maintenance-margin rate for leverage {missing}")
    if abs(tiers["weight"].sum() - 1) > 1e-6:
        raise ValueError(f"leverage weights must sum to 1, got {tiers['weight'].sum():.6g}")
    if tiers.filter((pl.col("leverage") < 1) | (pl.col("mmr") < 0) | (pl.col("mmr") >= 1 / pl.col("leverage"))).height:
        raise ValueError("each tier needs leverage >= 1 and 0 <= mmr < 1/leverage")
    return tiers


MAX_TIERS = 20  # a tier table in a link has at most this many rows
# bars x price buckets of the level model: each side's density is that many float32s (150M: 1.2 GB
# in all; a year of 1-minute bars at the default bucket needs ~105M), so a bucket typed or linked far
# too small for the range is refused, not allocated
MAX_LEVEL_CELLS = 150_000_000


def tiers_text(tiers: pl.DataFrame) -> str:
    """A tier table in its compact text form (for a link): ``leverage:weight:mmr`` per tier,
    comma-separated, e.g. ``5:0.35:0.01,10:0.3:0.005``."""
    rows = tiers.select("leverage", "weight", "mmr").iter_rows()
    return ",".join(":".join(f"{value:g}" for value in row) for row in rows)


def tiers_from_text(text: str) -> pl.DataFrame | None:
    """The tier table `text` (see `tiers_text`) describes, validated as `tier_table` validates; None
    when it cannot be read: not numbers, not finite, a leverage twice, too many tiers, or invalid."""
    parts = text.split(",")
    if len(parts) > MAX_TIERS or len(text) > MAX_TIERS * 40:
        return None
    try:
        rows = [tuple(float(value) for value in part.split(":")) for part in parts]
    except ValueError:
        return None
    if any(len(row) != 3 or not all(math.isfinite(value) for value in row) for row in rows):
        return None
    frame = pl.DataFrame(rows, schema=["leverage", "weight", "mmr"], orient="row")
    if frame["leverage"].n_unique() < frame.height:
        return None
    try:
        return tier_table(frame.select("leverage", "weight"), frame.select("leverage", "mmr"))
    except ValueError:
        return None


def liquidation_prices(entry: np.ndarray, tiers: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(long, short) liquidation prices, shape (entries, tiers): ``entry × (1 ∓ 1/L ± mmr)``."""
    inverse = 1 / tiers["leverage"].to_numpy()
    mmr = tiers["mmr"].to_numpy()
    entry = np.asarray(entry, dtype=np.float64)[:, None]
    return entry * (1 - inverse + mmr), entry * (1 + inverse - mmr)


def entry_price(rule: str = "typical") -> pl.Expr:
    """The price new positions of a bar enter at (`ENTRY_RULES`)."""
    if rule == "typical":
        return (pl.col("high") + pl.col("low") + pl.col("close")) / 3
    if rule == "close":
        return pl.col("close")
    raise ValueError(f"entry must be one of {', '.join(ENTRY_RULES)}, got {rule!r}")


def long_share(split: str = "taker", direction_share: float = DIRECTION_LONG_SHARE) -> pl.Expr:
    """The fraction of a bar's new open interest held as leveraged longs (`SPLIT_RULES`)."""
    if split == "taker":
        share = pl.col("taker_buy_volume") / pl.col("volume")
        return pl.when(share.is_finite()).then(share.clip(0, 1)).otherwise(0.5)
    if split == "direction":
        move = (pl.col("close") - pl.col("open")).sign()
        return 0.5 + (direction_share - 0.5) * move
    if split == "even":
        return pl.lit(0.5)
    raise ValueError(f"split must be one of {', '.join(SPLIT_RULES)}, got {split!r}")


def open_interest_flows(
    bars: pl.DataFrame, open_interest: pl.DataFrame | None = None, *, volume_share: float = VOLUME_OPEN_SHARE
) -> tuple[pl.DataFrame, str]:
    """Per bar (sorted by ts): ts, ``oi_usd`` after the bar, ``opened_usd = max(ΔOI, 0)`` and
    ``closed_fraction = max(−ΔOI, 0) / OI_before``; plus a note saying where OI came from.

    OI (`open_interest`: ts, open_interest_usd) at the bars' resolution or finer is taken as of each
    bar's open (as-of join); coarser OI is spread over each period's bars by volume (module
    docstring). Bars before the first OI value, or in a period with no previous value, open nothing.
    Without OI, or with OI that stops more than one period before the bars do (the levels of the
    latest bars would then come from nothing), every bar uses the volume proxy, and the note says why.
    """
    bars = bars.sort(TS)
    volume = pl.col("volume").fill_null(0).fill_nan(0)
    oi = pl.DataFrame(schema={TS: bars.schema[TS], "oi": pl.Float64}) if open_interest is None else (
        open_interest.select(TS, pl.col("open_interest_usd").alias("oi")).drop_nulls().unique(TS).sort(TS))
    oi_step, bar_step = _step(oi[TS]), _step(bars[TS])
    ends = None if oi.is_empty() else oi[TS].max() + 2 * (oi_step or bar_step or timedelta(0))
    if ends is None or ends < bars[TS].max():  # none, or it stops before the bars: no OI for the latest levels
        why = "no open interest" if ends is None else (
            f"open interest cached only to {oi[TS].max():%Y-%m-%d}, the bars run to {bars[TS].max():%Y-%m-%d}")
        opened = (volume_share * volume * pl.col("close")).alias("opened_usd")
        flows = bars.select(TS, pl.lit(None, pl.Float64).alias("oi_usd"), opened, pl.lit(0.0).alias("closed_fraction"))
        return flows, (f"{why}: {volume_share:.0%} of each bar's traded notional taken as newly opened "
                       f"({VOLUME_PROXY}, the USD scale is arbitrary); levels leave only by consumption and decay")
    if oi_step is not None and bar_step is not None and oi_step > bar_step:
        path = _spread_by_volume(bars.select(TS, volume.alias("volume")), oi, oi_step)
        note = f"open interest every {_duration_text(oi_step)}: each period's change spread over its bars by volume"
    else:
        path = bars.select(TS).join_asof(oi, on=TS, strategy="backward").select(
            TS, pl.col("oi").alias("oi_after"), pl.col("oi").shift(1).alias("oi_before")
        )
        note = "open interest per bar, as of each bar's open"
    delta = pl.col("oi_after") - pl.col("oi_before")
    closed = ((-delta).clip(lower_bound=0) / pl.col("oi_before")).clip(0, 1)
    flows = path.select(
        TS,
        pl.col("oi_after").alias("oi_usd"),
        delta.clip(lower_bound=0).fill_null(0).alias("opened_usd"),
        closed.fill_null(0).fill_nan(0).alias("closed_fraction"),
    )
    return flows, note


def _spread_by_volume(bars: pl.DataFrame, oi: pl.DataFrame, step: timedelta) -> pl.DataFrame:
    """OI before and after each bar, each period's change spread over its bars by volume."""
    period = pl.col(TS).dt.truncate(f"{int(step.total_seconds())}s").alias("_period")
    total = pl.col("volume").sum().over("_period")
    weight = pl.when(total > 0).then(pl.col("volume") / total).otherwise(1 / pl.len().over("_period"))
    change = weight * (pl.col("_now") - pl.col("_prev"))
    return (
        bars.with_columns(period)
        .join(oi.select(pl.col(TS).alias("_period"), pl.col("oi").alias("_now")), on="_period", how="left")
        .join(oi.select((pl.col(TS) + step).alias("_period"), pl.col("oi").alias("_prev")), on="_period", how="left")
        .with_columns(change.alias("_change"))
        .with_columns((pl.col("_prev") + pl.col("_change").cum_sum().over("_period", order_by=TS)).alias("oi_after"))
        .select(TS, "oi_after", (pl.col("oi_after") - pl.col("_change")).alias("oi_before"))
    )


def assumptions(
    *,
    tiers: pl.DataFrame,
    bucket_usd: float,
    split: str,
    entry: str,
    half_life: timedelta | None,
    direction_share: float,
    volume_share: float,
    open_interest: str,
) -> dict[str, Any]:
    """Every input of the estimate as plain JSON-ready values, for the assumptions panel and exports."""
    return {
        "kind": "estimated (a model of where positions would be liquidated), not measured",
        "liquidation_price": dict(LIQUIDATION_FORMULAS),
        "tiers": tiers.select("leverage", "weight", "mmr").to_dicts(),
        "entry": f"{entry}: {ENTRY_RULES[entry]}",
        "split": f"{split}: {SPLIT_RULES[split]}",
        "direction_share": direction_share,
        "open_interest": open_interest,
        "volume_share_without_oi": volume_share,
        "closures": CLOSURE_RULE,
        "consumption": CONSUMPTION_RULE,
        "half_life_hours": None if half_life is None else half_life.total_seconds() / 3600,
        "bucket_usd": bucket_usd,
    }


# ---------------------------------------------------------------------------------------------
# The model


def estimate_levels(bars: pl.DataFrame, open_interest: pl.DataFrame | None = None, *, split: str = "taker",
                    **options: Any) -> LevelEstimate:
    """Run the model of the module docstring over `bars` (canonical bars, one symbol) and
    `open_interest` (canonical open_interest, any resolution, or None for the volume proxy), new
    positions split between longs and shorts by `split` (`SPLIT_RULES`); `options`: those of
    `estimate_splits`."""
    return estimate_splits(bars, open_interest, (split,), **options)[split]


def estimate_splits(
    bars: pl.DataFrame,
    open_interest: pl.DataFrame | None,
    splits: Sequence[str],
    *,
    bucket_usd: float | None = None,
    leverage_mix: pl.DataFrame = LEVERAGE_MIX,
    mmr: pl.DataFrame = MMR_TABLE,
    entry: str = "typical",
    half_life: timedelta | None = None,
    direction_share: float = DIRECTION_LONG_SHARE,
    volume_share: float = VOLUME_OPEN_SHARE,
    history: bool = True,
) -> dict[str, LevelEstimate]:
    """`estimate_levels` under each split rule of `splits`, by rule: the tiers, open-interest flows,
    entry prices and survival, which the rules share, made once. `bucket_usd` defaults to a round
    size giving about `TARGET_BUCKETS` buckets over the levels. `history=False` skips the density
    of every bar (the heatmap: ~90 % of the time): the estimate then holds the levels open after
    the last bar, its density that one row, and no consumed_usd."""
    require_one_symbol(bars)
    if bars.is_empty():
        raise ValueError("no bars to estimate liquidation levels from")
    tiers = tier_table(leverage_mix, mmr)
    bars = bars.sort(TS)
    if "taker_buy_volume" not in bars.columns:
        bars = bars.with_columns(pl.lit(None, pl.Float64).alias("taker_buy_volume"))
    flows, oi_note = open_interest_flows(bars, open_interest, volume_share=volume_share)
    frame = bars.select(TS, "low", "high", "close", entry_price(entry).alias("entry")).hstack(
        flows.select("opened_usd", "closed_fraction")).with_columns(_survival(half_life).alias("factor"))
    long_price, short_price = liquidation_prices(frame["entry"].to_numpy(), tiers)
    if bucket_usd is None:
        bucket_usd = nice_bucket_usd(float(long_price.min()), float(short_price.max()), TARGET_BUCKETS)
    factor = frame["factor"].to_numpy()
    estimates = {}
    for split in splits:
        facts = assumptions(tiers=tiers, bucket_usd=bucket_usd, split=split, entry=entry, half_life=half_life,
                            direction_share=direction_share, volume_share=volume_share, open_interest=oi_note)
        share = bars.select(long_share(split, direction_share)).to_series().to_numpy()
        first, sides = _sides(frame, share, tiers, long_price, short_price, bucket_usd)
        long_open, short_open = (_open_levels(side, factor) for side in sides)
        if history:
            density, consumed = _density(sides, factor)
            ts = frame[TS]
        else:  # the state after the last bar alone: what its open levels sum to
            density = np.stack([long_open.sum(axis=0), short_open.sum(axis=0)])[None]
            consumed, ts = np.zeros((0, 2)), frame[TS].tail(1)
        price = (first + np.arange(sides[0].width)) * bucket_usd
        grid = Grid(ts, price, bucket_usd, density[:, 0], density[:, 1], method=describe(facts))
        estimates[split] = LevelEstimate(grid, tiers["leverage"].to_numpy(), long_open, short_open, consumed,
                                         frame["close"].to_numpy(), (oi_note, *_split_notes(bars, split)), facts)
    return estimates


def _survival(half_life: timedelta | None) -> pl.Expr:
    """What a bar leaves of the levels before it: ``(1 − closed_fraction) × 0.5 ** (Δt / half_life)``."""
    kept = 1 - pl.col("closed_fraction")
    if half_life is None:
        return kept
    hours = pl.col(TS).diff().dt.total_microseconds().fill_null(0) / 3.6e9
    return kept * 0.5 ** (hours / (half_life.total_seconds() / 3600))


@dataclass(frozen=True)
class _Side:
    """One side's inputs to the bar loop: new USD (bar × tier), its bucket column (bar × tier), and
    the consumption cut per bar: columns ``>= cut`` die for longs (``below``: levels live below the
    price), columns ``< cut`` for shorts."""

    new: np.ndarray
    column: np.ndarray
    cut: np.ndarray
    width: int
    below: bool

    def alive(self, column: np.ndarray, cut: np.ndarray) -> np.ndarray:
        """Whether levels in `column` survive `cut` (numpy broadcasting)."""
        return column < cut if self.below else column >= cut


def _sides(
    frame: pl.DataFrame, share: np.ndarray, tiers: pl.DataFrame, long_price: np.ndarray, short_price: np.ndarray,
    bucket_usd: float,
) -> tuple[int, tuple[_Side, _Side]]:
    """The first bucket index of the grid, and each side's new USD (`share` of each bar's opened
    USD to longs), columns and consumption cuts:
    a long bucket dies when a bar's low reaches its centre, ``k >= ceil(low / b − 1/2)``; a short
    one when the high does, ``k <= floor(high / b − 1/2)``."""
    long_k, short_k = bucket_index(long_price, bucket_usd), bucket_index(short_price, bucket_usd)
    first = int(min(long_k.min(), short_k.min()))
    width = int(max(long_k.max(), short_k.max())) - first + 1
    if width > MAX_BUCKETS or frame.height * width > MAX_LEVEL_CELLS:
        fits = max(min(MAX_BUCKETS, MAX_LEVEL_CELLS // frame.height), 1)
        smallest = nice_bucket_usd(first * bucket_usd, (first + width) * bucket_usd, fits)
        raise ValueError(f"{width:,} price buckets of {bucket_usd:g} USD over {frame.height:,} bars is too fine "
                         f"for the level model: choose a bucket of at least {smallest:g} USD")
    low, high = frame["low"].to_numpy() / bucket_usd - 0.5, frame["high"].to_numpy() / bucket_usd - 0.5
    opened, share = frame["opened_usd"].to_numpy()[:, None], share[:, None]
    weight = tiers["weight"].to_numpy()
    long_cut = np.clip(np.ceil(low).astype(np.int64) - first, 0, width)
    short_cut = np.clip(np.floor(high).astype(np.int64) - first + 1, 0, width)
    return first, (
        _Side(opened * share * weight, long_k - first, long_cut, width, below=True),
        _Side(opened * (1 - share) * weight, short_k - first, short_cut, width, below=False),
    )


def _density(sides: tuple[_Side, _Side], factor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Open level USD after each bar, (bar, side, bucket), by the recurrence
    ``D_t = alive_t × factor_t × D_{t−1} + new_t``: consumption, closures and decay hit the levels
    left by earlier bars, never the bar's own new ones; and the USD each bar consumed, (bar, side),
    ``Σ_k (1 − alive_t,k) × factor_t × D_{t−1,k}``. One block of bars at a time: its new levels,
    survival masks, then one multiply-add per bar in float64. The rows are kept as float32 (7
    significant digits, half the memory: a year of 1-minute bars is 10^8 cells)."""
    bars, width = len(factor), sides[0].width
    density = np.empty((bars, 2, width), dtype=np.float32)
    consumed = np.zeros((bars, 2))
    block = np.zeros((1, 2, width))  # row 0: the levels before the block's first bar
    for start in range(0, bars, _BLOCK):
        stop = min(start + _BLOCK, bars)
        block = np.concatenate([block[-1:], _new_levels(sides, start, stop)])
        alive = np.stack([side.alive(np.arange(width), side.cut[start:stop, None]) for side in sides], axis=1)
        f = factor[start:stop, None, None]
        keep, lost = np.where(alive, f, 0.0), np.where(alive, 0.0, f)  # lost: the share of a bucket the bar consumed
        rows, tmp = list(block.reshape(len(block), -1)), np.empty(2 * width)  # views made once, not once per bar
        for before, after, kept in zip(rows[:-1], rows[1:], keep.reshape(len(keep), -1), strict=True):
            np.add(after, np.multiply(before, kept, out=tmp), out=after)
        consumed[start:stop] = np.einsum("tsk,tsk->ts", block[:-1], lost)
        density[start:stop] = block[1:]
    return density, consumed


def _new_levels(sides: tuple[_Side, _Side], start: int, stop: int) -> np.ndarray:
    """The levels bars `start`…`stop − 1` open, (bar, side, bucket) USD, their tiers summed into place."""
    rows, width = stop - start, sides[0].width
    cells = [((np.arange(rows)[:, None] * 2 + index) * width + side.column[start:stop]).ravel()
             for index, side in enumerate(sides)]
    usd = [side.new[start:stop].ravel() for side in sides]
    summed = np.bincount(np.concatenate(cells), weights=np.concatenate(usd), minlength=rows * 2 * width)
    return summed.reshape(rows, 2, width)


def _open_levels(side: _Side, factor: np.ndarray) -> np.ndarray:
    """(tier, bucket) USD still open after the last bar: a level of bar t survives when no later cut
    reaches its column, shrunk by the product of all later factors (the same rule as `_density`)."""
    tiers, width = side.new.shape[1], side.width
    later_cut = (np.minimum if side.below else np.maximum).accumulate(side.cut[::-1])[::-1]
    later_cut = np.append(later_cut[1:], width if side.below else 0)
    survives = side.alive(side.column, later_cut[:, None])
    later_factor = np.append(np.cumprod(factor[::-1])[::-1][1:], 1.0)
    usd = side.new * later_factor[:, None] * survives
    cell = np.arange(tiers) * width + side.column
    return np.bincount(cell.ravel(), weights=usd.ravel(), minlength=tiers * width).reshape(tiers, width)


def describe(facts: dict[str, Any]) -> str:
    """One line of the main assumptions, for a chart's subtitle."""
    tiers = ", ".join(f"{t['leverage']:g}× {t['weight']:.0%}" for t in facts["tiers"])
    mmr = sorted({t["mmr"] for t in facts["tiers"]})
    decay = "no decay" if facts["half_life_hours"] is None else f"half-life {facts['half_life_hours']:g} h"
    return (f"Estimated, not measured · tiers {tiers} · MMR {mmr[0]:.2%}–{mmr[-1]:.2%} · "
            f"split {facts['split'].split(':')[0]} · {decay} · {facts['open_interest']}")


def _split_notes(bars: pl.DataFrame, split: str) -> list[str]:
    if split != "taker":
        return []
    known = (pl.col("taker_buy_volume") / pl.col("volume")).is_finite().fill_null(False)
    missing = bars.select(known.not_().sum()).item()
    return [f"taker-buy volume missing on {missing} of {bars.height} bars: split 50/50 there"] if missing else []


# ---------------------------------------------------------------------------------------------
# The current map and fragility


def level_map(estimate: LevelEstimate) -> pl.DataFrame:
    """Levels open after the last bar, per price bucket and tier: price (bucket lower edge),
    leverage, long_usd, short_usd; only buckets holding something."""
    tiers, width = estimate.open_long_usd.shape
    frame = pl.DataFrame({
        "price": np.tile(estimate.density.price, tiers),
        "leverage": np.repeat(estimate.leverage, width),
        "long_usd": estimate.open_long_usd.ravel(),
        "short_usd": estimate.open_short_usd.ravel(),
    })
    return frame.filter((pl.col("long_usd") > 0) | (pl.col("short_usd") > 0)).sort("price", "leverage")


def level_curves(estimate: LevelEstimate) -> pl.DataFrame:
    """Per price bucket (lower edge): long_usd and short_usd over all tiers, and the cumulative
    curves from the last price outwards: ``long_cumulative_usd(p)`` = long levels with centre in
    [p, last price] (what a fall to p would liquidate, null above the price), and
    ``short_cumulative_usd(p)`` = short levels in [last price, p] (null below it)."""
    long_cumulative, short_cumulative = _cumulative(estimate)
    return pl.DataFrame({
        "price": estimate.density.price,
        "long_usd": estimate.open_usd(LONG),
        "short_usd": estimate.open_usd(SHORT),
        "long_cumulative_usd": long_cumulative,
        "short_cumulative_usd": short_cumulative,
    }).fill_nan(None)


def _cumulative(estimate: LevelEstimate) -> tuple[np.ndarray, np.ndarray]:
    """The long and short cumulative curves of `level_curves` per bucket, NaN where they are null."""
    centre, price = estimate.density.centre, estimate.last_price
    below, above = centre <= price, centre >= price
    long_cumulative = np.where(below, estimate.open_usd(LONG), 0.0)[::-1].cumsum()[::-1]
    short_cumulative = np.where(above, estimate.open_usd(SHORT), 0.0).cumsum()
    return np.where(below, long_cumulative, np.nan), np.where(above, short_cumulative, np.nan)


def fragility(
    estimate: LevelEstimate,
    *,
    bands: tuple[float, ...] = FRAGILITY_BANDS,
    bid_depth_usd: float | None = None,
    ask_depth_usd: float | None = None,
) -> pl.DataFrame:
    """Cascade fragility: estimated long liquidations between the last price and each band below it
    (−2 %, −5 %, −10 %), short liquidations up to each band above it. With 1 % depth, also
    ``depth_multiple = liquidation_usd / depth_usd`` (bids for longs, which are sold into them;
    asks for shorts): how many times the book near the price the cascade would eat."""
    centre = estimate.density.centre
    price = estimate.last_price
    rows = []
    for side, sign, depth in ((LONG, -1, bid_depth_usd), (SHORT, 1, ask_depth_usd)):
        usd = estimate.open_usd(side)
        for band in bands:
            bound = price * (1 + sign * band)
            inside = (centre >= min(price, bound)) & (centre <= max(price, bound))
            total = float(usd[inside].sum())
            rows.append({"side": side, "band": sign * band, "price_bound": bound, "liquidation_usd": total,
                         "depth_usd": depth, "depth_multiple": None if not depth else total / depth})
    return pl.DataFrame(rows, schema={"side": pl.String, "band": pl.Float64, "price_bound": pl.Float64,
                                      "liquidation_usd": pl.Float64, "depth_usd": pl.Float64,
                                      "depth_multiple": pl.Float64})


# ---------------------------------------------------------------------------------------------
# Sensitivity: how far the answer moves with the assumptions

# leverage tilts: each tier's weight times L ** power, rescaled to sum to 1
TILTS: dict[str, int] = {"as set": 0, "toward low leverage (w/L)": -1, "toward high leverage (w×L)": 1}
AS_SET = next(name for name, power in TILTS.items() if power == 0)


def tilted(tiers: pl.DataFrame, tilt: str) -> pl.DataFrame:
    """`tiers` with the weights moved toward low or high leverage (`TILTS`), mmr kept. With the
    default mix, 5× holds 35 % as set, 63 % toward low leverage and 9 % toward high leverage."""
    weight = pl.col("weight") * pl.col("leverage").pow(TILTS[tilt])
    return tiers.with_columns((weight / weight.sum()).alias("weight"))


# the model without its per-bar history, once per split rule and re-tilted for the other leverage
# tilts (9 answers, 3 runs): 0.04 s on a year of 1h bars (9k), 0.26 s on 116k 1m bars, 1.0 s on a
# year of 1m bars (525k; 3.8 s when each tilt was a run); `spread_over_assumptions` skips it above
# this: a year of 1m bars and the 60 days of warm-up the pages load before it
SPREAD_MAX_BARS = 620_000
SPREAD_RUNS = len(SPLIT_RULES) * len(TILTS)


@dataclass(frozen=True)
class Spread:
    """The range of the model's answers over `runs` runs on the same bars under different
    assumptions: `fragility` (side, band, low_usd, high_usd) and the cumulative curves per bucket
    centre `curves` (price, long_low_usd, long_high_usd, short_low_usd, short_high_usd)."""

    runs: int
    fragility: pl.DataFrame
    curves: pl.DataFrame

    def beside(self, bands: pl.DataFrame) -> pl.DataFrame:
        """`bands` (`fragility` or `fragility_by_weekend` rows) with each band's low_usd and high_usd."""
        return bands.join(self.fragility, on=["side", "band"], how="left", maintain_order="left")


def spread_over_assumptions(bars: pl.DataFrame, open_interest: pl.DataFrame | None, tiers: pl.DataFrame, *,
                            made: dict[str, LevelEstimate] | None = None, **options: Any) -> Spread | None:
    """The model run on `bars` under every split rule × leverage tilt of `tiers` (`SPLIT_RULES` ×
    `TILTS`, the other `options` of `estimate_levels` kept), and the range of its answers: how much
    the fragility numbers and the map's curves owe to those assumptions. `made`: runs already made
    on these inputs without history, by split rule, under `tiers` as set (not run again). None
    above `SPREAD_MAX_BARS` bars."""
    if bars.height > SPREAD_MAX_BARS:
        return None
    runs = dict(made or {})
    if missing := [split for split in SPLIT_RULES if split not in runs]:
        runs |= estimate_splits(bars, open_interest, missing, leverage_mix=tilted(tiers, AS_SET), mmr=tiers,
                                history=False, **options)
    as_set = [runs[split] for split in SPLIT_RULES]
    weights = {tilt: tier_table(tilted(tiers, tilt), tiers) for tilt in TILTS if tilt != AS_SET}
    return spread([run if tilt == AS_SET else retilted(run, weights[tilt]) for run in as_set for tilt in TILTS])


def retilted(estimate: LevelEstimate, weights: pl.DataFrame) -> LevelEstimate:
    """`estimate`, a run without history (`history=False`), as the same run under the tier table
    `weights` (its tiers, other weights: `tier_table(tilted(tiers, tilt), tiers)`) comes out,
    without running it: a tier's new levels are opened USD × side share × its weight, and
    consumption, closures and decay act on every level alike, so each tier's open levels scale
    with its weight (a tier at weight 0 stays at 0, as it does in every tilt). `tests/analytics`
    checks it against the re-run."""
    if len(estimate.consumed_usd):
        raise ValueError("only a run without history can be re-tilted: its per-bar density mixes the tiers")
    old = np.array([tier["weight"] for tier in estimate.assumptions["tiers"]])
    scale = np.divide(weights["weight"].to_numpy(), old, out=np.zeros_like(old), where=old > 0)[:, None]
    long_open, short_open = estimate.open_long_usd * scale, estimate.open_short_usd * scale
    facts = estimate.assumptions | {"tiers": weights.select("leverage", "weight", "mmr").to_dicts()}
    density = replace(estimate.density, long_usd=long_open.sum(axis=0)[None], short_usd=short_open.sum(axis=0)[None],
                      method=describe(facts))
    return replace(estimate, density=density, open_long_usd=long_open, open_short_usd=short_open, assumptions=facts)


def spread(estimates: list[LevelEstimate]) -> Spread:
    """The lowest and highest of each fragility band and of each cumulative curve across
    `estimates` (runs on the same bars, so the same last price and bucket size). A run whose grid
    stops short of a price has the value of its last bucket there: a fall below its lowest long
    level liquidates all of them."""
    bands = pl.concat(fragility(e) for e in estimates).group_by("side", "band", maintain_order=True).agg(
        pl.col("liquidation_usd").min().alias("low_usd"), pl.col("liquidation_usd").max().alias("high_usd"))
    half = estimates[0].density.bucket_usd / 2
    prices = np.unique(np.concatenate([e.density.price + half for e in estimates]))
    curves = np.full((len(estimates), 2, prices.size), np.nan)  # run, side (long, short), price
    for run, estimate in zip(curves, estimates, strict=True):
        run[:, np.searchsorted(prices, estimate.density.price + half)] = _cumulative(estimate)
        run[:] = _fill_backward(run[0]), _fill_forward(run[1])
    lows, highs = np.fmin.reduce(curves), np.fmax.reduce(curves)
    return Spread(len(estimates), bands, pl.DataFrame({
        "price": prices, "long_low_usd": lows[0], "long_high_usd": highs[0],
        "short_low_usd": lows[1], "short_high_usd": highs[1],
    }).fill_nan(None))


def _fill_backward(values: np.ndarray) -> np.ndarray:
    """NaNs take the next value that is not NaN (NaN where none follows)."""
    ahead = np.minimum.accumulate(np.where(np.isnan(values), values.size, np.arange(values.size))[::-1])[::-1]
    return np.append(values, np.nan)[ahead]


def _fill_forward(values: np.ndarray) -> np.ndarray:
    """NaNs take the last value before them that is not NaN (NaN where none precedes)."""
    behind = np.maximum.accumulate(np.where(np.isnan(values), -1, np.arange(values.size)))
    return np.append(values, np.nan)[behind]


# ---------------------------------------------------------------------------------------------
# Scorecard: was the estimate right?


def cluster_hits(
    estimate: LevelEstimate,
    bars: pl.DataFrame,
    *,
    every: str = SCORE_EVERY,
    horizons: dict[str, timedelta] = SCORE_HORIZONS,
) -> pl.DataFrame:
    """At the last bar of each `every` period: the largest estimated long cluster below the close and
    short cluster above it (bucket centre and USD), and for each horizon whether price reached it
    within that time after the bar (``{side}_hit_{name}``: a later low <= the long cluster, a later
    high >= the short cluster). Null when there is no cluster or the horizon runs past the data."""
    grid = estimate.density
    snapshots = (
        pl.DataFrame({TS: grid.ts}).with_row_index("_row")
        .group_by(pl.col(TS).dt.truncate(every).alias("_period")).agg(pl.col("_row").max(), pl.col(TS).max())
        .sort(TS)
    )
    rows = snapshots["_row"].to_numpy()
    close = estimate.close[rows]
    out = snapshots.select(TS).with_columns(pl.Series("close", close))
    for side, matrix, mask in (
        (LONG, grid.long_usd[rows], grid.centre[None, :] < close[:, None]),
        (SHORT, grid.short_usd[rows], grid.centre[None, :] > close[:, None]),
    ):
        masked = np.where(mask, matrix, 0.0)
        best = masked.argmax(axis=1)
        usd = np.take_along_axis(masked, best[:, None], axis=1)[:, 0]
        price = np.where(usd > 0, grid.centre[best], np.nan)
        out = out.with_columns(
            pl.Series(f"{side}_cluster_price", price).fill_nan(None), pl.Series(f"{side}_cluster_usd", usd, pl.Float64)
        )
    sorted_bars = bars.sort(TS)
    last = sorted_bars[TS].max()
    for name, horizon in horizons.items():
        future = sorted_bars.rolling(TS, period=horizon, offset=timedelta(0)).agg(
            pl.col("low").min().alias("_low"), pl.col("high").max().alias("_high")
        )
        complete = pl.col(TS) + horizon <= last
        out = out.join(future, on=TS, how="left").with_columns(
            pl.when(complete).then(pl.col("_low") <= pl.col("long_cluster_price")).alias(f"long_hit_{name}"),
            pl.when(complete).then(pl.col("_high") >= pl.col("short_cluster_price")).alias(f"short_hit_{name}"),
        ).drop("_low", "_high")
    return out


def hit_rates(hits: pl.DataFrame) -> pl.DataFrame:
    """Per side and horizon of a `cluster_hits` frame: snapshots scored, hits, and the hit rate."""
    rows = []
    for column in (c for c in hits.columns if "_hit_" in c):
        side, horizon = column.split("_hit_")
        scored = hits[column].drop_nulls()
        rate = float(scored.mean()) if scored.len() else None
        rows.append({"side": side, "horizon": horizon, "snapshots": scored.len(), "hits": int(scored.sum()),
                     "rate": rate})
    return pl.DataFrame(rows, schema={"side": pl.String, "horizon": pl.String, "snapshots": pl.Int64,
                                      "hits": pl.Int64, "rate": pl.Float64})


def capture(
    estimate: LevelEstimate,
    realised: Grid,
    *,
    band: float = BASELINE_BAND,
    every: str = SCORE_EVERY,
) -> pl.DataFrame:
    """Where realised liquidations fell, against where the model had put levels one bar before.

    For each realised bar ``t`` that follows an estimated bar, and each side: ``N_t`` = the buckets
    whose centre lies within ±`band` of the previous close (the baseline: "near the price"); the
    model zone = the ``N_t`` buckets holding the most estimated levels of that side after bar
    ``t − 1`` (non-empty ones only). ``model_usd`` / ``baseline_usd`` = realised USD of that side
    inside each zone; the two zones have the same size, so the comparison is fair. Summed over
    sides, per `every` period: ts, realised_usd, model_usd, baseline_usd.
    """
    grid = estimate.density
    if not np.isclose(realised.bucket_usd, grid.bucket_usd):
        raise ValueError(f"bucket sizes differ: realised {realised.bucket_usd:g}, estimate {grid.bucket_usd:g}")
    axis = grid.ts.to_physical().to_numpy()
    wanted = realised.ts.cast(grid.ts.dtype).to_physical().to_numpy()
    row = np.minimum(np.searchsorted(axis, wanted), len(axis) - 1)
    rows = np.nonzero((row >= 1) & (axis[row] == wanted))[0]
    before = row[rows] - 1
    column = np.rint((realised.price - grid.price[0]) / grid.bucket_usd).astype(np.int64)
    on_grid = (column >= 0) & (column < grid.price.size)
    previous = estimate.close[before]
    near = np.abs(grid.centre[None, :] - previous[:, None]) <= band * previous[:, None]
    realised_usd, model_usd, baseline_usd = np.zeros((3, rows.size))
    for side in SIDES:
        happened = realised.side(side)[rows]
        aligned = np.zeros((rows.size, grid.price.size))
        aligned[:, column[on_grid]] = happened[:, on_grid]
        zone = _largest(grid.side(side)[before], near.sum(axis=1))
        realised_usd = realised_usd + happened.sum(axis=1)
        model_usd = model_usd + (aligned * zone).sum(axis=1)
        baseline_usd = baseline_usd + (aligned * near).sum(axis=1)
    per_bar = pl.DataFrame({TS: realised.ts.gather(rows), "realised_usd": realised_usd, "model_usd": model_usd,
                            "baseline_usd": baseline_usd})
    return per_bar.group_by(pl.col(TS).dt.truncate(every)).agg(pl.all().sum()).sort(TS)


def _largest(values: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Per row, a mask of its `count` largest positive values."""
    rank = np.argsort(np.argsort(-values, axis=1, kind="stable"), axis=1)
    return (rank < count[:, None]) & (values > 0)


def capture_summary(captured: pl.DataFrame) -> dict[str, float | None]:
    """The scorecard's numbers: realised USD scored, the shares caught by the model zone and by the
    baseline band, and ``lift = model_share / baseline_share`` (above 1: the model beats "near the
    price")."""
    realised, model, baseline = (float(captured[c].sum()) for c in ("realised_usd", "model_usd", "baseline_usd"))
    model_share = model / realised if realised else None
    baseline_share = baseline / realised if realised else None
    lift = model_share / baseline_share if model_share is not None and baseline_share else None
    return {"realised_usd": realised, "model_usd": model, "baseline_usd": baseline,
            "model_share": model_share, "baseline_share": baseline_share, "lift": lift}


def consumption_score(estimate: LevelEstimate, bars: pl.DataFrame, totals: pl.DataFrame) -> pl.DataFrame:
    """Does the model know how much gets liquidated, bar by bar? Per side, over the bars with
    realised totals (`liquidation_totals`): the correlation of realised USD with the model's
    estimate (the level USD the bar consumed, `consumed_usd`) and with a baseline, uniform levels
    around the price, which predicts ``max(close_{t−1} − low_t, 0)`` for longs and
    ``max(high_t − close_{t−1}, 0)`` for shorts. Pearson is dominated by the big bursts (the
    cascades); Spearman ranks every bar alike. `totals` must be at the estimate's bar timeframe."""
    bar_step, totals_step = _step(estimate.density.ts), _step(totals[TS].unique().sort())
    if bar_step is not None and totals_step is not None and totals_step != bar_step:
        raise ValueError(f"totals every {totals_step} against bars every {bar_step}: pass totals per bar")
    previous = pl.col("_close").shift(1)
    frame = (
        pl.DataFrame({TS: estimate.density.ts, "_close": estimate.close,
                      "long_model": estimate.consumed_usd[:, 0], "short_model": estimate.consumed_usd[:, 1]})
        .join(bars.select(TS, "low", "high"), on=TS, how="left")
        .with_columns((previous - pl.col("low")).clip(lower_bound=0).alias("long_baseline"),
                      (pl.col("high") - previous).clip(lower_bound=0).alias("short_baseline"))
        .join(totals.group_by(TS).agg(pl.col("long_usd", "short_usd").fill_null(0).sum()), on=TS, how="inner")
        .drop_nulls()
    )
    return pl.concat([
        frame.select(
            pl.lit(side).alias("side"),
            pl.len().alias("bars"),
            *(pl.corr(f"{side}_{who}", f"{side}_usd", method=method).alias(f"{who}_{method}")
              for method in ("pearson", "spearman") for who in ("model", "baseline")),
        )
        for side in SIDES
    ])


def _step(ts: pl.Series) -> timedelta | None:
    """The typical spacing of a time column (median difference)."""
    return ts.diff().drop_nulls().median() if ts.len() > 1 else None


def _duration_text(step: timedelta) -> str:
    hours = step.total_seconds() / 3600
    return f"{hours / 24:g} d" if hours >= 24 else f"{hours:g} h"


def fragility_by_weekend(estimate: LevelEstimate, depth: pl.DataFrame, weekend: str = "utc") -> pl.DataFrame:
    """`fragility` against the median 1 % bid and ask depth of weekday and of weekend rows of the
    `depth` dataset (a ``period`` column: weekday / weekend); without depth rows, one plain row set
    with ``period`` null. The cascade risk of a thin weekend book shows as a larger depth multiple."""
    bid, ask = depth_column("bid", 1.0), depth_column("ask", 1.0)
    usable = depth.drop_nulls([bid, ask]) if not depth.is_empty() else depth
    if usable.is_empty():
        return fragility(estimate).with_columns(pl.lit(None, pl.String).alias("period"))
    medians = usable.group_by(is_weekend(pl.col(TS), weekend).alias("weekend")).agg(pl.col(bid).median(), pl.col(ask).median())
    return pl.concat(
        fragility(estimate, bid_depth_usd=row[bid], ask_depth_usd=row[ask]).with_columns(
            pl.lit("weekend" if row["weekend"] else "weekday").alias("period")
        )
        for row in medians.sort("weekend").iter_rows(named=True)
    )
