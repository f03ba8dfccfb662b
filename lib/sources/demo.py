"""A SYNTHETIC crypto market for demos and offline use: seeded, deterministic, never real data.

`demo_market` draws two years of hourly BTC, ETH and SOL on a made-up exchange named "demo":
correlated Student-t returns with GARCH(1,1) volatility, pinned to a macro path so prices stay in a
plausible range, thinner and wider books on weekends, open interest that builds in rallies and is
flushed by liquidations, funding that follows the trend, and two liquidation cascades (a Saturday and
a weekday a few days later) echoing the real 31 Jan / 5-6 Feb 2026 selloff. `DemoSource` serves it
through the Source interface; the UI must always label it as synthetic.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property

import numpy as np
import polars as pl

from lib.schema import ASSETS, DATASETS, EVENT, EXCHANGE, SYMBOL, TIMEFRAME, TS, conform, depth_column
from lib.sources.base import EmptyResponse, SourceError

NAME = "demo"
DEMO_DATASETS = frozenset({"bars", "open_interest", "funding", "liquidations", "liquidation_totals", "depth"})
DEFAULT_END = datetime(2026, 2, 28, tzinfo=UTC)
BAR_TIMEFRAME = "1h"
HOURS_PER_DAY = 24
HOUR_US = 3_600_000_000
SATURDAY = 5  # datetime.weekday()

# Returns: multivariate Student-t innovations (a shared chi-square, so assets crash together), scaled
# to unit variance, with GARCH(1,1) variance s²[t+1] = ω + α r[t]² + β s²[t] and ω = σ²(1 − α − β).
T_DOF = 4.0
GARCH_ALPHA = 0.06
GARCH_BETA = 0.92
WEEKEND_VOL_FACTOR = 0.8
PIN_DAYS = 14  # the random walk is bridged back to the macro path every PIN_DAYS days
CORRELATION: dict[tuple[str, str], float] = {("BTC", "ETH"): 0.82, ("BTC", "SOL"): 0.72, ("ETH", "SOL"): 0.78}

# Liquidity: weekends trade ~35 % less and rest ~35 % less depth, with 50 % wider spreads; activity
# peaks in US hours, as 1 + A cos(2π (hour − peak) / 24).
WEEKEND_LIQUIDITY_FACTOR = 0.65
WEEKEND_SPREAD_FACTOR = 1.5
INTRADAY_AMPLITUDE = 0.25
INTRADAY_PEAK_HOUR = 16
VOLUME_MOVE_SENSITIVITY = 0.4  # volume × (1 + k |r| / s): big moves trade more
STRESS_SPREAD_POWER = 0.8  # spread × (s / σ)^p: books widen when volatility rises
STRESS_DEPTH_POWER = 0.7  # depth × (s / σ)^-p: and thin
BAND_DEPTH_SHARE: dict[float, float] = {0.5: 0.55, 1.0: 1.0, 2.0: 1.8}  # USD within the band / within 1 %
WICK_SCALE = 0.5  # high/low reach |N(0, 1)| × s × WICK_SCALE beyond the body
TAKER_BUY_TILT = 0.1  # taker-buy share of volume = 0.5 + tilt × standardised return, clipped
NOISE_SIGMA = 0.2  # log-normal noise on volume, depth and spread

# Open interest (base units) = OI0 × exp(k × (log price − its 14-day EMA) + noise) × exp(−flush), where
# the flush is an exponentially fading sum of DELEVERAGE × the share of OI liquidated each hour.
OI_TREND_SENSITIVITY = 1.5
OI_TREND_HALF_LIFE_HOURS = 14 * HOURS_PER_DAY
OI_NOISE_SIGMA = 0.05
OI_NOISE_HALF_LIFE_HOURS = 3 * HOURS_PER_DAY
OI_RECOVERY_HALF_LIFE_HOURS = 5 * HOURS_PER_DAY
DELEVERAGE = 2.0

# Liquidations: each hour a share of OI is liquidated, share = base × exp(k × adverse move / σ),
# capped; cascades add their own share. Events are Poisson with log-normal sizes.
LIQ_BASE_SHARE = 1e-5
LIQ_SENSITIVITY = 0.9
LIQ_MAX_SHARE = 2e-3
EVENT_MEAN_USD = 50_000.0
EVENT_SIZE_SIGMA = 1.0
LIQ_PRICE_SKEW = (1.2, 3.0)  # Beta(a, b): longs are liquidated near the low, shorts near the high

# Funding every 8 h: base + k × (72 h log return) + noise, clipped: positive in rallies.
FUNDING_EVERY_HOURS = 8
FUNDING_BASE = 1e-4
FUNDING_TREND = 0.01
FUNDING_TREND_HOURS = 72
FUNDING_NOISE = 3e-5
FUNDING_LIMIT = 2.5e-3

# A cascade's log drop is spread over consecutive hours by CASCADE_SHAPE (sums to 1).
CASCADE_SHAPE = (0.15, 0.35, 0.3, 0.2)
CASCADE_LEAD_DAYS = 28  # the weekend cascade is on the Saturday at least this long before `end`


@dataclass(frozen=True)
class AssetParams:
    """What makes one synthetic asset look like itself (USD unless stated)."""

    hourly_vol: float  # long-run σ of hourly log returns
    knots: tuple[float, ...]  # macro price path before cascades, evenly spaced over the window
    cascade_beta: float  # cascade drop relative to BTC's
    quote_volume_usd: float  # weekday hourly traded value
    depth_1pct_usd: float  # weekday USD resting per side within 1 % of mid
    spread_bps: float  # weekday quoted spread
    open_interest_usd: float  # open interest at the first knot


# Knots echo March 2024 - February 2026 (before the cascades), kept inside BTC 40-110k, ETH 1.5-4.5k, SOL 80-250.
ASSET_PARAMS: dict[str, AssetParams] = {
    "BTC": AssetParams(0.0048, (64e3, 60e3, 57e3, 80e3, 72e3, 84e3, 85e3, 78e3, 80e3), 1.0, 80e6, 25e6, 1.0, 12e9),
    "ETH": AssetParams(0.0065, (3300, 3000, 2400, 3300, 2000, 2400, 3400, 3000, 2900), 1.3, 40e6, 12e6, 1.5, 6e9),
    "SOL": AssetParams(0.0080, (160, 140, 130, 190, 140, 150, 190, 160, 140), 1.5, 15e6, 4e6, 3.0, 2e9),
}


@dataclass(frozen=True)
class Cascade:
    """A synthetic liquidation cascade starting at `start`: a log drop of `drop` (BTC; alts × their
    cascade_beta) and `liquidated_share` of open interest in long liquidations, spread by CASCADE_SHAPE."""

    start: datetime
    drop: float
    liquidated_share: float


# (days after the Saturday, start hour UTC, BTC log drop, share of OI liquidated): the weekend one
# liquidates more on thinner books, the weekday one falls further.
CASCADE_PLAN: tuple[tuple[int, int, float, float], ...] = ((0, 18, 0.09, 0.05), (5, 14, 0.13, 0.025))


def demo_cascades(end: datetime = DEFAULT_END) -> tuple[Cascade, ...]:
    """The cascades of the market ending at `end`: for the default end, Sat 31 Jan and Thu 5 Feb 2026."""
    lead = (end - timedelta(days=CASCADE_LEAD_DAYS)).date()
    saturday = lead - timedelta(days=(lead.weekday() - SATURDAY) % 7)
    midnight = datetime(saturday.year, saturday.month, saturday.day, tzinfo=UTC)
    return tuple(
        Cascade(midnight + timedelta(days=day, hours=hour), drop, share) for day, hour, drop, share in CASCADE_PLAN
    )


# --- small numeric helpers -------------------------------------------------------------------------


def _field(params: Sequence[AssetParams], name: str) -> np.ndarray:
    """(k,) one AssetParams field across the assets."""
    return np.array([getattr(p, name) for p in params])


def _correlation(assets: Sequence[str]) -> np.ndarray:
    """The correlation matrix of `assets` from the pairwise CORRELATION table."""
    pair = {**CORRELATION, **{(b, a): rho for (a, b), rho in CORRELATION.items()}}
    return np.array([[1.0 if a == b else pair[(a, b)] for b in assets] for a in assets])


def _student_t(rng: np.random.Generator, n: int, assets: Sequence[str]) -> np.ndarray:
    """(n, k) correlated multivariate-t draws with unit variance (one chi-square per hour)."""
    normal = rng.standard_normal((n, len(assets))) @ np.linalg.cholesky(_correlation(assets)).T
    chi2 = rng.chisquare(T_DOF, size=(n, 1))
    return normal * np.sqrt((T_DOF - 2) / chi2)


def _garch(z: np.ndarray, sigma: np.ndarray, scale: np.ndarray, shocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns r[t] = s[t] × scale[t] × z[t] + shock[t] and the conditional vol s[t] of GARCH(1,1).

    The one loop over time: each variance depends on the previous return (vectorised over assets)."""
    omega = sigma**2 * (1 - GARCH_ALPHA - GARCH_BETA)
    returns, vol = np.empty_like(z), np.empty_like(z)
    variance = sigma**2
    for t in range(len(z)):
        vol[t] = np.sqrt(variance)
        returns[t] = vol[t] * scale[t] * z[t] + shocks[t]
        variance = omega + GARCH_ALPHA * returns[t] ** 2 + GARCH_BETA * variance
    return returns, vol


