"""The overview: the state of each asset as of a moment, and the story of the selected window.

Pure (no Streamlit; frames come through a `Loader`). Each figure of an asset's row is computed the
way its own page computes it, over the window that page opens with from the row's link (`LINKS`):

- price, and its change against the close 24 h and 7 d before the last bar;
- the drawdown from the running peak of the year before, and from the 30-day high (the drawdowns
  page's desk metrics over that year);
- weekend against weekday quote volume (base volume where quote volume is missing) over the last
  twelve weeks: ratio, block-bootstrap CI and verdict (the liquidity page's statistics);
- realised liquidations of the last 24 h (long / short, each asset's finest cached timeframe);
- estimated long liquidations within -5 % and short within +5 % (the liquidations page's level
  model with its default choices, over the last 30 days after its warm-up), and the latest funding;
  `level_ranges`: those two estimates' range over the model's other assumptions (3 more runs per
  asset, so the page shows it after its first chart).

`read_market` reads all of it once; the weekend brief (`lib.brief`) builds on the same frames.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from urllib.parse import urlencode

import plotly.graph_objects as go
import polars as pl

from lib.analytics import drawdowns as dd
from lib.analytics import liquidation_levels as levels
from lib.analytics import liquidity as liq
from lib.analytics import liquidity_stats as stats
from lib.analytics.liquidations import LONG, SHORT, nice_bucket_usd, window_totals
from lib.charts.overview import story_figure
from lib.provenance import DEMO_PREFIX, provenance_text, series_entries
from lib.schema import EXCHANGE, SYMBOL, TIMEFRAME, TIMEFRAMES, TS
from lib.views import Loader
from lib.viewstate import View, day_bounds, view_params

DRAWDOWN_HISTORY = timedelta(days=365)  # the running peak: the highest close of the year before
LIQUIDITY_HISTORY = timedelta(weeks=12)  # "lately": twelve weekends against sixty weekdays
REALISED_HISTORY = timedelta(days=1)
LEVEL_HISTORY = timedelta(days=30)  # the level estimate's window, after levels.WARM_UP
FUNDING_HISTORY = timedelta(days=30)
CHANGES: dict[str, timedelta] = {"change_24h": timedelta(hours=24), "change_7d": timedelta(days=7)}
ROW_BAND = 0.05  # the row's estimated liquidations: longs within -5 %, shorts within +5 %
# Weekend liquidity in quote volume (the liquidity page's default), or in base volume where quote
# volume is missing on some days (Binance REST klines imported without it, as in 2026 here).
LIQUIDITY_MEASURES: tuple[str, ...] = (liq.QUOTE_VOLUME, liq.VOLUME)

# Each linked figure of a row -> (its page, the history that page opens with; None: the view itself).
LINKS: dict[str, tuple[str, timedelta | None]] = {
    "price": ("drawdowns", None),
    "change_24h": ("drawdowns", None),
    "change_7d": ("drawdowns", None),
    "current_drawdown": ("drawdowns", DRAWDOWN_HISTORY),
    "drawdown_from_30d_high": ("drawdowns", DRAWDOWN_HISTORY),
    "weekend_ratio": ("liquidity", LIQUIDITY_HISTORY),
    "liquidated_24h": ("liquidations", REALISED_HISTORY),
    "estimated_5pct": ("liquidations", LEVEL_HISTORY),
}

STORY_DAYS = (date(2026, 1, 20), date(2026, 2, 12))  # Sat 31 Jan against Thu-Fri 5-6 Feb 2026
STORY_FALLBACK = timedelta(days=30)
STORY_HOURLY_DAYS = 45  # liquidation bars per hour up to this window length, per day beyond
STORY_EPISODES = 3  # per asset: the deepest episodes whose legs compete for a mark
STORY_LEGS = 2  # days marked: the largest one-day legs, summed over the assets
LEG_PERIOD = "1d"


# ---------------------------------------------------------------------------------------------
# Windows and links


def story_window(first_day: date, last_day: date) -> tuple[date, date]:
    """The overview's default days: the Jan-Feb 2026 cascades when the cache covers them, else the
    cache's last 30 days."""
    start, end = STORY_DAYS
    if first_day <= start and end <= last_day:
        return STORY_DAYS
    return max(first_day, last_day - STORY_FALLBACK + timedelta(days=1)), last_day


