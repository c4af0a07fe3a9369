"""The checks every module uses on values a user gave, and the exception they raise.

A setting typed in a form, a field of an uploaded file and an argument from a page all fail the same way:
with a `KerasLabError` (or a module's subclass of it) whose message names the setting, shows what was given
and says what is allowed, e.g. "epochs must be between 1 and 1,000, got 0". The given value is shown
shortened, so a hostile file cannot make a message huge. The templates are translated (core.i18n); `what`,
the setting's name, comes from the caller, in the reader's language where the caller translates it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.i18n import _

__all__ = ["KerasLabError", "boolean", "choice", "number", "whole_number"]

_SHOWN_CHARS = 60  # a given value longer than this (as text) is cut in messages
_SHOWN_BITS = 100  # integers wider than this (about 30 digits) are described, not printed


class KerasLabError(ValueError):
    """A value given to Keras Lab cannot be used; the message, meant for the user, says what was given and
    what is allowed. Modules raise their own subclasses (SpecError, DatasetError, ...)."""


def _shown(value: Any) -> str:
    """A given value as a message shows it: numbers with thousands separators, anything else as repr, cut short."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        value = int(value)
        if value.bit_length() > _SHOWN_BITS:  # str() of a 5,000-digit integer raises, and says nothing useful
            return _("an integer of about {digits} digits").format(
                digits=f"{int(value.bit_length() * math.log10(2)):,}")
        return f"{value:,}"
    if isinstance(value, float | np.floating):
        return f"{float(value):,}"
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else f"{text[:_SHOWN_CHARS]}…"


def _range_text(lo: float, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    """The allowed range in words; one whole template per kind of range, so a translation can order it freely."""
    bounds = {"lo": f"{lo:,}", "hi": f"{hi:,}" if hi is not None else ""}
    if hi is None:
        return (_("greater than {lo}") if lo_open else _("at least {lo}")).format(**bounds)
    if not (lo_open or hi_open):
        return _("between {lo} and {hi}").format(**bounds)
    if lo_open and hi_open:
        return _("greater than {lo} and less than {hi}").format(**bounds)
    if lo_open:
        return _("greater than {lo} and at most {hi}").format(**bounds)
    return _("at least {lo} and less than {hi}").format(**bounds)


def _in_range(value: float, lo: float, hi: float | None, lo_open: bool, hi_open: bool) -> bool:
    above = value > lo if lo_open else value >= lo
    below = hi is None or (value < hi if hi_open else value <= hi)
    return above and below


def whole_number(what: str, value: Any, lo: int, hi: int | None = None, *,
                 error: type[Exception] = KerasLabError, integral_floats: bool = False) -> int:
    """`value` as an int in lo..hi (no upper bound when hi is None).

    True and False are not numbers here. integral_floats admits a float without a fraction (JSON may write
    64 as 64.0); off, a float is refused, because the caller keeps the value as it was given."""
    whole = isinstance(value, int | np.integer) and not isinstance(value, bool)
    if integral_floats and isinstance(value, float) and math.isfinite(value) and value.is_integer():
        whole = True
    if not whole:
        raise error(_("{what} must be a whole number, got {value}").format(what=what, value=_shown(value)))
    if not _in_range(value, lo, hi, False, False):
        raise error(_("{what} must be {allowed}, got {value}").format(
            what=what, allowed=_range_text(lo, hi, False, False), value=_shown(value)))
    return int(value)


def number(what: str, value: Any, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False,
           error: type[Exception] = KerasLabError) -> float:
    """`value` as a float between lo and hi; lo_open / hi_open leave that bound itself out."""
    is_number = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    # ints are always finite (and math.isfinite cannot take one beyond float's range)
    if not is_number or not (isinstance(value, int | np.integer) or math.isfinite(value)):
        raise error(_("{what} must be a number, got {value}").format(what=what, value=_shown(value)))
    if not _in_range(value, lo, hi, lo_open, hi_open):
        raise error(_("{what} must be {allowed}, got {value}").format(
            what=what, allowed=_range_text(lo, hi, lo_open, hi_open), value=_shown(value)))
    return float(value)


def choice(what: str, value: Any, allowed: Sequence[Any], *, error: type[Exception] = KerasLabError) -> Any:
    """The allowed value equal to `value` (so 0.35 given as 0.35 or "relu" as "relu"); True is not 1 here."""
    for candidate in allowed:
        if value == candidate and type(value) is not bool:
            return candidate
    raise error(_("{what} must be one of {allowed}, got {value}").format(
        what=what, allowed=", ".join(map(str, allowed)), value=_shown(value)))


def boolean(what: str, value: Any, *, error: type[Exception] = KerasLabError) -> bool:
    """`value` when it is True or False; 1, "yes" and the like are refused."""
    if not isinstance(value, bool):
        raise error(_("{what} must be true or false, got {value}").format(what=what, value=_shown(value)))
    return value