def _cumulative(returns: np.ndarray) -> np.ndarray:
    """(n + 1, k) running sums of (n, k) returns, starting at 0."""
    return np.vstack([np.zeros((1, returns.shape[1])), np.cumsum(returns, axis=0)])


def _ewm(x: np.ndarray, alpha: float, adjust: bool) -> np.ndarray:
    """Column-wise exponentially weighted mean m[t] = (1 − α) m[t−1] + α x[t] (polars' ewm_mean)."""
    frame = pl.DataFrame(x, schema=[str(i) for i in range(x.shape[1])])
    return frame.select(pl.all().ewm_mean(alpha=alpha, adjust=adjust)).to_numpy()


def _alpha(half_life_hours: float) -> float:
    """The EWM weight α whose memory halves every `half_life_hours`."""
    return 1 - 0.5 ** (1 / half_life_hours)


def _fading_sum(x: np.ndarray, half_life_hours: float) -> np.ndarray:
    """y[t] = d × y[t−1] + x[t] with y[−1] = 0 and d = 0.5^(1/half-life): a memory of x that fades."""
    alpha = _alpha(half_life_hours)
    padded = np.vstack([np.zeros((1, x.shape[1])), x])
    return _ewm(padded, alpha, adjust=False)[1:] / alpha


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float, half_life_hours: float) -> np.ndarray:
    """Slow mean-reverting noise with standard deviation `sigma`: EWM of white noise, rescaled."""
    alpha = _alpha(half_life_hours)
    return _ewm(rng.standard_normal(shape), alpha, adjust=False) * sigma / np.sqrt(alpha / (2 - alpha))