def as_of(view: View) -> datetime:
    """The moment the overview describes: the end of the view's last day (UTC)."""
    return day_bounds(view)[1]


def history(view: View, asof: datetime, length: timedelta | None) -> View:
    """The view of a figure over `length` before `asof` (the view itself for None): the days from
    the one `length` before `asof` to the day of the last moment before it."""
    if length is None:
        return view
    return replace(view, start=(asof - length).date(), end=(asof - timedelta(microseconds=1)).date())


def links(view: View, asof: datetime, symbol: str) -> dict[str, str]:
    """Each linked figure of `symbol`'s row -> a relative link to its page with the view filled in."""
    return {
        name: f"{page}?{urlencode(view_params(history(replace(view, assets=(symbol,)), asof, length)))}"
        for name, (page, length) in LINKS.items()
    }


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class Market:
    """What the overview row and the brief read, all of it before `asof`."""

    asof: datetime
    bars: pl.DataFrame  # the view's bars over DRAWDOWN_HISTORY
    totals: pl.DataFrame  # liquidation totals over REALISED_HISTORY, each asset's finest timeframe
    open_interest: pl.DataFrame  # over LEVEL_HISTORY and its warm-up, any exchange
    depth: pl.DataFrame  # the same window
    funding: pl.DataFrame  # over FUNDING_HISTORY, any exchange


def read_market(load: Loader, view: View, asof: datetime) -> Market:
    """Every frame the row needs, through `load` (rows with start <= ts < asof)."""
    early = asof - LEVEL_HISTORY - levels.WARM_UP
    return Market(
        asof,
        bars=load("bars", view.assets, asof - DRAWDOWN_HISTORY, asof, view.exchange, view.timeframe),
        totals=finest(load("liquidation_totals", view.assets, asof - REALISED_HISTORY, asof)),
        open_interest=load("open_interest", view.assets, early, asof),
        depth=load("depth", view.assets, early, asof),
        funding=load("funding", view.assets, asof - FUNDING_HISTORY, asof),
    )


def provenance_line(status: list[dict], dataset: str, frame: pl.DataFrame, lo: datetime, hi: datetime,
                    is_demo: bool) -> str:
    """`provenance_text` of the cached series behind `frame` (every exchange and timeframe in it) over [lo, hi)."""
    if frame.is_empty():
        return f"{DEMO_PREFIX if is_demo else ''}No {dataset} rows cached in this window."
    symbols = set(frame[SYMBOL].unique())
    pairs = frame.select(EXCHANGE, TIMEFRAME).unique().sort(EXCHANGE, TIMEFRAME).iter_rows()
    entries = [e for exchange, timeframe in pairs
               for e in series_entries(status, dataset, exchange, timeframe, symbols)]
    return provenance_text(entries, frame, lo, hi, is_demo)


def bar_length() -> pl.Expr:
    """Each row's bar length from its timeframe (zero for events and snapshots)."""
    return pl.col(TIMEFRAME).replace_strict(TIMEFRAMES, default=timedelta(0), return_dtype=pl.Duration("us"))


def finest(totals: pl.DataFrame) -> pl.DataFrame:
    """Each symbol's rows of its shortest cached timeframe only (1 h where cached, else 1 d), so no
    hour is counted twice."""
    return totals.filter(bar_length() == bar_length().min().over(SYMBOL))


# ---------------------------------------------------------------------------------------------
# The row


