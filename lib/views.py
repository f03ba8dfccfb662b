"""What each page shows, built from frames: the analytics results and the figures, in one place.

Pure (no Streamlit, no I/O), so the page and the command-line export draw the very same charts.
Each builder takes the frames a page loaded and the page's own choices, and returns a small
dataclass of frames and named figures, in the order the page shows them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import plotly.graph_objects as go
import polars as pl

from lib.analytics import drawdowns as dd
from lib.analytics import liquidation_levels as levels
from lib.analytics import liquidity as liq
from lib.analytics import liquidity_stats as stats
from lib.analytics.liquidations import DEFAULT_PLACEMENT, Grid, largest_bursts, nice_bucket_usd, realised_heatmap
from lib.charts import liquidity as liquidity_charts
from lib.charts.downsample import minmax
from lib.charts.drawdowns import drawdown_figure, episode_id, episode_scatter, underwater_comparison, zoom
from lib.charts.liquidations import (
    colour_top,
    estimated_heatmap_figure,
    liquidation_map_figure,
    realised_between,
    realised_heatmap_figure,
    replay_figure,
    scorecard_figure,
    with_colour_top,
)
from lib.charts.tables import episodes_with_attribution
from lib.provenance import chart_provenance
from lib.schema import SYMBOL, TIMEFRAME, TIMEFRAMES, TS
from lib.viewstate import View, day_bounds

# load(dataset, symbols, start, end, exchange=None, timeframe=None): rows with start <= ts < end
Loader = Callable[..., pl.DataFrame]
# badge((dataset, rows drawn), ..., window=None, estimated=False): the provenance badge of one chart
Badge = Callable[..., str]

# The bars the cascade comparison reads: from its baselines' weeks (plus the estimators' previous
# bar) to the Monday that ends the last cascade's UTC week, so its share of the week is defined.
EVENT_SPAN = (liq.CASCADES[0].start - timedelta(weeks=liq.BASELINE_WEEKS + 1),
              liq.CASCADES[-1].end + timedelta(days=7 - liq.CASCADES[-1].end.weekday()))
SCATTER_EPISODES = 10  # the scatter shows at least this many episodes per asset
BURSTS = 10  # the largest liquidation windows listed
DAY = timedelta(days=1)


def figure_asset(figure: str) -> str:
    """The asset of a figure named `<chart>_<ASSET>`, as the pages name per-asset figures (for any
    other name, its last word, which is no asset)."""
    return figure.rsplit("_", 1)[-1]


def drawn_rows(figure: str, frame: pl.DataFrame) -> pl.DataFrame:
    """The rows of `frame` a figure draws: a per-asset figure (`figure_asset`) that asset's rows
    only; any other figure all of them."""
    mine = frame.filter(pl.col(SYMBOL) == figure_asset(figure))
    return frame if mine.is_empty() else mine


@dataclass(frozen=True)
class DrawdownOptions:
    top_n: int = 5
    threshold: float = dd.DEEP_DRAWDOWN
    intrabar: bool = False
    log_price: bool = False
    weekend: str = "utc"


@dataclass
class DrawdownView:
    series: pl.DataFrame
    metrics: pl.DataFrame
    ranked: pl.DataFrame  # the top episodes, deepest first, with their attribution shares
    episodes: pl.DataFrame  # every episode (the charts show more than the top ones)
    figures: dict[str, go.Figure] = field(default_factory=dict)


def drawdowns(bars: pl.DataFrame, liquidations: pl.DataFrame | None, options: DrawdownOptions) -> DrawdownView:
    """Drawdown series, desk metrics, the top-N episodes with attribution, and the page's charts:
    (for 2+ assets) the comparison first, the headline of a selloff, then one price/underwater
    figure per asset and the episode scatter."""
    series = dd.with_drawdown(bars, intrabar=options.intrabar)
    episodes = dd.episodes(series)
    top = dd.top_episodes(episodes, options.top_n)
    liquidations = None if liquidations is None or liquidations.is_empty() else liquidations
    attribution = dd.attribution(series, top, weekend=options.weekend, liquidations=liquidations)
    view = DrawdownView(series, dd.desk_metrics(series, table=episodes, deeper_than=options.threshold),
                        episodes_with_attribution(top.sort(dd.DEPTH), attribution), episodes)
    if series[SYMBOL].n_unique() > 1:
        aligned = dd.aligned_drawdowns(bars, intrabar=options.intrabar)
        together = dd.underwater_together(aligned, deeper_than=options.threshold)
        view.figures["compare"] = underwater_comparison(minmax(aligned, dd.DRAWDOWN), together=together,
                                                        weekends=options.weekend, title="Under water together")
    for symbol in series[SYMBOL].unique(maintain_order=True):
        part = series.filter(pl.col(SYMBOL) == symbol)
        view.figures[f"drawdown_{symbol}"] = drawdown_figure(
            minmax(part, dd.DRAWDOWN), top.filter(pl.col(SYMBOL) == symbol), log_price=options.log_price, weekends=options.weekend,
            title=f"{symbol} drawdown from the running peak")
    view.figures["episodes"] = episode_scatter(dd.top_episodes(episodes, max(options.top_n, SCATTER_EPISODES)),
                                               title="Depth against time under water")
    return view


def zoomed_to_episode(view: DrawdownView, picked: str) -> dict[str, go.Figure] | None:
    """`view`'s figures with the chart of the episode named `picked` (its `episode_id`) zoomed to
    it, as a copy (the view may be shared): peak to recovery, or to the data's end while active,
    with a tenth of its length as margin on each side. None for an id not in this view (the options
    changed since the click, or a link's id from another view)."""
    found = view.episodes.filter(episode_id() == picked)
    if found.is_empty():
        return None
    episode = found.row(0, named=True)
    margin = timedelta(hours=max(episode[dd.UNDERWATER_HOURS] or 0, 24) * 0.1)
    end = episode[dd.RECOVERY_TS] or view.series.filter(pl.col(SYMBOL) == episode[SYMBOL])[TS].max()
    name = f"drawdown_{episode[SYMBOL]}"
    return view.figures | {name: zoom(view.figures[name], episode[dd.PEAK_TS] - margin, end + margin)}


@dataclass(frozen=True)
class LiquidationOptions:
    bucket_usd: float | None = None  # None: a round size for the window's price range
    placement: str = DEFAULT_PLACEMENT
    scale: str = "absolute"
    tiers: pl.DataFrame = field(default_factory=levels.tier_table)  # leverage, weight, mmr
    split: str = "taker"
    half_life: timedelta | None = None
    weekend: str = "utc"


@dataclass
class LiquidationView:
    bucket_usd: float
    grid: Grid | None
    bursts: pl.DataFrame | None
    estimate: levels.LevelEstimate
    at_step: levels.LevelEstimate
    fragility: pl.DataFrame
    figures: dict[str, go.Figure] = field(default_factory=dict)


def _until(bars: pl.DataFrame, oi: pl.DataFrame, until: datetime | None) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """The level model's inputs up to `until` (all of them for None); no open interest as None."""
    if until is not None:
        bars, oi = bars.filter(pl.col(TS) <= until), oi.filter(pl.col(TS) <= until)
    return bars, None if oi.is_empty() else oi


def _estimate(bars: pl.DataFrame, oi: pl.DataFrame, bucket: float, options: LiquidationOptions,
              until: datetime | None = None, *, history: bool = True) -> levels.LevelEstimate:
    return _estimates(bars, oi, bucket, options, until, (options.split,), history=history)[options.split]


def _estimates(bars: pl.DataFrame, oi: pl.DataFrame, bucket: float, options: LiquidationOptions,
               until: datetime | None, splits: Sequence[str], *, history: bool = True) -> dict[str, levels.LevelEstimate]:
    """The level model on `bars` up to `until` with the page's options, under each split rule of `splits`."""
    return levels.estimate_splits(
        *_until(bars, oi, until), splits, bucket_usd=bucket, half_life=options.half_life,
        leverage_mix=options.tiers.select("leverage", "weight"), mmr=options.tiers.select("leverage", "mmr"),
        history=history,
    )


def _bucket(window: pl.DataFrame, options: LiquidationOptions) -> float:
    """The price bucket: the options' own, or a round size for the price range of the `window` shown."""
    return options.bucket_usd or nice_bucket_usd(window["low"].min(), window["high"].max())


def liquidations(bars: pl.DataFrame, since: datetime, totals: pl.DataFrame, open_interest: pl.DataFrame,
                 depth: pl.DataFrame, options: LiquidationOptions, step: datetime | None = None) -> LiquidationView:
    """One asset's realised heatmap and largest bursts (when `totals` has rows), the estimated levels
    (run over all of `bars`, the part before `since` being the warm-up), the levels and fragility as
    they stood at `step` (default: the last bar), and the scorecard. The map of `at_step` is
    `with_map`'s, once the range over other assumptions (`sensitivity`) is known. Raises ValueError
    when the level model cannot run on these inputs."""
    symbol = bars[SYMBOL][0]
    window = bars.filter(pl.col(TS) >= since)
    bucket = _bucket(window, options)
    estimate = _estimate(bars, open_interest, bucket, options)
    at_step = estimate if step is None or step >= window[TS].max() else _estimate(bars, open_interest, bucket, options, step)
    grid = bursts = None
    figures: dict[str, go.Figure] = {}
    if not totals.is_empty():
        grid = realised_heatmap(totals, window, bucket_usd=bucket, placement=options.placement)
        bursts = largest_bursts(totals, n=BURSTS, every=bars[TIMEFRAME][0], bars=window)
        figures["realised"] = realised_heatmap_figure(grid, minmax(window, "close"), scale=options.scale,
                                                      title=f"{symbol} realised liquidations")
    figures["estimated"] = estimated_heatmap_figure(estimate, minmax(bars, "close"), scale=options.scale, since=since,
                                                    title=f"{symbol} estimated liquidation levels")
    if grid is not None:
        captured = levels.capture(estimate, grid)
        figures["scorecard"] = scorecard_figure(captured, levels.capture_summary(captured),
                                                consumption=levels.consumption_score(estimate, bars, totals))
    fragility = levels.fragility_by_weekend(at_step, depth, options.weekend)
    return LiquidationView(bucket, grid, bursts, estimate, at_step, fragility, figures)


def with_map(figures: dict[str, go.Figure], symbol: str, at_step: levels.LevelEstimate,
             spread: levels.Spread | None) -> dict[str, go.Figure]:
    """`figures` of `liquidations` with the liquidation map of `symbol` as it stood after `at_step`'s
    last bar (and the range of its cumulative curves under other assumptions where `spread` is
    given) after the estimated heatmap, where the page shows it."""
    when = f"{at_step.last_ts:%Y-%m-%d %H:%M}"
    drawn = liquidation_map_figure(at_step, title=f"{symbol} liquidation map at {when} UTC", spread=spread)
    named = list(figures.items())
    after = list(figures).index("estimated") + 1
    return dict(named[:after]) | {"map": drawn} | dict(named[after:])


REPLAY_STEPS = 60  # the replay's frames: at most this many bars of the window, the last included
REPLAY_MODES = {"window": "Spread over the window", "bars": "Bar by bar, up to the map's time"}
REPLAY_RANGE_MAX_BARS = 15_000  # each step's range: 3 more runs of the model (9 answers) on up to this many bars, 60 times


def replay_steps(window: pl.DataFrame, steps: int = REPLAY_STEPS) -> list[datetime]:
    """Up to `steps` bar times of `window`, evenly spaced, ending at its last bar."""
    every = -(-window.height // steps)
    return window[TS][::-1].gather_every(every)[::-1].to_list()


def replay(bars: pl.DataFrame, since: datetime, totals: pl.DataFrame, open_interest: pl.DataFrame,
           options: LiquidationOptions, bucket_usd: float, until: datetime | None = None) -> go.Figure:
    """The liquidation map at each of `replay_steps` of the window from `since` (with `until`: at
    each of the `REPLAY_STEPS` bars of the window up to `until`, bar by bar), animated (the level
    model re-run up to each step, without its per-bar density), with the realised liquidations of
    `totals` since the step before, placed as the realised heatmap places them, and each step's
    range over assumptions (`sensitivity`) up to `REPLAY_RANGE_MAX_BARS` bars."""
    window = bars.filter(pl.col(TS) >= since)
    if until is None:
        times, title = replay_steps(window), f"{bars[SYMBOL][0]} liquidation map, replayed"
    else:
        times = window.filter(pl.col(TS) <= until)[TS].tail(REPLAY_STEPS).to_list()
        window = window.filter(pl.col(TS) >= times[0])  # the first frame marks its own bar's liquidations
        title = f"{bars[SYMBOL][0]} liquidation map, replayed bar by bar to {times[-1]:%Y-%m-%d %H:%M} UTC"
    ranged = bars.height <= REPLAY_RANGE_MAX_BARS
    splits = tuple(levels.SPLIT_RULES) if ranged else (options.split,)  # a step's range takes its run under each
    runs = [_estimates(bars, open_interest, bucket_usd, options, step, splits, history=False) for step in times]
    steps = [run[options.split] for run in runs]
    spreads = [sensitivity(bars, open_interest, bucket_usd, options, time, made=run)
               for time, run in zip(times, runs, strict=True)] if ranged else None
    realised = None if totals.is_empty() else realised_between(
        realised_heatmap(totals, window, bucket_usd=bucket_usd, placement=options.placement), times)
    return replay_figure(steps, realised, spreads=spreads, title=title)


def replay_until(mode: str, at_step: levels.LevelEstimate) -> datetime | None:
    """`replay`'s `until` in a mode of `REPLAY_MODES`: bar by bar to the map's time, or none."""
    return at_step.last_ts if mode == "bars" else None


def replay_range_note(bars: int) -> str:
    """Why the replay has no range over assumptions, or "" where it has one."""
    if bars <= REPLAY_RANGE_MAX_BARS:
        return ""
    return (f"The replay shades no range over other assumptions: it stops at {REPLAY_RANGE_MAX_BARS:,} bars, this "
            f"view has {bars:,} with the model's warm-up; a coarser timeframe has it.")


def sensitivity(bars: pl.DataFrame, open_interest: pl.DataFrame, bucket_usd: float, options: LiquidationOptions,
                until: datetime, made: dict[str, levels.LevelEstimate] | None = None) -> levels.Spread | None:
    """`levels.spread_over_assumptions` of the level model on `bars` up to `until`, the page's other
    options kept (`made`: its runs already made, see there); None above `levels.SPREAD_MAX_BARS` bars."""
    return levels.spread_over_assumptions(*_until(bars, open_interest, until), options.tiers, made=made,
                                          bucket_usd=bucket_usd, half_life=options.half_life)


def sensitivity_note(spread: levels.Spread | None, bars: int) -> str:
    """What the fragility table's range is, or why there is none."""
    if spread is None:
        return (f"No range over other assumptions: the re-runs stop at {levels.SPREAD_MAX_BARS:,} bars (about a "
                f"second), this view has {bars:,}; a shorter range or a coarser timeframe has it.")
    return (f"Range: the model re-run under each split rule ({', '.join(levels.SPLIT_RULES)}) × leverage tilt "
            f"({'; '.join(levels.TILTS)}), the other choices kept. The map shades the same range.")


def estimated_top(bars: pl.DataFrame, since: datetime, open_interest: pl.DataFrame,
                  options: LiquidationOptions) -> float:
    """The largest cell of the estimated heatmap `liquidations` draws for these inputs, for a colour
    scale shared with other assets; only the number is kept, not the model's grids (a year of 1m
    bars makes them gigabytes)."""
    estimate = _estimate(bars, open_interest, _bucket(bars.filter(pl.col(TS) >= since), options), options)
    return colour_top(estimated_heatmap_figure(estimate, minmax(bars, "close"), scale=options.scale, since=since))


def shared_colour(figures: dict[str, go.Figure], tops: dict[str, float]) -> dict[str, go.Figure]:
    """One asset's `figures` with the estimated heatmap's absolute colour scale running up to the
    largest of `tops` (each asset of the view: its largest estimated cell, this asset's included):
    the same colour is then the same USD on BTC, ETH and SOL, where a scale of each chart's own
    maximum makes a $300M band look like a $3B one. The realised heatmap keeps its own log scale (its
    cells are flows summed over columns whose length differs between assets). With one asset, the
    figures as they are."""
    if len(tops) < 2:
        return figures
    return figures | {"estimated": with_colour_top(figures["estimated"], max(tops.values()), list(tops))}


@dataclass(frozen=True)
class LiquidityOptions:
    measure: str = liq.QUOTE_VOLUME
    weekend: str = "utc"
    tz: str = "UTC"
    with_edge: bool = False  # EDGE for every chart (~9 µs a bar through `bidask`); always when it is the measure
    regime_split: date = liq.ETF_LAUNCH
    cell_stat: str = liq.MEAN  # the hour-of-week colour: liq.MEAN, or liq.MEDIAN as Kaiko draws it
    estimate_quote_volume: bool = True  # where the source reports base volume only (see liq.estimated_quote_volume)


@dataclass
class LiquidityView:
    effects: pl.DataFrame  # weekend_effect of the measure (and of 1 % depth where cached), per symbol
    verdicts: dict[str, str]  # symbol -> the one-line verdict on the measure
    regimes: pl.DataFrame  # the measure by regime (before / after the split date) and weekend, per symbol
    figures: dict[str, go.Figure] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # figure name -> what its badge must add (estimates)
    asset: str = ""  # the asset of the one-asset figures (the share of the week, the cascades): the first with data


def liquidity(bars: pl.DataFrame, depth: pl.DataFrame, events: pl.DataFrame, options: LiquidityOptions) -> LiquidityView:
    """Weekend against weekday for `options.measure`: the statistics and verdict per asset, the
    hour-of-week heatmap per asset, day-of-week bars with CIs, weekday/weekend boxes, the daily
    series with weekends shaded and the rolling ratio, the share of the week by year, 1 % depth
    where the `depth` dataset has it, and the two 2026 cascades against their baseline (`events`:
    bars around them, possibly empty)."""
    measure = options.measure
    measures = {"with_edge": options.with_edge or measure == liq.EDGE_SPREAD,
                "estimate_quote_volume": options.estimate_quote_volume}
    measured = liq.with_calendar(liq.with_measures(bars, **measures), weekend=options.weekend,
                                 tz=options.tz, regime_split=options.regime_split)
    days = liq.daily(measured)
    effects = stats.weekend_effect(days, [measure])
    verdicts = {row[SYMBOL]: stats.verdict(row) for row in effects.iter_rows(named=True)}
    figures: dict[str, go.Figure] = {}
    if TIMEFRAMES.get(bars[TIMEFRAME][0], timedelta.max) < DAY:  # daily bars fill one column of 24
        tests = stats.hour_of_week_tests(measured, measure)
        cells = liq.aggregate(measured, liq.HOUR_OF_WEEK, [measure])
        weekend = liq.weekend_share(measured)
        for symbol, line in verdicts.items():
            figures[f"hour_of_week_{symbol}"] = liquidity_charts.hour_of_week_heatmap(
                cells.filter(pl.col(SYMBOL) == symbol), measure, stat=options.cell_stat, tests=tests,
                weekend=weekend, tz=options.tz, subtitle=line)
    figures["day_of_week"] = liquidity_charts.day_of_week_bars(
        stats.day_of_week_means(days, measure), measure, tests=stats.day_of_week_tests(days, measure))
    figures["weekend_box"] = liquidity_charts.weekend_box(days, measure)
    figures["daily"] = liquidity_charts.weekend_timeseries(days, liq.rolling_weekend_ratio(days, measure), measure,
                                                           weekend=options.weekend)
    share_symbol = next(iter(verdicts))
    first = measured.filter(pl.col(SYMBOL) == share_symbol)
    figures["share_of_week"] = liquidity_charts.share_of_week_by_year(liq.share_of_volume(first, liq.DAY_OF_WEEK))
    if not depth.is_empty():
        depth_days = liq.daily(liq.with_calendar(liq.depth_measures(depth), weekend=options.weekend, tz=options.tz),
                               liq.DEPTH_MEASURES)
        depth_effects = stats.weekend_effect(depth_days, [liq.DEPTH_USD])
        effects = pl.concat([effects, depth_effects], how="diagonal_relaxed")
        figures["depth_box"] = liquidity_charts.weekend_box(
            depth_days, liq.DEPTH_USD, subtitle=" ".join(stats.verdict(r) for r in depth_effects.iter_rows(named=True)))
    weekends = liquidity_charts.weekend_moves_chart(liq.weekend_moves(measured))
    if weekends.data:  # a window without a whole weekend has none to show
        figures["weekend_moves"] = weekends
    events = events.filter(pl.col(SYMBOL) == share_symbol)
    if not events.is_empty():
        compared = liq.event_comparison(liq.with_measures(events, **measures))
        if not compared.filter(pl.col("ratio").is_not_null()).is_empty():
            figures["cascades"] = liquidity_charts.event_comparison_chart(compared)
    regimes = liq.aggregate(measured, (liq.REGIME, liq.WEEKEND), [measure])
    notes = estimate_notes(figures, measure, bars, events, share_symbol, options)
    return LiquidityView(effects, verdicts, regimes, figures, notes, share_symbol)


MEASURE_FIGURES = ("day_of_week", "weekend_box", "daily")  # besides the hour-of-week heatmaps


def estimate_notes(figures: Iterable[str], measure: str, bars: pl.DataFrame, events: pl.DataFrame,
                   share_symbol: str, options: LiquidityOptions) -> dict[str, str]:
    """What the badge of each figure that reads estimated quote volume adds (see `liquidity_badges`): how many of the bars
    it draws were estimated, and how. The measure's charts read quote volume when the measure does
    (quote volume, Amihud); the share of the week (its one asset) always; the cascades their own bars
    (`events`, of that asset)."""
    if not options.estimate_quote_volume:
        return {}
    reads = {"cascades": events, "share_of_week": bars.filter(pl.col(SYMBOL) == share_symbol)}
    if measure in liq.FROM_QUOTE_VOLUME:
        reads |= {name: drawn_rows(name, bars) for name in figures
                  if name.startswith("hour_of_week_") or name in MEASURE_FIGURES}
    counts = {name: (liq.missing_quote_volume(rows), rows.height) for name, rows in reads.items() if name in figures}
    return {name: f"Quote volume estimated for {n:,} of {of:,} bars as {liq.QUOTE_VOLUME_ESTIMATE}."
            for name, (n, of) in counts.items() if n}


def drawdown_inputs(load: Loader, view: View) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The view's bars, and hourly liquidation totals (any exchange) for the attribution."""
    lo, hi = day_bounds(view)
    return load("bars", view.assets, lo, hi, view.exchange, view.timeframe), load("liquidation_totals", view.assets, lo, hi, None, "1h")


def liquidity_inputs(load: Loader, view: View) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The view's bars, its depth rows (any exchange), and the bars around the 2026 cascades."""
    lo, hi = day_bounds(view)
    return (load("bars", view.assets, lo, hi, view.exchange, view.timeframe), load("depth", view.assets, lo, hi),
            load("bars", view.assets, *EVENT_SPAN, view.exchange, view.timeframe))


def liquidation_inputs(load: Loader, view: View, symbol: str) -> tuple[pl.DataFrame, ...]:
    """One asset's bars from `levels.WARM_UP` before the view, its liquidation totals of the
    view's timeframe (any exchange), open interest and depth."""
    lo, hi = day_bounds(view)
    early = lo - levels.WARM_UP
    return (load("bars", (symbol,), early, hi, view.exchange, view.timeframe),
            load("liquidation_totals", (symbol,), lo, hi, None, view.timeframe),
            load("open_interest", (symbol,), early, hi), load("depth", (symbol,), early, hi))


def _cached_spans(status: list[dict], dataset: str, symbols: Sequence[str],
                  exchange: str | None = None) -> Iterator[tuple[str, datetime, datetime]]:
    """(timeframe, first ts, last ts) of each cached series of `dataset` for `symbols` (from
    `exchange`, or any) that holds rows."""
    for e in status:
        if (e["dataset"] == dataset and e["symbol"] in symbols and exchange in (None, e["exchange"])
                and e["first_ts"] and e["last_ts"]):
            yield e["timeframe"], datetime.fromisoformat(e["first_ts"]), datetime.fromisoformat(e["last_ts"])


def cached_elsewhere(status: list[dict], dataset: str, symbols: Sequence[str], view: View,
                     exchange: str | None = None) -> str:
    """Where `dataset` rows of `symbols` (from `exchange`, or any) are cached in the view's range at
    other timeframes, as a hint for a page that found none at the view's own: "Other timeframes have
    some (1d: 2020-12-23 to 2025-09-08): pick one in the sidebar." (per timeframe, the span any of
    the symbols covers), or "" where there are none."""
    lo, hi = day_bounds(view)
    spans: dict[str, tuple[datetime, datetime]] = {}
    for timeframe, first, last in _cached_spans(status, dataset, symbols, exchange):
        if timeframe != view.timeframe and first < hi and last >= lo:
            first, last = max(first, lo), min(last, hi - timedelta(seconds=1))
            known = spans.get(timeframe, (first, last))
            spans[timeframe] = (min(known[0], first), max(known[1], last))
    shortest_first = sorted(spans.items(), key=lambda item: TIMEFRAMES.get(item[0], timedelta.max))
    found = "; ".join(f"{timeframe}: {first:%Y-%m-%d} to {last:%Y-%m-%d}" for timeframe, (first, last) in shortest_first)
    return f"Other timeframes have some ({found}): pick one in the sidebar." if found else ""


def cached_span(status: list[dict], dataset: str, symbols: Sequence[str], timeframe: str,
                exchange: str) -> tuple[date, date] | None:
    """The days `dataset` rows of `symbols` at `timeframe` from `exchange` cover (the union of the
    symbols' spans), whatever a view's range; None where none are cached."""
    spans = [(first, last) for tf, first, last in _cached_spans(status, dataset, symbols, exchange) if tf == timeframe]
    return (min(first for first, _ in spans).date(), max(last for _, last in spans).date()) if spans else None


def badge_maker(status: list[dict], view: View, is_demo: bool) -> Badge:
    """The badge function of one view: `status` is the store's manifest, the window the view's days
    unless a chart gives its own."""
    def badge(*inputs: tuple[str, pl.DataFrame], window: tuple[datetime, datetime] | None = None,
              estimated: bool = False) -> str:
        return chart_provenance(status, inputs, *(window or day_bounds(view)), is_demo, estimated)
    return badge


def bars_badges(badge: Badge, figures: Iterable[str], bars: pl.DataFrame) -> dict[str, str]:
    """The badge of each of `figures` drawn from `bars` (a per-asset figure from its asset's rows only)."""
    return {name: badge(("bars", drawn_rows(name, bars))) for name in figures}


def liquidity_badges(badge: Badge, figures: Iterable[str], bars: pl.DataFrame, depth: pl.DataFrame,
                     events: pl.DataFrame, notes: Mapping[str, str], asset: str) -> dict[str, str]:
    """The liquidity page's badges: the depth chart reads depth, the cascades chart its own window;
    the cascades and the share of the week one asset (`LiquidityView.asset`); a figure's note
    (`LiquidityView.notes`: its estimates) follows its badge."""
    mine = pl.col(SYMBOL) == asset
    own = {"depth_box": badge(("depth", depth)), "cascades": badge(("bars", events.filter(mine)), window=EVENT_SPAN),
           "share_of_week": badge(("bars", bars.filter(mine)))}
    made = {name: own.get(name) or badge(("bars", drawn_rows(name, bars))) for name in figures}
    return {name: f"{text} {notes[name]}" if name in notes else text for name, text in made.items()}


def liquidation_badges(badge: Badge, view: View, bars: pl.DataFrame, totals: pl.DataFrame, open_interest: pl.DataFrame,
                       step: datetime) -> dict[str, str]:
    """The liquidations page's badges: the model reads bars and open interest from its warm-up on,
    the map only what had closed by the replay `step`."""
    lo, hi = day_bounds(view)
    model = {"window": (lo - levels.WARM_UP, hi), "estimated": True}
    model_inputs = (("bars", bars), ("open_interest", open_interest))
    return {
        "realised": badge(("liquidation_totals", totals), ("bars", bars.filter(pl.col(TS) >= lo))),
        "estimated": badge(*model_inputs, **model),
        "map": badge(*((name, rows.filter(pl.col(TS) <= step)) for name, rows in model_inputs), **model),
        "scorecard": badge(*model_inputs, ("liquidation_totals", totals), **model),
    }


PAGES = ("drawdowns", "liquidity", "liquidations")


@dataclass(frozen=True)
class PageExport:
    """What the command line exports of a page: its figures, each one's badge (its footer), and the
    level model's assumptions by asset (liquidations only), as the page's own export gives them."""

    figures: dict[str, go.Figure]
    footers: dict[str, str]
    assumptions: dict[str, dict] = field(default_factory=dict)


def page_exports(load: Loader, badge: Badge, page: str, view: View, *, replay_mode: str | None = None) -> PageExport:
    """Every figure `page` shows for `view` with the page's default choices, and the badge of each.
    The liquidations page is drawn for each asset of the view, its replay at the last bar, and with
    a `replay_mode` (of `REPLAY_MODES`) the map played too (`replay`, as the page's toggle shows it;
    "bars": bar by bar up to the last bar)."""
    if page == "drawdowns":
        bars, liquidations_ = drawdown_inputs(load, view)
        figures = drawdowns(bars, liquidations_, DrawdownOptions(weekend=view.weekend)).figures
        return PageExport(figures, bars_badges(badge, figures, bars))
    if page == "liquidity":
        bars, depth, events = liquidity_inputs(load, view)
        shown = liquidity(bars, depth, events, LiquidityOptions(weekend=view.weekend))
        return PageExport(shown.figures, liquidity_badges(badge, shown.figures, bars, depth, events, shown.notes,
                                                            shown.asset))
    if page == "liquidations":
        made, every = PageExport({}, {}), {}
        for symbol in view.assets:
            bars, totals, oi, depth = liquidation_inputs(load, view, symbol)
            if not bars.is_empty():
                options = LiquidationOptions(weekend=view.weekend)
                shown = liquidations(bars, day_bounds(view)[0], totals, oi, depth, options)
                badges = liquidation_badges(badge, view, bars, totals, oi, bars[TS].max())
                spread = sensitivity(bars, oi, shown.bucket_usd, options, shown.at_step.last_ts)
                every[symbol] = with_map(shown.figures, symbol, shown.at_step, spread)
                if replay_mode is not None:
                    every[symbol]["replay"] = replay(bars, day_bounds(view)[0], totals, oi, options, shown.bucket_usd,
                                                     replay_until(replay_mode, shown.at_step))
                    badges = badges | {"replay": badges["map"]}
                made.footers.update({f"{name}_{symbol}": badges[name] for name in every[symbol]})
                made.assumptions[symbol] = shown.at_step.assumptions
        tops = {symbol: colour_top(figures["estimated"]) for symbol, figures in every.items()}
        for symbol, figures in every.items():
            made.figures.update({f"{name}_{symbol}": fig for name, fig in shared_colour(figures, tops).items()})
        return made
    raise ValueError(f"unknown page {page!r}; pages: {', '.join(PAGES)}")