def _lognormal(rng: np.random.Generator, shape: tuple[int, ...], sigma: float = NOISE_SIGMA) -> np.ndarray:
    """Mean-one log-normal noise."""
    return np.exp(sigma * rng.standard_normal(shape) - sigma**2 / 2)


def _naive_utc(moment: datetime) -> np.datetime64:
    """`moment` in UTC as a numpy datetime64[us] (a naive datetime is taken as UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return np.datetime64(aware.astimezone(UTC).replace(tzinfo=None), "us")


# --- the simulated state ---------------------------------------------------------------------------


def _hours(end: datetime, days: int) -> np.ndarray:
    """The hourly bar open times (datetime64[us], UTC) of the `days` before `end`."""
    stop = _naive_utc(end).astype("datetime64[h]")
    return (stop - np.arange(days * HOURS_PER_DAY, 0, -1)).astype("datetime64[us]")


def _is_weekend(hours: np.ndarray) -> np.ndarray:
    """True on Saturday and Sunday, UTC (1970-01-01 was a Thursday, weekday 3)."""
    return (hours.astype("datetime64[D]").astype(np.int64) + 3) % 7 >= SATURDAY


def _hour_of_day(hours: np.ndarray) -> np.ndarray:
    return hours.astype("datetime64[h]").astype(np.int64) % HOURS_PER_DAY


def _cascade_paths(hours: np.ndarray, cascades: Sequence[Cascade], betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, k) log-return shocks and (n, 1) share of open interest liquidated, hour by hour."""
    shocks, shares = np.zeros((len(hours), len(betas))), np.zeros((len(hours), 1))
    shape = np.asarray(CASCADE_SHAPE)
    for cascade in cascades:
        start = _naive_utc(cascade.start)
        rows = np.searchsorted(hours, start) + np.arange(len(shape))
        inside = rows < len(hours)
        if start < hours[0] or not inside.any():
            continue  # the cascade falls outside the window
        shocks[rows[inside]] -= np.outer(shape[inside] * cascade.drop, betas)
        shares[rows[inside], 0] += shape[inside] * cascade.liquidated_share
    return shocks, shares


