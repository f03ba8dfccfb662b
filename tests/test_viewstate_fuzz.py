"""Hypothesis fuzzing of the view in the URL: whatever a link holds, parse_view never raises,
always answers a view within the choices, notes what it refused, and round-trips valid views."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib.viewstate import MAX_PARAM_CHARS, WEEKENDS, Choices, View, parse_view, view_params

CHOICES = Choices(("BTC", "ETH", "SOL"), ("binance", "bybit", "demo"), ("1h", "1d", "5m"),
                  date(2018, 1, 1), date(2025, 12, 31))
NAMES = ("assets", "exchange", "timeframe", "start", "end", "weekend")
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- what a hostile or broken link may hold ---------------------------------------------------------

HOSTILE = st.sampled_from([
    "'; DROP TABLE bars;--", "<script>alert(1)</script>", "{{7*7}}", "${jndi:ldap://x/a}", "../../etc/passwd",
    "%00", "\x00", "\ud800", "BTC\x00", "BTC,<img src=x onerror=alert(1)>", "javascript:alert(1)", "NaN", "-1",
    "1e309", "0000-00-00", "9999-12-31", "0001-01-01", "2025-02-30", "2025-13-01", "2025-01-01T00:00:00Z",
    "20250101", "2025-W01-1", "２０２５-０１-０１", "BTC" * 30, "x" * (MAX_PARAM_CHARS + 1), "x" * 1_000_000,
    ",,,", " , ", "btc, eth ,SOL", "ETH,ETH,eth", "İ", "ß", "ﬀ", "\u202eCTB", "utc ", "UTC", "cme\n",
])
NEAR_VALID = st.one_of(
    st.sampled_from([*CHOICES.assets, *CHOICES.exchanges, *CHOICES.timeframes, *WEEKENDS]),
    st.lists(st.sampled_from([*CHOICES.assets, "DOGE", "btc", " SOL ", ""]), max_size=6).map(",".join),
    st.dates(date(1, 1, 1), date(9999, 12, 31)).map(date.isoformat),  # absurd, reversed, out of range
    st.dates(CHOICES.first_day - timedelta(days=30), CHOICES.last_day + timedelta(days=30)).map(date.isoformat),
)
LONG = st.builds(lambda text, n: (text or "x") * n, st.text(min_size=1, max_size=8), st.integers(1, 20_000))
TEXT = st.one_of(st.text(max_size=40), HOSTILE, NEAR_VALID, LONG)
VALUE = st.one_of(TEXT, st.lists(TEXT, max_size=3), st.none(), st.integers(), st.floats(allow_nan=True))
PARAMS = st.fixed_dictionaries({}, optional={name: VALUE for name in NAMES}).flatmap(  # plus keys no page reads
    lambda known: st.dictionaries(st.text(max_size=8), TEXT, max_size=2).map(lambda junk: {**junk, **known}))


def within(view: View, choices: Choices) -> None:
    assert view.assets and set(view.assets) <= set(choices.assets)
    assert len(set(view.assets)) == len(view.assets)  # no asset twice
    assert view.exchange in choices.exchanges
    assert view.timeframe in choices.timeframes
    assert view.weekend in WEEKENDS
    assert choices.first_day <= view.start <= view.end <= choices.last_day


def _last(value: object) -> object:
    return (value[-1] if value else None) if isinstance(value, (list, tuple)) else value


@FUZZ
@given(PARAMS)
def test_any_link_gives_a_view_within_the_choices_and_notes_what_it_refused(params: dict) -> None:
    view, notes = parse_view(params, CHOICES)
    within(view, CHOICES)
    assert all(isinstance(note, str) and len(note) < 300 for note in notes)  # nothing echoed at length
    if notes:
        return
    # no note: every value present in the link is what the view shows (no silent fallback)
    present = {name: _last(params.get(name)) for name in NAMES}
    present = {name: str(value) for name, value in present.items() if value is not None}
    for name in ("exchange", "timeframe", "weekend"):
        if name in present:
            assert getattr(view, name) == present[name]
    for name in ("start", "end"):
        if name in present:
            assert getattr(view, name) == date.fromisoformat(present[name])
    if "assets" in present:
        asked = [a.strip().upper() for a in present["assets"].split(",") if a.strip()]
        assert asked, "an empty assets value fell back without a note"
        assert view.assets == tuple(dict.fromkeys(asked))


@settings(FUZZ, max_examples=50)
@given(st.dictionaries(st.sampled_from(NAMES), st.builds(
    lambda text, n: text * n, st.text(min_size=1, max_size=4), st.integers(MAX_PARAM_CHARS + 1, 100_000)), min_size=1))
def test_overlong_values_are_refused_unread(params: dict) -> None:
    view, notes = parse_view(params, CHOICES)
    assert view == CHOICES.default()
    assert sum("overlong" in note for note in notes) == len(params)


BLANK = st.text(alphabet=" ,\t\n\u00a0\u3000", max_size=6)  # `assets=`, `start= `, `exchange=,,`


@FUZZ
@given(st.dictionaries(st.sampled_from(NAMES), st.one_of(BLANK, st.lists(BLANK, min_size=1, max_size=2)), min_size=1))
def test_empty_values_fall_back_with_a_note(params: dict) -> None:
    view, notes = parse_view(params, CHOICES)
    assert view == CHOICES.default()
    assert sorted(note for note in notes if "empty" in note) == sorted(f"ignored an empty '{name}' value in the link"
                                                                      for name in params)


@st.composite
def valid_views(draw: st.DrawFn, choices: Choices = CHOICES) -> View:
    assets = draw(st.permutations(choices.assets).flatmap(lambda p: st.integers(1, len(p)).map(lambda k: tuple(p[:k]))))
    days = st.dates(choices.first_day, choices.last_day)
    start, end = sorted((draw(days), draw(days)))
    return View(assets, draw(st.sampled_from(choices.exchanges)), draw(st.sampled_from(choices.timeframes)),
                start, end, draw(st.sampled_from(tuple(WEEKENDS))))


@FUZZ
@given(valid_views())
def test_round_trip_of_any_valid_view(view: View) -> None:
    assert parse_view(view_params(view), CHOICES) == (view, [])
    # Streamlit's query params may hand a repeated key over as a list: the last value wins
    listed = {name: ["junk", value] for name, value in view_params(view).items()}
    assert parse_view(listed, CHOICES) == (view, [])


@st.composite
def any_choices(draw: st.DrawFn) -> Choices:
    first = draw(st.dates(date(2009, 1, 3), date(2030, 1, 1)))
    last = first + timedelta(days=draw(st.integers(0, 4_000)))
    return Choices(tuple(draw(st.lists(st.sampled_from(["BTC", "ETH", "SOL"]), min_size=1, unique=True))),
                   tuple(draw(st.lists(st.sampled_from(["binance", "bybit", "okx"]), min_size=1, unique=True))),
                   tuple(draw(st.lists(st.sampled_from(["1h", "1d", "5m"]), min_size=1, unique=True))), first, last)


@settings(FUZZ, max_examples=100)
@given(any_choices().flatmap(lambda c: st.tuples(st.just(c), PARAMS, valid_views(c))))
def test_any_cache_any_link(case: tuple[Choices, dict, View]) -> None:
    """The same holds for whatever the cache allows (down to a single day), not just the fixed choices."""
    choices, params, view = case
    within(parse_view(params, choices)[0], choices)
    within(choices.default(), choices)
    assert parse_view(view_params(view), choices) == (view, [])