def prices(bars: pl.DataFrame) -> pl.DataFrame:
    """Per symbol: ts (the last bar), price (its close), and each of `CHANGES`: the change against
    the close of the bar opened that long before it (null where no bar lies within one bar of it)."""
    closes = bars.select(SYMBOL, TS, "close").sort(TS)
    rows = bars.sort(TS).group_by(SYMBOL).agg(pl.col(TS).last(), pl.col("close").last().alias("price"))
    step = TIMEFRAMES[bars[TIMEFRAME][0]] if bars.height else timedelta(0)
    for name, back in CHANGES.items():
        then = rows.select(SYMBOL, (pl.col(TS) - back).alias(TS)).sort(TS).join_asof(
            closes, on=TS, by=SYMBOL, strategy="backward", tolerance=step, check_sortedness=False)
        rows = rows.join(then.select(SYMBOL, pl.col("close").alias("_then")), on=SYMBOL, how="left").with_columns(
            (pl.col("price") / pl.col("_then") - 1).alias(name)).drop("_then")
    return rows


def drawdowns(bars: pl.DataFrame) -> pl.DataFrame:
    """Per symbol: current_drawdown and drawdown_from_30d_high (`desk_metrics` of `bars`)."""
    return dd.desk_metrics(dd.with_drawdown(bars)).select(SYMBOL, "current_drawdown", "drawdown_from_30d_high")


def weekend_liquidity(bars: pl.DataFrame, weekend: str) -> pl.DataFrame:
    """Per symbol: weekend against weekday volume of `bars` (a `weekend_effect` row: measure, ratio,
    ci_low, ci_high, ...; NaN as null) with its one-line verdict. The measure is the first of
    `LIQUIDITY_MEASURES` with a value on as many days as any."""
    measured = liq.with_calendar(liq.with_measures(bars, with_edge=False), weekend=weekend)
    effects = stats.weekend_effect(liq.daily(measured, LIQUIDITY_MEASURES), LIQUIDITY_MEASURES)
    days = pl.col("n_weekday") + pl.col("n_weekend")
    chosen = effects.filter(days == days.max().over(SYMBOL)).group_by(SYMBOL, maintain_order=True).first()
    return chosen.with_columns(
        pl.col("ratio", "ci_low", "ci_high").fill_nan(None),
        pl.Series("verdict", [stats.verdict(row) for row in chosen.iter_rows(named=True)], dtype=pl.String),
    )


def realised(totals: pl.DataFrame) -> pl.DataFrame:
    """Per symbol with totals: liquidated_long_usd and liquidated_short_usd summed over `totals`."""
    return totals.group_by(SYMBOL).agg(
        pl.col("long_usd").fill_null(0).sum().alias("liquidated_long_usd"),
        pl.col("short_usd").fill_null(0).sum().alias("liquidated_short_usd"),
    )


FRAGILITY_SCHEMA = {"side": pl.String, "band": pl.Float64, "price_bound": pl.Float64, "liquidation_usd": pl.Float64,
                    "depth_usd": pl.Float64, "depth_multiple": pl.Float64, "period": pl.String, SYMBOL: pl.String,
                    "volume_proxy": pl.Boolean, "low_usd": pl.Float64, "high_usd": pl.Float64}