def _pinned_log_prices(returns: np.ndarray, params: Sequence[AssetParams]) -> np.ndarray:
    """(n + 1, k) log prices at the hour boundaries: the random walk of `returns`, bridged back every
    PIN_DAYS to the macro path interpolated (in log) between each asset's knots."""
    n = len(returns)
    walk = _cumulative(returns)
    steps = np.arange(n + 1)
    pins = np.unique(np.append(np.arange(0, n + 1, PIN_DAYS * HOURS_PER_DAY), n))
    columns = []
    for j, asset in enumerate(params):
        macro = np.interp(steps, np.linspace(0, n, len(asset.knots)), np.log(asset.knots))
        columns.append(macro + walk[:, j] - np.interp(steps, pins, walk[pins, j]))
    return np.column_stack(columns)


@dataclass(frozen=True)
class _Simulation:
    """The hourly state every dataset is derived from; arrays are (n, k) unless noted."""

    hours: np.ndarray  # (n,) bar open times
    assets: tuple[str, ...]
    params: tuple[AssetParams, ...]
    log_price: np.ndarray  # (n + 1, k) at the hour boundaries: open = [:-1], close = [1:]
    vol: np.ndarray  # conditional σ of each hour (GARCH state, before the weekend scale)
    z: np.ndarray  # each hour's return over its scaled conditional σ, cascades included
    cascade_share: np.ndarray  # (n, 1) share of open interest the cascades liquidate

    @property
    def weekend(self) -> np.ndarray:
        return _is_weekend(self.hours)[:, None]

    @property
    def stress(self) -> np.ndarray:
        """Conditional over long-run vol: about 1 in calm hours, 2-4 after a cascade."""
        return self.vol / self.param("hourly_vol")

    @property
    def open(self) -> np.ndarray:
        return np.exp(self.log_price[:-1])

    @property
    def close(self) -> np.ndarray:
        return np.exp(self.log_price[1:])

    def param(self, name: str) -> np.ndarray:
        return _field(self.params, name)


def _simulate(rng: np.random.Generator, end: datetime, days: int, assets: tuple[str, ...]) -> _Simulation:
    """Returns (GARCH on multivariate t, weekend-scaled) pinned to the macro path, then the cascades."""
    hours = _hours(end, days)
    params = tuple(ASSET_PARAMS[a] for a in assets)
    shocks, shares = _cascade_paths(hours, demo_cascades(end), _field(params, "cascade_beta"))
    scale = np.where(_is_weekend(hours), WEEKEND_VOL_FACTOR, 1.0)[:, None]
    returns, vol = _garch(_student_t(rng, len(hours), assets), _field(params, "hourly_vol"), scale, shocks)
    log_price = _pinned_log_prices(returns - shocks, params) + _cumulative(shocks)
    z = np.diff(log_price, axis=0) / (vol * scale)
    return _Simulation(hours, assets, params, log_price, vol, z, shares)


