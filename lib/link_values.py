"""The value a widget bound to the link takes from it, without drawing the widget.

A new tab's first screen draws its first chart before its sidebar controls (lib.ui.first_screen_pending),
so it needs their values before they exist. This mirrors how Streamlit 1.67 (pinned) seeds a widget
with `bind="query-params"` from the link (streamlit/runtime/state/query_params.py and the widgets'
serdes): a value the widget would refuse (unknown option, not a number, out of bounds) gives its
default. tests/test_link_values.py checks it against the real widgets.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

UNSUPPORTED = object()  # a widget (or a form of it) this module does not know: draw it instead
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TIME_BASE = date(1970, 1, 1)


def link_value(widget: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any], texts: Sequence[str]) -> Any:
    """The value of `widget(*args, **kwargs)` (st.selectbox, st.slider, ...) when the link holds
    `texts` under its key (every value of a repeated parameter; none when absent); UNSUPPORTED for
    a widget, or a form of it, not covered here."""
    parse = _PARSERS.get(widget.__name__)
    if parse is None:
        return UNSUPPORTED
    arguments = inspect.signature(widget).bind(*args, **kwargs)
    arguments.apply_defaults()
    return parse(arguments.arguments, list(texts))


def _selection(arguments: Mapping[str, Any], texts: list[str]) -> Any:
    """selectbox, radio: the option whose label (format_func) is the link's last value."""
    options = list(arguments["options"])
    index = arguments["index"]
    labels = [str(arguments["format_func"](option)) for option in options]
    if texts and texts[-1] in labels:
        return options[labels.index(texts[-1])]
    return None if index is None else options[index]


def _switch(arguments: Mapping[str, Any], texts: list[str]) -> Any:
    """toggle, checkbox: "true" or "false" in any case."""
    asked = texts[-1].lower() if texts else ""
    return {"true": True, "false": False}.get(asked, bool(arguments["value"]))


def _number(arguments: Mapping[str, Any], texts: list[str]) -> Any:
    """number_input (float boxes): a finite number within its bounds."""
    value, low, high = arguments["value"], arguments["min_value"], arguments["max_value"]
    if value == "min":
        value = low
    if not all(v is None or isinstance(v, float) for v in (value, low, high)):
        return UNSUPPORTED  # an integer box
    try:
        asked = float(texts[-1]) if texts else math.nan
    except ValueError:
        return value
    inside = math.isfinite(asked) and (low is None or asked >= low) and (high is None or asked <= high)
    return asked if inside else value


def _micros(moment: datetime) -> float:
    """Microseconds since the epoch of `moment`'s wall clock (Streamlit ignores its time zone)."""
    return float((moment.replace(tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1))


def _slider_part(text: str) -> float | None:
    """A slider's link value as Streamlit reads it: a number, else an ISO datetime ("T"), date ("-")
    or time (":") as microseconds; None where it is none of these."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        if "T" in text:
            moment = datetime.fromisoformat(text)
        elif "-" in text:
            moment = datetime.combine(date.fromisoformat(text), time())
        elif ":" in text:
            moment = datetime.combine(_TIME_BASE, time.fromisoformat(text))
        else:
            return None
    except ValueError:
        return None
    return None if moment.tzinfo is not None else _micros(moment)


def _slider(arguments: Mapping[str, Any], texts: list[str]) -> Any:
    """slider with one thumb (int, float or datetime): one value within its bounds."""
    value, low, high = arguments["value"], arguments["min_value"], arguments["max_value"]
    kinds: dict[type, Callable[[Any], float]] = {int: float, float: float, datetime: _micros}
    if type(value) not in kinds or type(low) is not type(value) or type(high) is not type(value):
        return UNSUPPORTED  # a range, dates, times, or bounds left to their defaults
    scale = kinds[type(value)]
    parts = [_slider_part(text) for text in texts if text]
    if len(parts) != 1 or parts[0] is None or not math.isfinite(parts[0]) or not scale(low) <= parts[0] <= scale(high):
        return value
    if isinstance(value, datetime):
        return (_EPOCH + timedelta(microseconds=int(parts[0]))).replace(tzinfo=value.tzinfo)
    return type(value)(parts[0])


def _years_on(day: date, years: int) -> date:
    """`day` moved by whole years (29 February to the 28th), as Streamlit bounds a date box."""
    year = min(max(day.year + years, date.min.year), date.max.year)
    try:
        return day.replace(year=year)
    except ValueError:
        return day.replace(year=year, day=28)


def _day(text: str) -> date | None:
    for form in ("%Y-%m-%d", "%Y/%m/%d"):
        try:
            return datetime.strptime(text, form).date()
        except ValueError:
            continue
    return None


def _date(arguments: Mapping[str, Any], texts: list[str]) -> Any:
    """date_input with one date: the link's first date, if every date in it parses and lies within
    the bounds (by default ten years either side of the default)."""
    value, low, high = arguments["value"], arguments["min_value"], arguments["max_value"]
    if type(value) is not date or not all(v is None or type(v) is date for v in (low, high)):
        return UNSUPPORTED  # a range, "today", None or datetime bounds
    low, high = low or _years_on(value, -10), high or _years_on(value, 10)
    days = [_day(text) for text in texts if text]
    if not days or any(day is None or not low <= day <= high for day in days):
        return value
    return days[0]


_PARSERS: dict[str, Callable[[Mapping[str, Any], list[str]], Any]] = {
    "selectbox": _selection, "radio": _selection, "toggle": _switch, "checkbox": _switch,
    "number_input": _number, "slider": _slider, "date_input": _date,
}