def fragility(market: Market, view: View, *, with_range: bool = False) -> pl.DataFrame:
    """Per symbol, `fragility_by_weekend` of the level estimate as of the last bar, run as the
    liquidations page runs it for the last `LEVEL_HISTORY` (default choices, warm-up before it);
    ``volume_proxy`` is true where no usable open interest was cached (the USD scale is then arbitrary).
    `with_range`: also each band's low_usd and high_usd over other assumptions
    (`levels.spread_over_assumptions`, 3 more runs per asset; null above `levels.SPREAD_MAX_BARS` bars)."""
    start = market.asof - LEVEL_HISTORY
    parts = []
    for symbol in view.assets:
        bars = market.bars.filter(pl.col(SYMBOL) == symbol, pl.col(TS) >= start - levels.WARM_UP)
        window = bars.filter(pl.col(TS) >= start)
        if window.is_empty():
            continue
        oi = market.open_interest.filter(pl.col(SYMBOL) == symbol)
        oi = None if oi.is_empty() else oi
        bucket = nice_bucket_usd(window["low"].min(), window["high"].max())
        estimate = levels.estimate_levels(bars, oi, bucket_usd=bucket, history=False)  # the levels open now, no heatmap
        bands = levels.fragility_by_weekend(estimate, market.depth.filter(pl.col(SYMBOL) == symbol), view.weekend)
        spread = levels.spread_over_assumptions(bars, oi, levels.tier_table(), bucket_usd=bucket) if with_range else None
        if spread is not None:
            bands = spread.beside(bands)
        parts.append(bands.with_columns(pl.lit(symbol).alias(SYMBOL), pl.lit(estimate.volume_proxy).alias("volume_proxy")))
    if not parts:
        return pl.DataFrame(schema=FRAGILITY_SCHEMA)
    return pl.concat(parts, how="diagonal_relaxed").match_to_schema(FRAGILITY_SCHEMA, missing_columns="insert")


RANGE_COLUMNS = {"liquidation_usd": "_usd", "low_usd": "_low_usd", "high_usd": "_high_usd"}  # fragility -> near_levels


def weekend_book(fragile: pl.DataFrame) -> pl.DataFrame:
    """The fragility rows against the weekend book where depth is cached, else the only ones there are."""
    period = "weekend" if "weekend" in fragile["period"].to_list() else fragile["period"][0] if fragile.height else None
    return fragile.filter(pl.col("period").eq_missing(period))


def near_levels(fragile: pl.DataFrame, band: float = ROW_BAND) -> pl.DataFrame:
    """Per symbol of a `fragility` frame: estimated_long_usd within -`band`, estimated_short_usd
    within +`band`, each with its range over other assumptions (estimated_long_low_usd, ..._high_usd;
    null where `fragility` ran without it), longs_depth_multiple (those longs against the 1 % bid
    depth of the `weekend_book`; null without depth) and volume_proxy."""
    long_band = (pl.col("side") == LONG) & (pl.col("band") == -band)
    short_band = (pl.col("side") == SHORT) & (pl.col("band") == band)
    near = fragile.group_by(SYMBOL).agg(
        *(pl.col(column).filter(long_band).first().alias(f"estimated_long{suffix}")
          for column, suffix in RANGE_COLUMNS.items()),
        *(pl.col(column).filter(short_band).first().alias(f"estimated_short{suffix}")
          for column, suffix in RANGE_COLUMNS.items()),
        pl.col("volume_proxy").first(),
    )
    multiple = weekend_book(fragile).filter(long_band).select(SYMBOL, pl.col("depth_multiple").alias("longs_depth_multiple"))
    return near.join(multiple, on=SYMBOL, how="left")


def level_ranges(load: Loader, view: View) -> pl.DataFrame:
    """`near_levels` of `fragility` with its range over other assumptions, as of the end of the view,
    in the view's order (3 more level-model runs per asset: the overview page shows them after its
    first chart)."""
    near = near_levels(fragility(read_market(load, view, as_of(view)), view, with_range=True))
    return pl.DataFrame({SYMBOL: list(view.assets)}).join(near, on=SYMBOL, maintain_order="left")


def latest_funding(funding: pl.DataFrame) -> pl.DataFrame:
    """Per symbol: the latest funding_rate (fraction per interval) and its funding_ts."""
    return funding.sort(TS).group_by(SYMBOL).agg(pl.col("funding_rate").last(), pl.col(TS).last().alias("funding_ts"))