def _long_frame(hours: np.ndarray, assets: Sequence[str], timeframe: str, **columns: np.ndarray) -> pl.DataFrame:
    """(n, k) arrays -> one row per (symbol, hour), symbol-major, with exchange and timeframe set."""
    return pl.DataFrame(
        {
            EXCHANGE: NAME,
            SYMBOL: np.repeat(np.asarray(assets), len(hours)),
            TIMEFRAME: timeframe,
            TS: np.tile(hours, len(assets)),
            **{name: values.T.ravel() for name, values in columns.items()},
        }
    ).with_columns(pl.col(TS).dt.replace_time_zone("UTC"))


# --- the datasets ----------------------------------------------------------------------------------


def _wicks(rng: np.random.Generator, sim: _Simulation) -> tuple[np.ndarray, np.ndarray]:
    """(high, low): |N(0, 1)| × s × WICK_SCALE beyond the body, so low <= open, close <= high."""
    reach = sim.vol * WICK_SCALE
    high = np.maximum(sim.open, sim.close) * np.exp(np.abs(rng.standard_normal(reach.shape)) * reach)
    low = np.minimum(sim.open, sim.close) * np.exp(-np.abs(rng.standard_normal(reach.shape)) * reach)
    return high, low


def _bars(rng: np.random.Generator, sim: _Simulation, high: np.ndarray, low: np.ndarray) -> pl.DataFrame:
    """Hourly OHLCV: open = previous close; traded value by session, size of the move and stress."""
    phase = 2 * np.pi * (_hour_of_day(sim.hours) - INTRADAY_PEAK_HOUR) / HOURS_PER_DAY
    session = np.where(sim.weekend, WEEKEND_LIQUIDITY_FACTOR, 1.0) * (1 + INTRADAY_AMPLITUDE * np.cos(phase))[:, None]
    activity = np.sqrt(sim.stress) * (1 + VOLUME_MOVE_SENSITIVITY * np.abs(sim.z))
    quote_volume = sim.param("quote_volume_usd") * session * activity * _lognormal(rng, high.shape)
    volume = quote_volume / ((high + low + sim.close) / 3)
    return _long_frame(
        sim.hours, sim.assets, BAR_TIMEFRAME,
        open=sim.open, high=high, low=low, close=sim.close, volume=volume, quote_volume=quote_volume,
        taker_buy_volume=volume * np.clip(0.5 + TAKER_BUY_TILT * sim.z, 0.05, 0.95),
        volume_reliable=np.ones_like(high, dtype=bool),
    )  # fmt: skip


def _leverage(rng: np.random.Generator, sim: _Simulation) -> np.ndarray:
    """Open interest (base units) at each hour's close before liquidation flushes: it builds while
    price runs above its 14-day EMA, with slow mean-reverting noise."""
    close_log = sim.log_price[1:]
    trend = close_log - _ewm(close_log, _alpha(OI_TREND_HALF_LIFE_HOURS), adjust=True)
    noise = _smooth_noise(rng, close_log.shape, OI_NOISE_SIGMA, OI_NOISE_HALF_LIFE_HOURS)
    first_qty = sim.param("open_interest_usd") / np.exp(sim.log_price[0])
    return first_qty * np.exp(OI_TREND_SENSITIVITY * trend + noise)


def _liquidated_usd(sim: _Simulation, open_interest_usd: np.ndarray) -> dict[str, np.ndarray]:
    """side -> USD liquidated each hour: bursts on sharp drops (longs) and spikes (shorts), capped,
    plus the cascades' share on the long side."""
    move = np.diff(sim.log_price, axis=0) / sim.param("hourly_vol")
    adverse = np.clip(np.stack([-move, move]), 0, None)
    share = np.minimum(LIQ_BASE_SHARE * np.exp(LIQ_SENSITIVITY * adverse), LIQ_MAX_SHARE)
    return {"long": open_interest_usd * (share[0] + sim.cascade_share), "short": open_interest_usd * share[1]}


