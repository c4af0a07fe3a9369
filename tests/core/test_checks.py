"""core.checks: one family of checks, messages that say what was given and what is allowed, one base error."""

from __future__ import annotations

import numpy as np
import pytest

from core.checks import KerasLabError, boolean, choice, number, whole_number


class _MyError(KerasLabError):
    pass


@pytest.mark.parametrize(("value", "lo", "hi", "message"), [
    (0, 1, 1000, "epochs must be between 1 and 1,000, got 0"),
    (1001, 1, 1000, "epochs must be between 1 and 1,000, got 1,001"),
    (-3, 0, None, "epochs must be at least 0, got -3"),
    (2.5, 1, 1000, "epochs must be a whole number, got 2.5"),
    (3.0, 1, 1000, "epochs must be a whole number, got 3.0"),  # the caller keeps what it was given
    (True, 0, 1000, "epochs must be a whole number, got True"),
    ("7", 1, 1000, "epochs must be a whole number, got '7'"),
    (None, 1, 1000, "epochs must be a whole number, got None"),
    pytest.param(10 ** 5000, 1, 1000, "epochs must be between 1 and 1,000, got an integer of about 5,000 digits",
                 id="5000-digits"),
    ("x" * 500, 1, 1000, f"epochs must be a whole number, got '{'x' * 59}…"),
])
def test_whole_number_says_what_was_given_and_what_is_allowed(value, lo, hi, message):
    with pytest.raises(KerasLabError) as info:
        whole_number("epochs", value, lo, hi)
    assert str(info.value) == message


def test_whole_number_returns_an_int_and_takes_numpy_and_whole_floats_when_asked():
    assert whole_number("k", np.int64(3), 2, 10) == 3 and type(whole_number("k", np.int64(3), 2, 10)) is int
    assert whole_number("units", 64.0, 1, 100, integral_floats=True) == 64
    for bad in (64.5, float("inf"), float("nan")):
        with pytest.raises(KerasLabError, match="units must be a whole number"):
            whole_number("units", bad, 1, 100, integral_floats=True)


@pytest.mark.parametrize(("value", "kwargs", "message"), [
    (0.0, {"lo_open": True}, "rate must be greater than 0 and at most 10, got 0.0"),
    (10.5, {"lo_open": True}, "rate must be greater than 0 and at most 10, got 10.5"),
    (10, {"hi_open": True}, "rate must be at least 0 and less than 10, got 10"),
    (-1, {}, "rate must be between 0 and 10, got -1"),
    (-1, {"lo_open": True, "hi_open": True}, "rate must be greater than 0 and less than 10, got -1"),
    (float("nan"), {}, "rate must be a number, got nan"),
    (float("inf"), {}, "rate must be a number, got inf"),
    (False, {}, "rate must be a number, got False"),
    ("1", {}, "rate must be a number, got '1'"),
    (-(10 ** 400), {}, "rate must be between 0 and 10, got an integer of about 400 digits"),
])
def test_number_names_open_and_closed_bounds_in_words(value, kwargs, message):
    with pytest.raises(KerasLabError) as info:
        number("rate", value, 0, 10, **kwargs)
    assert str(info.value) == message


def test_number_returns_a_float_and_keeps_its_bounds():
    assert number("rate", 10, 0, 10) == 10.0 and type(number("rate", np.float32(0.5), 0, 1)) is float
    assert number("rate", 0, 0, 1) == 0.0


def test_choice_returns_the_allowed_value_and_refuses_true_for_one():
    assert choice("alpha", 0.35, (0.35, 0.5)) == 0.35
    assert choice("alpha", 1, (0.35, 1.0)) == 1.0 and type(choice("alpha", 1, (0.35, 1.0))) is float
    with pytest.raises(KerasLabError, match=r"^alpha must be one of 0.35, 1.0, got True$"):
        choice("alpha", True, (0.35, 1.0))
    with pytest.raises(KerasLabError, match=r"^optimizer must be one of sgd, adam, got \['adam'\]$"):
        choice("optimizer", ["adam"], ("sgd", "adam"))


def test_boolean_takes_only_true_and_false():
    assert boolean("trainable", False) is False
    for bad in (1, "yes", None):
        with pytest.raises(KerasLabError, match="trainable must be true or false, got"):
            boolean("trainable", bad)


def test_each_check_raises_the_error_class_it_is_given():
    for check in (lambda: whole_number("n", "a", 0, error=_MyError), lambda: number("x", "a", 0, 1, error=_MyError),
                  lambda: choice("c", "a", ("b",), error=_MyError), lambda: boolean("b", "a", error=_MyError)):
        with pytest.raises(_MyError):
            check()


def test_the_modules_errors_are_keras_lab_errors_and_value_errors():
    from core.crossval import CrossValidationError
    from core.datasets import DatasetError
    from core.specs import SpecError
    from core.training import TrainConfigError

    for error in (SpecError, TrainConfigError, DatasetError, CrossValidationError):
        assert issubclass(error, KerasLabError) and issubclass(error, ValueError)