def asset_rows(market: Market, view: View, fragile: pl.DataFrame) -> pl.DataFrame:
    """One row per asset of the view, in its order: every figure of the module docstring (null
    where its data is not cached)."""
    liquidity_bars = market.bars.filter(pl.col(TS) >= market.asof - LIQUIDITY_HISTORY)
    parts = [
        prices(market.bars),
        drawdowns(market.bars),
        weekend_liquidity(liquidity_bars, view.weekend).select(SYMBOL, "measure", "ratio", "ci_low", "ci_high",
                                                               "verdict"),
        realised(market.totals),
        near_levels(fragile),
        latest_funding(market.funding),
    ]
    rows = pl.DataFrame({SYMBOL: list(view.assets)})
    for part in parts:
        rows = rows.join(part, on=SYMBOL, how="left", maintain_order="left")
    return rows


# ---------------------------------------------------------------------------------------------
# The story chart


@dataclass(frozen=True)
class Story:
    """The story chart's inputs for one window."""

    bars: pl.DataFrame  # the window's bars
    totals: pl.DataFrame  # its liquidation totals, each asset's finest timeframe
    liquidations: pl.DataFrame  # ts, long_usd, short_usd, total_usd summed over assets per `every`
    every: str
    legs: pl.DataFrame  # the largest one-day drawdown legs: period_start, symbol, move, weekend, liquidated_usd


def largest_legs(bars: pl.DataFrame, totals: pl.DataFrame, n: int = STORY_LEGS) -> pl.DataFrame:
    """The `n` days on which the deepest drawdown episodes (`STORY_EPISODES` per asset) fell the
    most, summed over the assets (`decline_by_period`): one row per day and asset with ``move``
    (the leg's simple return), ``weekend``, and ``liquidated_usd`` (that day's realised total over
    the assets; null where none is cached), sorted by day."""
    series = dd.with_drawdown(bars)
    legs = (  # one row per day and asset, though two of its episodes may have fallen that day
        dd.decline_by_period(series, dd.top_episodes(dd.episodes(series), STORY_EPISODES), every=LEG_PERIOD)
        .group_by("period_start", SYMBOL).agg(pl.col("log_return").sum(), pl.col("weekend").first())
    )
    worst = legs.group_by("period_start").agg(pl.col("log_return").sum()).sort("log_return").head(n)
    days = window_totals(totals, LEG_PERIOD).select(pl.col(TS).alias("period_start"),
                                                     pl.col("total_usd").alias("liquidated_usd"))
    return (
        legs.filter(pl.col("period_start").is_in(worst["period_start"].implode()), pl.col("log_return") < 0)
        .select("period_start", SYMBOL, (pl.col("log_return").exp() - 1).alias("move"), "weekend")
        .join(days, on="period_start", how="left")
        .sort("period_start", SYMBOL)
    )


def story(load: Loader, view: View) -> Story:
    """The window's bars, its realised liquidations per hour (per day past `STORY_HOURLY_DAYS`, or
    when an asset's totals are daily) and its largest legs."""
    lo, hi = day_bounds(view)
    bars = load("bars", view.assets, lo, hi, view.exchange, view.timeframe)
    totals = finest(load("liquidation_totals", view.assets, lo, hi))
    hourly = (view.end - view.start).days < STORY_HOURLY_DAYS and totals.select(bar_length().max()).item() in (
        None, TIMEFRAMES["1h"])
    every = "1h" if hourly else "1d"
    return Story(bars, totals, window_totals(totals, every), every, largest_legs(bars, totals))


@dataclass(frozen=True)
class Overview:
    """What the overview page shows for one view."""

    asof: datetime
    rows: pl.DataFrame
    story: Story
    figure: go.Figure


def overview(load: Loader, view: View, is_demo: bool) -> Overview:
    """The rows as of the end of the view, and the story chart of its window."""
    asof = as_of(view)
    market = read_market(load, view, asof)
    told = story(load, view)
    figure = story_figure(told.bars, told.liquidations, told.every, told.legs,
                          covered=sorted(told.totals[SYMBOL].unique()), weekend=view.weekend, demo=is_demo)
    return Overview(asof, asset_rows(market, view, fragility(market, view)), told, figure)