def _flushed(leverage: np.ndarray, liquidated_share: np.ndarray) -> np.ndarray:
    """Open interest after liquidations: leverage × exp(−flush), the flush a fading sum of
    DELEVERAGE × the share liquidated each hour (stops and voluntary closes follow the forced ones)."""
    return leverage * np.exp(-_fading_sum(DELEVERAGE * liquidated_share, OI_RECOVERY_HALF_LIFE_HOURS))


def _liquidation_events(
    rng: np.random.Generator, sim: _Simulation, high: np.ndarray, low: np.ndarray, usd: dict[str, np.ndarray]
) -> pl.DataFrame:
    """Poisson events per hour and side, log-normal sizes, priced inside the bar (longs near the low)."""
    mu = np.log(EVENT_MEAN_USD) - EVENT_SIZE_SIGMA**2 / 2
    frames = []
    for side, hourly in usd.items():
        counts = rng.poisson(hourly / EVENT_MEAN_USD)
        hour, asset = np.nonzero(counts)
        hour, asset = np.repeat(hour, counts[hour, asset]), np.repeat(asset, counts[hour, asset])
        position = rng.beta(*LIQ_PRICE_SKEW, size=len(hour))
        from_low = position if side == "long" else 1 - position
        price = low[hour, asset] + (high[hour, asset] - low[hour, asset]) * from_low
        size_usd = rng.lognormal(mu, EVENT_SIZE_SIGMA, size=len(hour))
        ts = sim.hours[hour] + (rng.random(len(hour)) * HOUR_US).astype("timedelta64[us]")
        symbol = np.asarray(sim.assets)[asset]
        frames.append(pl.DataFrame({SYMBOL: symbol, TS: ts, "side": side, "price": price, "qty": size_usd / price}))
    return (
        pl.concat(frames)
        .with_columns(
            pl.lit(NAME).alias(EXCHANGE),
            pl.lit(EVENT).alias(TIMEFRAME),
            pl.col(TS).dt.replace_time_zone("UTC"),
            notional_usd=pl.col("price") * pl.col("qty"),
            sampled=pl.lit(False),
        )
        .sort(SYMBOL, TS)
    )


def _liquidation_totals(events: pl.DataFrame, grid: pl.DataFrame) -> pl.DataFrame:
    """Hourly long_usd / short_usd: the sum of the events' notional in each hour, zero where none."""
    sums = events.group_by(SYMBOL, pl.col(TS).dt.truncate(BAR_TIMEFRAME)).agg(
        (pl.col("notional_usd") * (pl.col("side") == side)).sum().alias(f"{side}_usd") for side in ("long", "short")
    )
    return grid.join(sums, on=[SYMBOL, TS], how="left").with_columns(pl.col("long_usd", "short_usd").fill_null(0.0))


def _funding(rng: np.random.Generator, sim: _Simulation) -> pl.DataFrame:
    """Funding every 8 h (fraction per interval): base + k × 72 h log return + noise, clipped."""
    rows = np.flatnonzero(_hour_of_day(sim.hours) % FUNDING_EVERY_HOURS == 0)
    trend = sim.log_price[rows] - sim.log_price[np.maximum(rows - FUNDING_TREND_HOURS, 0)]
    noise = FUNDING_NOISE * rng.standard_normal(trend.shape)
    rate = np.clip(FUNDING_BASE + FUNDING_TREND * trend + noise, -FUNDING_LIMIT, FUNDING_LIMIT)
    return _long_frame(sim.hours[rows], sim.assets, f"{FUNDING_EVERY_HOURS}h", funding_rate=rate)


def _depth(rng: np.random.Generator, sim: _Simulation) -> pl.DataFrame:
    """Hourly book snapshots at each hour's open: spread widens and depth thins on weekends and in stress."""
    spread = (
        sim.param("spread_bps")
        * np.where(sim.weekend, WEEKEND_SPREAD_FACTOR, 1.0)
        * sim.stress**STRESS_SPREAD_POWER
        * _lognormal(rng, sim.vol.shape)
    )
    weekend = np.where(sim.weekend, WEEKEND_LIQUIDITY_FACTOR, 1.0)
    one_pct = sim.param("depth_1pct_usd") * weekend * sim.stress**-STRESS_DEPTH_POWER
    sides = {side: one_pct * _lognormal(rng, one_pct.shape) for side in ("bid", "ask")}
    bands = {
        depth_column(side, band): usd * share for side, usd in sides.items() for band, share in BAND_DEPTH_SHARE.items()
    }
    return _long_frame(sim.hours, sim.assets, BAR_TIMEFRAME, mid=sim.open, spread_bps=spread, **bands)


