"""lib.link_values against the real widgets: for whatever a link holds, the value it reads without
drawing a widget is the value Streamlit's widget takes from the same link (each form of a widget
the pages bind to the link)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import streamlit
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from lib.link_values import UNSUPPORTED, link_value

FIRST, LAST = datetime(2026, 1, 24, tzinfo=UTC), datetime(2026, 2, 12, 23, tzinfo=UTC)
LABELS = {"taker": "Taker side", "even": "Split evenly"}
# key: (widget, args, kwargs), as pages/ call them through ui.linked
FORMS = {
    "measure": ("selectbox", ("Measure", ["volume", "spread", "impact"]), {"index": 2, "format_func": str.upper}),
    "tz": ("selectbox", ("Hours shown in", ("UTC", "Asia/Tokyo")), {}),
    "split": ("selectbox", ("New OI split", list(LABELS)), {"format_func": LABELS.get}),
    "stat": ("radio", ("Colour", ("mean", "median")), {"horizontal": True}),
    "log": ("toggle", ("Log price axis",), {}),
    "estimate": ("toggle", ("Estimate",), {"value": True}),
    "bucket": ("number_input", ("Price bucket (USD)",), {"min_value": 0.01, "value": 250.0}),
    "decay": ("number_input", ("Half-life", 0.0, 24.0 * 365, 0.0), {"step": 1.0, "format": "%.0f"}),
    "limit": ("number_input", ("Limit",), {"min_value": 0.0, "value": 0.0, "step": 0.5, "format": "%g"}),
    "top": ("slider", ("Episodes per asset", 1, 25, 5), {}),
    "threshold": ("slider", ("Threshold (%)", 5, 80, 20), {"step": 5}),
    "step": ("slider", ("At", FIRST, LAST, LAST), {"step": timedelta(hours=1), "format": "YYYY-MM-DD HH:mm"}),
    "regime": ("date_input", ("Regime split", date(2024, 1, 11)), {}),
}


def widgets(forms: dict) -> None:
    """The app: each form drawn, bound to the link; its values in session_state["values"]."""
    import streamlit as st

    st.session_state["values"] = {key: getattr(st, name)(*args, key=key, bind="query-params", **kwargs)
                                  for key, (name, args, kwargs) in forms.items()}


NUMBERS = st.one_of(st.integers(-5, 9000), st.floats(0, 100), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([math.inf, -math.inf, math.nan, 1e400, 0.001, 8760.5])).map(str)
MOMENTS = st.datetimes(datetime(2026, 1, 20), datetime(2026, 2, 16))
TIMES = st.one_of(
    MOMENTS.map(lambda t: t.isoformat(timespec="minutes")), MOMENTS.map(str),
    MOMENTS.map(lambda t: str((t.replace(tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1))),
    st.sampled_from(["2026-02-01", "2026-02-01T00:00+00:00", "2026-02-01T25:00", "03:00", "2026-02-30"]),
)
DATES = st.one_of(
    st.builds(date.strftime, st.dates(date(2013, 1, 1), date(2035, 1, 1)), st.sampled_from(["%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y"])),
    st.sampled_from(["2014-01-10", "2014-01-11", "2034-01-11", "2034-01-12", "2024-02-30", "2024-1-5"]),
)
SWITCH = st.sampled_from(["true", "false", "TRUE", "False", "yes", "1", "on"])
NEAR = {  # what a link may hold for each form: its labels in several cases, numbers, times
    "measure": st.sampled_from(["volume", "spread", "impact", "VOLUME", "SPREAD", "IMPACT"]),
    "tz": st.sampled_from(["UTC", "Asia/Tokyo", "utc"]), "split": st.sampled_from([*LABELS, *LABELS.values()]),
    "stat": st.sampled_from(["mean", "median", "MEDIAN"]), "log": SWITCH, "estimate": SWITCH, "bucket": NUMBERS,
    "decay": NUMBERS, "limit": NUMBERS, "top": NUMBERS, "threshold": NUMBERS, "step": TIMES, "regime": DATES,
}
TEXT = st.one_of(st.text(max_size=12), st.just(""))
LINK = st.fixed_dictionaries({}, optional={
    key: st.one_of(near, near, TEXT, st.lists(st.one_of(near, TEXT), min_size=2, max_size=3)) for key, near in NEAR.items()})


def texts(value: str | list[str] | None) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else value


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(LINK)
@example({"regime": ["2024-05-01", "2024-06-01"], "bucket": "inf", "limit": "-inf", "decay": "nan", "top": ["3", "4"],
          "step": ["", "2026-02-01T03:00"], "split": ["even", "taker"], "log": ["TRUE", ""]})
@example({"regime": ["", "2024-06-01"], "bucket": "1e400", "threshold": "7.5", "step": "2026-02-01T03:00:00",
          "measure": "IMPACT", "estimate": "False", "stat": ""})
def test_the_value_read_from_a_link_is_the_widgets(link: dict) -> None:
    at = AppTest.from_function(widgets, args=(FORMS,))
    at.query_params.update(link)
    at.run()
    assert not at.exception
    drawn = at.session_state["values"]
    for key, (name, args, kwargs) in FORMS.items():
        read = link_value(getattr(streamlit, name), args, {"key": key, **kwargs}, texts(link.get(key)))
        assert read is not UNSUPPORTED, key
        assert read == drawn[key] and type(read) is type(drawn[key]), (key, link.get(key), read, drawn[key])


def test_forms_not_covered_are_unsupported() -> None:
    """A widget or form it does not know is drawn, never guessed."""
    assert link_value(streamlit.multiselect, ("Assets", ["BTC"]), {}, ["BTC"]) is UNSUPPORTED
    assert link_value(streamlit.slider, ("Range", 0, 10, (2, 5)), {}, ["3"]) is UNSUPPORTED
    assert link_value(streamlit.number_input, ("Count", 0, 10, 5), {}, ["3"]) is UNSUPPORTED
    assert link_value(streamlit.date_input, ("Range", (date(2024, 1, 1), date(2024, 2, 1))), {}, []) is UNSUPPORTED


def test_hand_worked_links() -> None:
    bucket = ("Price bucket (USD)",), {"min_value": 0.01, "value": 250.0}
    assert link_value(streamlit.number_input, *bucket, ["500"]) == 500.0
    assert link_value(streamlit.number_input, *bucket, ["0.001"]) == 250.0  # below its minimum
    assert link_value(streamlit.number_input, *bucket, ["inf"]) == 250.0
    at = ("At", FIRST, LAST, LAST), {"step": timedelta(hours=1)}
    assert link_value(streamlit.slider, *at, ["2026-02-05T03:00"]) == datetime(2026, 2, 5, 3, tzinfo=UTC)
    assert link_value(streamlit.slider, *at, ["2026-02-05 03:00"]) == LAST  # Streamlit wants the "T"
    assert link_value(streamlit.slider, *at, ["2026-02-05T03:00", "2026-02-06T03:00"]) == LAST  # two values
    assert link_value(streamlit.slider, ("Top", 1, 25, 5), {}, ["7.5"]) == 7
    assert link_value(streamlit.selectbox, ("Split", list(LABELS)), {"format_func": LABELS.get}, ["Split evenly"]) == "even"
    assert link_value(streamlit.date_input, ("Split", date(2024, 1, 11)), {}, ["2014-01-10"]) == date(2024, 1, 11)