def demo_market(
    seed: int = 7, end: datetime | None = None, days: int = 730, assets: Sequence[str] = ASSETS
) -> dict[str, pl.DataFrame]:
    """A SYNTHETIC market: dataset name -> canonical frame (exchange "demo"), identical for the same
    arguments. bars, open_interest, liquidation_totals and depth are hourly, funding every 8 h,
    liquidations are events. `end` (exclusive, default 2026-02-28 00:00 UTC) is the last bar's close."""
    unknown = [a for a in assets if a not in ASSET_PARAMS]
    if unknown:
        raise ValueError(f"no demo parameters for {', '.join(unknown)}; known: {', '.join(ASSET_PARAMS)}")
    rng = np.random.default_rng(seed)
    sim = _simulate(rng, end or DEFAULT_END, days, tuple(assets))
    high, low = _wicks(rng, sim)
    leverage = _leverage(rng, sim)
    liquidated = _liquidated_usd(sim, leverage * sim.close)
    open_interest = _flushed(leverage, sum(liquidated.values()) / (leverage * sim.close))
    open_interest_usd = open_interest * sim.close
    bars = _bars(rng, sim, high, low)
    events = _liquidation_events(rng, sim, high, low, liquidated)
    frames = {
        "bars": bars,
        "open_interest": _long_frame(
            sim.hours, sim.assets, BAR_TIMEFRAME, open_interest=open_interest, open_interest_usd=open_interest_usd
        ),
        "funding": _funding(rng, sim),
        "liquidations": events,
        "liquidation_totals": _liquidation_totals(events, bars.select(EXCHANGE, SYMBOL, TIMEFRAME, TS)),
        "depth": _depth(rng, sim),
    }
    return {name: conform(frame, DATASETS[name]) for name, frame in frames.items()}


class DemoSource:
    """The Source interface over `demo_market`: a SYNTHETIC market, never real data.

    The market is drawn once per instance on first fetch. Bars come in 1h only; the other datasets
    keep their own cadence (funding 8h, liquidations as events) whatever `timeframe` asks for.
    """

    name = NAME
    datasets = DEMO_DATASETS
    timeframes: tuple[str, ...] = (BAR_TIMEFRAME,)

    def __init__(self, seed: int = 7, end: datetime | None = None, days: int = 730) -> None:
        self.seed, self.end, self.days = seed, end, days

    @cached_property
    def market(self) -> dict[str, pl.DataFrame]:
        return demo_market(self.seed, self.end, self.days)

    def market_id(self, symbol: str, dataset: str) -> str:
        """The demo market's id: 'DEMO:BTC'."""
        return f"DEMO:{symbol}"

    def fetch(
        self, dataset: str, symbol: str, timeframe: str, since: datetime | None, until: datetime | None
    ) -> Iterator[pl.DataFrame]:
        """Yield the rows of `dataset` for `symbol` with since <= ts < until, in one chunk."""
        if dataset not in self.datasets:
            raise SourceError(f"demo has no {dataset!r}; it has {', '.join(sorted(self.datasets))}")
        if dataset == "bars" and timeframe not in self.timeframes:
            raise SourceError(f"demo bars are {', '.join(self.timeframes)} only, not {timeframe!r}")
        wanted = [pl.col(SYMBOL) == symbol]
        wanted += [pl.col(TS) >= since] if since else []
        wanted += [pl.col(TS) < until] if until else []
        rows = self.market[dataset].filter(wanted)
        if rows.is_empty():
            raise EmptyResponse(f"demo {dataset} has no {symbol} rows between {since} and {until}")
        yield rows
