"""Tables as they really are: column kinds, roles, and one preparation for training, prediction and export.

An uploaded CSV (read by core.uploads into `RawColumn`s) is profiled column by column: number, category
(k values), date/time, identifier-like, free text or constant, with its missing values counted. Each column
gets a default role (feature, target or ignore) and the reason for it; the user may change any of them
(`Choices`). `build_dataset` then drops what must go (rows without a target; with "drop", rows with a
missing feature), expands dates into year, month, day of year and weekday, and keeps the feature columns
raw in a `TableData` on the Dataset.

The preparation is fitted per split on the training rows only (`fit_preparation`, called by
core.datasets.split_at for the hold-out split and every cross-validation fold alike): scikit-learn's
`SimpleImputer` (median or mean for numbers and date parts, most frequent for categories) and
`OneHotEncoder` (the training part's top k categories + "other", unknown values go to "other" or are
ignored), then standardisation with the training part's mean and standard deviation. What they learned is
kept as plain JSON data (`preparation`): never a pickle, since a run's files may come back as uploads.
The list of categories a column may have is read from the whole file, so every split gives the model the
same number of inputs; a category the training part never saw is constant there, and a column constant in
training is scaled by 0, so it contributes nothing at test or prediction time (as an unknown category).

The functions between the "shared with exported scripts" markers apply such a JSON preparation to raw text
rows; they are the code of Evaluate's typed/uploaded rows, of core.prediction_input.read_csv_rows, of training
(`encode`), and they are copied verbatim into the exported script (`export_source`), so all give the same
numbers.
"""

from __future__ import annotations

import inspect
import math
import re
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import numpy as np
import pandas as pd

from core.checks import KerasLabError
from core.datasets import Dataset, DatasetError
from core.i18n import _, ngettext, pgettext

__all__ = [
    "DATE_PARTS",
    "MISSING_MARKERS",
    "ROLES",
    "Choices",
    "ColumnProfile",
    "Plan",
    "PreparationError",
    "RawColumn",
    "Table",
    "TableData",
    "TableError",
    "build_dataset",
    "check_preparation",
    "clean_text",
    "date_parts",
    "encode",
    "encode_table",
    "export_source",
    "fit_preparation",
    "guess_date_format",
    "input_columns",
    "kind_label",
    "numeric_preparation",
    "parse_numbers",
    "parse_rows",
    "plan",
    "preparation_for",
    "prepare_rows",
    "profile_table",
    "role_label",
    "suggest_target",
]

Kind = Literal["number", "category", "date", "identifier", "text", "constant"]
Role = Literal["feature", "target", "ignore"]
ROLES: tuple[str, ...] = ("feature", "target", "ignore")
TARGET_NAMES = frozenset({"class", "label", "labels", "target", "species", "type", "diagnosis", "outcome",
                          "survived", "y"})
_ID_NAMES = frozenset({"id", "ids", "key", "index", "idx", "uuid", "guid"})
MAX_SUGGESTED_CLASSES = 50  # a suggested target has 2..50 classes
MIN_CLASS_ROWS = 3  # "enough samples per class": every class in training, validation and test
MOSTLY_MISSING = 0.6  # a column missing in this share of rows or more is ignored by default
FORMAT_VERSION = 1
_CHUNK = 20_000  # rows prepared at a time (the temporaries of encode stay a few MB)


def kind_label(kind: str) -> str:
    """A column kind as people read it, in the visitor's language."""
    return {"number": _("number"), "category": _("category"), "date": _("date/time"),
            "identifier": _("identifier-like"), "text": _("free text"), "constant": pgettext("column kind", "constant")}[kind]


def role_label(role: str) -> str:
    """A column role (a key of ROLES) as people read it, in the visitor's language."""
    return {"feature": _("feature"), "target": _("target"), "ignore": _("ignore")}[role]


class TableError(DatasetError):
    """The chosen roles cannot make a dataset; the message names the file and the column, for the user."""


class PreparationError(KerasLabError):
    """A stored preparation is not one this app wrote (damaged or foreign); the message says what is wrong."""


# ==== shared with exported scripts: begin ==============================================================
# Everything from here to the end marker is copied verbatim into exported scripts (export_source): it may
# use only numpy (np), pandas (pd) and names defined in this block.

MISSING_MARKERS = ("", "na", "n/a", "nan", "null", "none", "?", "-", "#n/a")  # compared stripped, lower-case
DATE_PARTS = ("year", "month", "day of year", "weekday")
YEARS = (1700, 2300)  # a parsed year outside this range is an absurd date: missing


def clean_text(values):
    """Raw cells as stripped text (a pandas Series of object dtype); None where a cell is a missing marker."""
    s = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values.astype(object)
    s = s.where(s.notna(), "").astype(str).str.strip().astype(object)
    return s.where(~s.str.lower().isin(MISSING_MARKERS), None).reset_index(drop=True)


def parse_numbers(values, decimal_comma=False):
    """Raw cells as float64; NaN where a cell is missing, not a number or infinite."""
    s = clean_text(values)
    if decimal_comma:
        s = s.where(s.isna(), s.str.replace(",", ".", regex=False))
    x = np.array(pd.to_numeric(s, errors="coerce").to_numpy(np.float64, na_value=np.nan), dtype=np.float64)
    x[~np.isfinite(x)] = np.nan
    return x


def date_parts(values, date_format):
    """Raw cells parsed with `date_format` as (n, 4) float64: year, month, day of year, weekday (Monday 0);
    NaN where a cell is missing, does not parse, or has a year outside YEARS."""
    s = clean_text(values)
    with_zone = "%z" in date_format or "%Z" in date_format
    t = pd.to_datetime(s, format=date_format, errors="coerce", utc=with_zone)
    parts = np.column_stack([t.dt.year.to_numpy(np.float64, na_value=np.nan),
                             t.dt.month.to_numpy(np.float64, na_value=np.nan),
                             t.dt.day_of_year.to_numpy(np.float64, na_value=np.nan),
                             t.dt.day_of_week.to_numpy(np.float64, na_value=np.nan)]).reshape(len(s), 4)
    absurd = (parts[:, 0] < YEARS[0]) | (parts[:, 0] > YEARS[1])
    parts[absurd] = np.nan
    return parts


def number_class_name(value):
    """The class name of a number in a numeric target column: 2.0 -> '2', 0.5 -> '0.5' (float32, shortest)."""
    return np.format_float_positional(np.float32(value), trim="-")


def parse_rows(preparation, frame):
    """The raw columns a preparation needs, parsed from text cells: {name: array} (numbers float64 with NaN;
    dates (n, 4) float64; categories object arrays with None where missing). `frame` maps column names to
    cells (a pandas DataFrame of text, or a dict of lists)."""
    inputs = {}
    for col in preparation["columns"]:
        cells = frame[col["name"]]
        if col["kind"] == "number":
            inputs[col["name"]] = parse_numbers(cells, col.get("decimal_comma", False))
        elif col["kind"] == "date":
            inputs[col["name"]] = date_parts(cells, col["format"])
        else:
            inputs[col["name"]] = clean_text(cells).to_numpy(object)
    return inputs


def encode(preparation, inputs):
    """Parsed columns -> the model's float32 inputs: missing values filled with the fitted values, categories
    one-hot (the fitted ones, then "other"; an unknown value goes to "other", or nowhere without one),
    then (x - mean) * scale for every feature."""
    n = len(next(iter(inputs.values()))) if inputs else 0
    out = np.empty((n, len(preparation["features"])), np.float32)
    j = 0
    for col in preparation["columns"]:
        values = inputs[col["name"]]
        if col["kind"] == "number":
            block = np.array(values, np.float64).reshape(n, 1)
            block[~np.isfinite(block)] = col["fill"]
        elif col["kind"] == "date":
            block = np.array(values, np.float64).reshape(n, 4)
            block = np.where(np.isfinite(block), block, np.asarray(col["fill"], np.float64))
        else:
            cells = pd.Series(values, dtype=object)
            cells = cells.where(cells.notna(), col["fill"])
            at = pd.Index(col["categories"], dtype=object).get_indexer(cells)
            block = np.zeros((n, len(col["categories"]) + bool(col["other"])))
            known = at >= 0
            block[np.flatnonzero(known), at[known]] = 1.0
            if col["other"]:
                block[~known, -1] = 1.0
        width = block.shape[1]
        mean = np.asarray(preparation["mean"][j:j + width], np.float64)
        scale = np.asarray(preparation["scale"][j:j + width], np.float64)
        out[:, j:j + width] = (block - mean) * scale
        j += width
    return out


def prepare_rows(preparation, frame):
    """Raw text rows -> the model's inputs, exactly as the run's training rows were prepared."""
    return encode(preparation, parse_rows(preparation, frame))


def target_codes(preparation, cells):
    """Class index of each raw target cell (-1 where it is missing or not one of the run's classes)."""
    if preparation.get("target_kind") == "number":
        x = parse_numbers(cells)
        names = [None if np.isnan(v) else number_class_name(v) for v in x]
    else:
        names = clean_text(cells).tolist()
    index = {c: i for i, c in enumerate(preparation["classes"])}
    return np.array([index.get(name, -1) if name is not None else -1 for name in names], np.int64)


def complete_rows(preparation, inputs):
    """Which rows have every feature column present (what "drop rows with missing values" keeps)."""
    n = len(next(iter(inputs.values()))) if inputs else 0
    keep = np.ones(n, bool)
    for col in preparation["columns"]:
        values = inputs[col["name"]]
        if col["kind"] == "category":
            keep &= pd.Series(values, dtype=object).notna().to_numpy()
        else:
            keep &= np.isfinite(np.asarray(values, np.float64).reshape(n, -1)).all(axis=1)
    return keep

# ==== shared with exported scripts: end ================================================================


_SHARED = (clean_text, parse_numbers, date_parts, number_class_name, parse_rows, encode, prepare_rows,
           target_codes, complete_rows)


def export_source() -> str:
    """The shared block's source, for an exported script (constants included, as literals)."""
    consts = [f"MISSING_MARKERS = {MISSING_MARKERS!r}", f"DATE_PARTS = {DATE_PARTS!r}", f"YEARS = {YEARS!r}"]
    return "\n".join(consts) + "\n\n\n" + "\n\n".join(inspect.getsource(f) for f in _SHARED)


# ---- dates ---------------------------------------------------------------------------------------------

_DATE_HINT = re.compile(r"\d{1,4}[-/. ]\w{1,9}[-/. ,]+\d{1,4}|\w{3,9}\.? \d{1,2},? \d{4}|\d{4}-\d{2}-\d{2}")
_EXTRA_FORMATS = ("%m/%d/%y", "%d/%m/%y", "%d.%m.%y", "%d-%m-%y", "%y-%m-%d", "%d-%b-%y", "%d-%b-%Y")


def guess_date_format(sample: Sequence[str]) -> str | None:
    """The strftime format that reads most of `sample` (distinct non-missing cells) as dates with a day,
    month and year, when it reads at least 90% of them within YEARS; None when they are not dates."""
    from pandas.tseries.api import guess_datetime_format

    texts = [str(v).strip() for v in sample if str(v).strip()][:50]
    if not texts or sum(bool(_DATE_HINT.search(t)) for t in texts) < 0.9 * len(texts):
        return None
    candidates: list[str] = []
    for text in texts[:10]:
        for dayfirst in ((True, False) if "." in text else (False, True)):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fmt = guess_datetime_format(text, dayfirst=dayfirst)
            except (ValueError, TypeError):
                fmt = None
            if fmt and fmt not in candidates:
                candidates.append(fmt)
    candidates += [f for f in _EXTRA_FORMATS if f not in candidates]
    best, best_count = None, 0
    for fmt in candidates:
        if not re.search(r"%[Yy]", fmt) or not re.search(r"%[mbB]", fmt):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            count = int(np.isfinite(date_parts(texts, fmt)[:, 0]).sum())
        if count > best_count:
            best, best_count = fmt, count
    return best if best_count >= 0.9 * len(texts) else None


# ---- the columns as read ---------------------------------------------------------------------------------

@dataclass(eq=False)
class RawColumn:
    """One column of an uploaded table as the reader found it (see core.uploads)."""

    name: str
    numbers: np.ndarray | None = field(default=None, repr=False)  # float32 per row: NaN missing, inf kept
    codes: np.ndarray | None = field(default=None, repr=False)  # int32 per row into `levels`; -1 missing
    levels: tuple[str, ...] | None = None  # distinct text values; None: more than the reader kept
    dates: np.ndarray | None = field(default=None, repr=False)  # (rows, 4) float32 date parts (NaN missing)
    date_format: str = ""
    n_missing: int = 0  # missing markers (text) or NaN (numbers)
    n_infinite: int = 0
    n_text: int = 0  # text cells that are not missing (text columns)
    chars: int = 0  # their characters in total
    words: int = 0  # their words in total
    unique: bool = False  # no text value repeats (as far as the reader could tell past `levels`)
    date_unparsed: int = 0  # text cells the date format did not read (or with an absurd year)
    first_unparsed: str = ""
    first_long: tuple[int, int] | None = None  # (row, length) of the first text longer than a label may be
    problem: str = ""  # why it cannot be used at all (stray text in numbers, too large for float32, …)
    decimal_comma: bool = False  # numbers were written with a decimal comma

    @property
    def is_numeric(self) -> bool:
        return self.numbers is not None


@dataclass(frozen=True)
class ColumnProfile:
    """What a column looks like, and the role it gets unless the user says otherwise."""

    name: str
    kind: Kind
    detail: str  # "3 values", "unique per row", "format %Y-%m-%d", …
    n_missing: int
    share_missing: float
    role: Role  # the default unless it is the target: "feature" or "ignore"
    reason: str  # why that default ("" for a plain feature)
    can_feature: str = ""  # "" when it can be a feature, else why not
    can_target: str = ""  # "" when it can be the target, else why not
    n_infinite: int = 0
    distinct: int | None = None


@dataclass(frozen=True, eq=False)
class Table:
    """A parsed upload: its columns as read, their profiles and the suggested target."""

    label: str  # sanitised file name
    encoding: str
    separator: str
    n_rows: int
    columns: tuple[RawColumn, ...] = field(repr=False)
    profiles: tuple[ColumnProfile, ...] = ()
    suggested_target: str = ""
    target_reason: str = ""
    notes: tuple[str, ...] = ()  # from the reader (encoding tried, trailing separator)
    max_classes: int = 200
    max_label_chars: int = 100
    max_features: int = 2000

    def column(self, name: str) -> RawColumn:
        return next(c for c in self.columns if c.name == name)

    def profile(self, name: str) -> ColumnProfile:
        return next(p for p in self.profiles if p.name == name)


def _tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    return [t for t in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if t]


def _fmt_share(share: float) -> str:
    return f"{share:.0%}" if share >= 0.01 or share == 0 else "<1%"


def _numeric_stats(values: np.ndarray) -> tuple[np.ndarray, bool]:
    finite = values[np.isfinite(values)]
    uniques = pd.unique(finite)
    integral = bool(len(finite)) and bool(np.all(np.mod(uniques, 1) == 0))
    return uniques, integral


def _profile(col: RawColumn, n_rows: int, limits: Any) -> ColumnProfile:
    """Kind, detail and default role of one column."""
    make = partial(_make_profile, col, n_rows)
    if col.problem:
        kind: Kind = "number" if col.is_numeric or col.n_text == 0 else "category"
        return make(kind, _("cannot be read"), "ignore", col.problem, None, can_feature=col.problem,
                    can_target=col.problem)
    if col.is_numeric:
        return _number_profile(col, n_rows, limits, make)
    if col.dates is not None and col.date_format:
        return make("date", _("format {format}").format(format=col.date_format), "feature",
                    _("expanded into year, month, day of year, weekday"), None,
                    can_target=_("a date is not a class"))
    return _text_profile(col, limits, make)


def _make_profile(col: RawColumn, n_rows: int, kind: Kind, detail: str, role: Role, reason: str,
                  distinct: int | None, *, can_feature: str = "", can_target: str = "") -> ColumnProfile:
    """The profile with the column's missing counts; a mostly missing feature is ignored by default."""
    present = n_rows - col.n_missing - col.n_infinite
    share = (col.n_missing + col.n_infinite) / n_rows if n_rows else 0.0
    if role == "feature" and present > 0 and share >= MOSTLY_MISSING:
        role, reason = "ignore", _("{share} of its values are missing").format(share=_fmt_share(share))
    return ColumnProfile(name=col.name, kind=kind, detail=detail, n_missing=col.n_missing + col.n_infinite,
                         share_missing=share, role=role, reason=reason, can_feature=can_feature,
                         can_target=can_target, n_infinite=col.n_infinite, distinct=distinct)


def _number_profile(col: RawColumn, n_rows: int, limits: Any, make: Callable[..., ColumnProfile]
                    ) -> ColumnProfile:
    """A numeric column: constant, a whole-number row identifier, or numbers (classes when few and whole)."""
    assert col.numbers is not None
    uniques, integral = _numeric_stats(col.numbers)
    k = len(uniques)
    if k <= 1:
        detail = _("empty") if k == 0 else _("one value ({value})").format(value=number_class_name(uniques[0]))
        return make("constant", detail, "ignore", _("a column with one value carries no information"), k,
                    can_target=_("it has {detail}; classification needs at least two classes").format(detail=detail))
    too_many = "" if integral and k <= limits.max_classes else (
        _("it holds continuous numbers with {k} distinct values, not classes") if not integral else
        _("it holds numbers with {k} distinct values, not classes")).format(k=f"{k:,}")
    consecutive = integral and float(uniques.max() - uniques.min()) == k - 1
    id_name = bool(set(_tokens(col.name)) & _ID_NAMES) or col.name.lower().endswith("id")
    present = n_rows - col.n_missing - col.n_infinite
    if integral and k == present == n_rows and n_rows >= 20 and (id_name or consecutive):
        return make("identifier", _("unique whole number per row"), "ignore",
                    _("an identifier names a row and says nothing general about it"), k,
                    can_target=_("it is unique per row"))
    detail = (_("{k} whole-number values").format(k=k) if integral and k <= MAX_SUGGESTED_CLASSES
              else _("numbers"))
    return make("number", detail, "feature", "", k, can_target=too_many)


def _text_profile(col: RawColumn, limits: Any, make: Callable[..., ColumnProfile]) -> ColumnProfile:
    """A text column: constant, free text, an identifier, or a category."""
    k = None if col.levels is None else len(col.levels)
    mean_chars = col.chars / col.n_text if col.n_text else 0.0
    mean_words = col.words / col.n_text if col.n_text else 0.0
    over = col.levels is None
    can_feature, can_target = _text_uses(col, k, limits)
    if k is not None and k <= 1:
        detail = _("empty") if k == 0 else _("one value")
        return make("constant", detail, "ignore", _("a column with one value carries no information"), k,
                    can_feature=can_feature, can_target=can_target)
    mostly_unique = over or (k is not None and k > limits.max_categories and k >= 0.5 * col.n_text)
    if col.first_long or (mostly_unique or (k is not None and k >= 0.3 * col.n_text and k > limits.max_categories)
                          ) and (mean_chars >= 30 or mean_words >= 4):
        return make("text", _("{n} words on average").format(n=f"{mean_words:.0f}"), "ignore",
                    _("free text: long, mostly unique strings are not encoded"), k, can_feature=can_feature,
                    can_target=can_target or _("free text is not a class"))
    if mostly_unique:
        detail = (_("unique per row") if col.unique and not over else
                  _("more than {n} distinct values").format(n=f"{limits.max_levels:,}") if over else
                  _("{k} distinct values in {n} rows").format(k=f"{k:,}", n=f"{col.n_text:,}"))
        return make("identifier", detail, "ignore", _("an identifier names a row and says nothing general about it"),
                    k, can_feature=can_feature, can_target=can_target or _("it is (nearly) unique per row"))
    assert k is not None
    detail = (_("{k} values (top {top} + other)").format(k=k, top=limits.max_categories)
              if k > limits.max_categories + 1 else _("{k} values").format(k=k))
    return make("category", detail, "feature", "", k, can_feature=can_feature, can_target=can_target)


def _text_uses(col: RawColumn, k: int | None, limits: Any) -> tuple[str, str]:
    """Why a text column with k distinct values cannot be a feature, and why not the target ("" when it can)."""
    long = {} if col.first_long is None else {"name": repr(col.name), "chars": f"{col.first_long[1]:,}",
                                              "line": col.first_long[0] + 2, "most": limits.max_label_chars}
    can_feature = (_("it has more than {n} distinct values: too many to encode").format(n=f"{limits.max_levels:,}")
                   if col.levels is None else
                   _("column {name} has a value of {chars} characters at line {line}; category names may have at "
                     "most {most}").format(**long) if long else "")
    can_target = ("" if k is not None and 2 <= k <= limits.max_classes and not long else
                  _("it has more than {n} distinct values").format(n=limits.max_classes)
                  if k is None or k > limits.max_classes else
                  _("it has a single value {value}; classification needs at least two classes").format(
                      value=repr(col.levels[0])) if k == 1 and col.levels else
                  _("it has no values") if k < 2 else
                  _("target column {name} has a value of {chars} characters at line {line}; class names may have at "
                    "most {most}").format(**long) if long else "")
    return can_feature, can_target


def _class_counts(col: RawColumn) -> np.ndarray:
    if col.is_numeric:
        assert col.numbers is not None
        finite = col.numbers[np.isfinite(col.numbers)]
        return np.unique(finite, return_counts=True)[1]
    assert col.codes is not None
    codes = col.codes[col.codes >= 0]
    return np.bincount(codes)[np.bincount(codes) > 0] if len(codes) else np.zeros(0, np.int64)


def suggest_target(columns: Sequence[RawColumn], profiles: Sequence[ColumnProfile]) -> tuple[str, str]:
    """(column, why): a category with 2-50 classes and enough rows in each, preferring class-like names,
    then text over numbers, then the last such column; never free text, an identifier, a date, a constant or
    continuous numbers. ("", why not) when no column qualifies."""
    best, best_key, why = "", None, ""
    for i, (col, prof) in enumerate(zip(columns, profiles, strict=True)):
        if prof.kind not in ("category", "number") or prof.can_target or prof.distinct is None:
            continue
        if not 2 <= prof.distinct <= MAX_SUGGESTED_CLASSES:
            continue
        counts = _class_counts(col)
        enough = len(counts) >= 2 and int(counts.min()) >= MIN_CLASS_ROWS
        named = bool(set(_tokens(prof.name)) & TARGET_NAMES)
        key = (named, enough, prof.kind == "category", i)
        if best_key is None or key > best_key:
            best, best_key = prof.name, key
            why = ((_("a text column with {k} classes") if prof.kind == "category" else
                    _("a whole-number column with {k} classes")).format(k=prof.distinct)
                   + (_(", named like a class column") if named else "")
                   + ("" if enough else _("; some class has fewer than {n} rows").format(n=MIN_CLASS_ROWS)))
    if not best:
        return "", _("no column looks like a class column (2 to 50 distinct values, not free text, an identifier "
                     "or continuous numbers): choose the target")
    return best, why


def profile_table(label: str, encoding: str, separator: str, n_rows: int, columns: Sequence[RawColumn],
                  limits: Any, notes: Sequence[str] = ()) -> Table:
    """Profile every column and suggest the target."""
    profiles = tuple(_profile(c, n_rows, limits) for c in columns)
    target, why = suggest_target(columns, profiles)
    return Table(label, encoding, separator, n_rows, tuple(columns), profiles, target, why, tuple(notes),
                 max_classes=limits.max_classes, max_label_chars=limits.max_label_chars,
                 max_features=limits.max_features)


# ---- the user's choices, and what they make -------------------------------------------------------------

@dataclass(frozen=True)
class Choices:
    """The user's decisions: the target, roles that differ from the defaults, missing values, top k."""

    target: str | None = None  # None: the suggested target
    roles: Mapping[str, str] = field(default_factory=dict)  # column -> "feature" / "ignore"
    missing: Literal["impute", "drop"] = "impute"
    numbers: Literal["median", "mean"] = "median"
    top_k: int = 20  # categories one-hot encoded per column; the rest share an "other" column

    def roles_for(self, table: Table) -> dict[str, str]:
        """Every column's role: the target from `target`, the others from `roles` or their defaults."""
        target = table.suggested_target if self.target is None else self.target
        out = {}
        for p in table.profiles:
            role = self.roles.get(p.name, p.role)
            out[p.name] = "target" if p.name == target else role if role in ("feature", "ignore") else p.role
        return out


@dataclass(frozen=True, eq=False)
class InputColumn:
    """A feature column of the kept rows, raw: what the preparation is fitted on and applied to."""

    name: str
    kind: Literal["number", "category", "date"]
    values: np.ndarray = field(repr=False)  # number float32 (n,), NaN missing; date (n, 4); category int32 codes
    levels: tuple[str, ...] = ()  # category: every value in the file, sorted
    date_format: str = ""
    decimal_comma: bool = False

    def width(self, top_k: int) -> int:
        if self.kind == "number":
            return 1
        if self.kind == "date":
            return 4
        return len(self.levels) if len(self.levels) <= top_k + 1 else top_k + 1


@dataclass(frozen=True, eq=False)
class TableData:
    """The raw feature columns of a prepared upload, with the recipe to fit on each split's training rows."""

    columns: tuple[InputColumn, ...]
    target: str
    classes: tuple[str, ...]
    target_kind: Literal["text", "number"]
    missing: Literal["impute", "drop"]
    numbers: Literal["median", "mean"]
    top_k: int
    rows: np.ndarray = field(repr=False)  # each kept row's index among the file's data rows
    ignored: tuple[tuple[str, str], ...] = ()  # (column, why)
    summary: tuple[str, ...] = ()  # what was done, for the user
    file: Mapping[str, str] = field(default_factory=dict)  # label, encoding, separator (for the export)

    @property
    def n_features(self) -> int:
        return sum(c.width(self.top_k) for c in self.columns)


@dataclass(frozen=True)
class Plan:
    """What `Choices` make of a table, before any array is built: kept rows, features and the summary."""

    target: str
    features: tuple[str, ...]  # feature columns
    n_features: int  # model inputs after expansion and one-hot encoding
    kept: np.ndarray = field(repr=False)  # bool per data row
    summary: tuple[str, ...] = ()
    ignored: tuple[tuple[str, str], ...] = ()
    problems: tuple[str, ...] = ()  # why these choices cannot make a dataset (empty: they can)


def _lines(rows: np.ndarray, limit: int = 5) -> str:
    shown = _(", ").join(str(int(r) + 2) for r in rows[:limit]) + (_(", ") + "…" if len(rows) > limit else "")
    return ngettext("line {lines}", "lines {lines}", len(rows)).format(lines=shown)


def _missing_mask(col: RawColumn) -> np.ndarray:
    if col.numbers is not None:
        return ~np.isfinite(col.numbers)
    if col.dates is not None and col.date_format:
        return ~np.isfinite(col.dates[:, 0])
    assert col.codes is not None
    return col.codes < 0


def _feature_kind(col: RawColumn, prof: ColumnProfile) -> Literal["number", "category", "date"]:
    if col.is_numeric:
        return "number"
    if prof.kind == "date":
        return "date"
    return "category"


def _target_values(table: Table, col: RawColumn) -> tuple[np.ndarray, tuple[str, ...], str]:
    """(class index per row, -1 missing; class names; 'text' or 'number') of the target column."""
    lim = table
    if col.is_numeric:
        assert col.numbers is not None
        finite = np.isfinite(col.numbers)
        uniques = np.unique(col.numbers[finite])
        if len(uniques) > lim.max_classes or not np.all(np.mod(uniques, 1) == 0):
            raise TableError(_("{label}: target column {name} holds numbers with {k} distinct values, not classes; "
                               "Keras Lab trains classifiers: choose a column of classes").format(
                label=table.label, name=repr(col.name), k=f"{len(uniques):,}"))
        y = np.full(len(col.numbers), -1, np.int64)
        y[finite] = np.searchsorted(uniques, col.numbers[finite])
        return y, tuple(number_class_name(v) for v in uniques), "number"
    if col.levels is None or len(col.levels) > lim.max_classes:
        raise TableError(_("{label}: target column {name} has more than {n} distinct values; at most {n} classes "
                           "are allowed (is it a class column?)").format(
            label=table.label, name=repr(col.name), n=lim.max_classes))
    if col.first_long is not None:
        raise TableError(_("{label}: target column {name} has a value of {chars} characters at line {line}; class "
                           "names may have at most {most}").format(
            label=table.label, name=repr(col.name), chars=f"{col.first_long[1]:,}", line=col.first_long[0] + 2,
            most=lim.max_label_chars))
    from core.uploads import _sort_key

    classes = sorted(col.levels, key=_sort_key)
    order = np.empty(len(col.levels) + 1, np.int64)
    order[[col.levels.index(c) for c in classes]] = np.arange(len(classes))
    order[-1] = -1
    assert col.codes is not None
    return order[col.codes], tuple(classes), "text"


def _class_names(col: RawColumn) -> list[str]:
    if col.is_numeric:
        assert col.numbers is not None
        return [number_class_name(v) for v in np.unique(col.numbers[np.isfinite(col.numbers)])]
    from core.uploads import _sort_key

    return sorted(col.levels or (), key=_sort_key)


def plan(table: Table, choices: Choices) -> Plan:
    """The rows kept, the features made and the summary, for the page to show before anything is built."""
    roles = choices.roles_for(table)
    target = next((n for n, r in roles.items() if r == "target"), "")
    kept = np.ones(table.n_rows, bool)
    summary, problems = _plan_target(table, target, kept)
    features = [name for name, role in roles.items() if role == "feature"]
    ignored = [(p.name, _("ignored by choice") if p.name in choices.roles and p.role != "ignore" else p.reason
                or _("ignored by choice")) for p in table.profiles if roles[p.name] == "ignore"]
    tally = _FeatureTally(drop_mask=np.zeros(table.n_rows, bool))
    for name in features:
        _tally_feature(tally, table.column(name), table.profile(name), choices, kept)
    problems += tally.problems
    summary += _drop_incomplete_rows(tally, choices, kept)
    summary += _feature_summary(tally, ignored)
    widths = tally.widths
    if not features:
        problems.append(_("no feature columns: set at least one column's role to feature"))
    elif widths > table.max_features:
        problems.append(_("{n} features after one-hot encoding; the limit is {most}: ignore some columns or keep "
                          "fewer categories per column").format(n=f"{widths:,}", most=f"{table.max_features:,}"))
    n_kept = int(kept.sum())
    if target and not problems and n_kept == 0:
        problems.append(_("no row is left once those with missing values are dropped: impute them instead"))
    summary.insert(0, _("{kept} of {rows} rows used, {features} feature column(s) make {inputs} model input(s), "
                        "standardised with the training part's mean and standard deviation.").format(
        kept=f"{n_kept:,}", rows=f"{table.n_rows:,}", features=len(features), inputs=f"{widths:,}"))
    return Plan(target, tuple(features), widths, kept, tuple(summary), tuple(ignored), tuple(problems))


def _plan_target(table: Table, target: str, kept: np.ndarray) -> tuple[list[str], list[str]]:
    """The target's summary lines and problems; rows without a target are taken out of `kept`."""
    if not target:
        return [], [_("choose the target (class) column")]
    col, prof = table.column(target), table.profile(target)
    if prof.can_target:  # a long value's reason names the column itself
        return [], [prof.can_target if repr(target) in prof.can_target and not col.problem else
                    _("column {name} cannot be the target: {reason}").format(name=repr(target),
                                                                              reason=prof.can_target)]
    missing = _missing_mask(col)
    k = prof.distinct or 0
    names = _(", ").join(_class_names(col)[:10]) + (_(", ") + "…" if k > 10 else "")
    summary = [(_("Target {name}: {k} classes ({names}).") if k else _("Target {name}: {k} classes.")).format(
        name=repr(target), k=k, names=names)]
    if missing.any():
        rows = np.flatnonzero(missing)
        summary.append(_("{n} row(s) dropped because the target {name} is missing there ({lines}).").format(
            n=f"{len(rows):,}", name=repr(target), lines=_lines(rows)))
    kept &= ~missing
    return summary, []


@dataclass
class _FeatureTally:
    """What a plan's feature columns add up to, gathered column by column for its summary."""

    drop_mask: np.ndarray  # rows where a feature is missing (dropped with missing="drop")
    widths: int = 0  # model inputs
    problems: list[str] = field(default_factory=list)
    expanded: list[str] = field(default_factory=list)  # date columns
    encoded: list[str] = field(default_factory=list)  # category columns, with their values
    filled: list[str] = field(default_factory=list)  # missing values imputed
    infinite: list[str] = field(default_factory=list)
    unparsed: list[str] = field(default_factory=list)  # dates the format does not read
    drops: list[tuple[str, int]] = field(default_factory=list)  # (column, rows missing it)


def _tally_feature(tally: _FeatureTally, col: RawColumn, prof: ColumnProfile, choices: Choices,
                   kept: np.ndarray) -> None:
    name = col.name
    if prof.can_feature:  # a reader's problem and a long value's reason name the column themselves
        tally.problems.append(prof.can_feature if repr(name) in prof.can_feature else
                              _("column {name} cannot be a feature: {reason}").format(name=repr(name),
                                                                                     reason=prof.can_feature))
        return
    kind = _feature_kind(col, prof)
    if kind == "number":
        tally.widths += 1
    elif kind == "date":
        tally.widths += 4
        tally.expanded.append(name)
        if col.date_unparsed:
            tally.unparsed.append(_("{name}: {n} value(s) that are not dates in the format {format} (e.g. {example}) "
                                    "count as missing").format(name=repr(name), n=f"{col.date_unparsed:,}",
                                                               format=col.date_format,
                                                               example=repr(col.first_unparsed[:30])))
    else:
        assert col.levels is not None
        k = len(col.levels)
        tally.widths += k if k <= choices.top_k + 1 else choices.top_k + 1
        tally.encoded.append((_("{name} ({k} values)") if k <= choices.top_k + 1 else
                              _("{name} (top {top} of {k} values + other)")).format(name=name, k=k, top=choices.top_k))
    if col.n_infinite:
        tally.infinite.append(f"{name} ({col.n_infinite:,})")
    missing = _missing_mask(col)
    count = int((missing & kept).sum())
    if count and choices.missing == "drop":
        tally.drops.append((name, count))
        tally.drop_mask |= missing
    elif count:
        how = (_("{name} {n} ({share}) with the most frequent value") if kind == "category" else
               _("{name} {n} ({share}) with the median") if choices.numbers == "median" else
               _("{name} {n} ({share}) with the mean"))
        tally.filled.append(how.format(name=name, n=f"{count:,}", share=_fmt_share(count / max(1, int(kept.sum())))))


def _drop_incomplete_rows(tally: _FeatureTally, choices: Choices, kept: np.ndarray) -> list[str]:
    """With missing="drop": take rows with a missing feature out of `kept`; the summary line says which."""
    if choices.missing != "drop" or not tally.drop_mask.any():
        return []
    rows = np.flatnonzero(tally.drop_mask & kept)
    kept &= ~tally.drop_mask
    if not len(rows):
        return []
    return [_("{n} more row(s) dropped because a feature is missing there ({columns}; {lines}).").format(
        n=f"{len(rows):,}", columns=_(", ").join(f"{c} {k:,}" for c, k in tally.drops), lines=_lines(rows))]


def _feature_summary(tally: _FeatureTally, ignored: list[tuple[str, str]]) -> list[str]:
    summary = []
    if tally.filled:
        summary.append(_("Missing values filled in, with values fitted on the training part only: {list}.").format(
            list=_("; ").join(tally.filled)))
    if tally.infinite:
        summary.append(_("Infinite values count as missing: {list}.").format(list=_(", ").join(tally.infinite)))
    summary += [_("{sentence}.").format(sentence=u) for u in tally.unparsed]
    if ignored:
        summary.append(_("Ignored: {list}.").format(list=_("; ").join(
            _("{column} ({why})").format(column=c, why=why) for c, why in ignored)))
    if tally.expanded:
        summary.append(_("Expanded into year, month, day of year and weekday: {list}.").format(
            list=_(", ").join(tally.expanded)))
    if tally.encoded:
        summary.append(_("One-hot encoded (categories from the training part; unknown ones go to 'other', or are "
                         "ignored): {list}.").format(list=_(", ").join(tally.encoded)))
    return summary


def input_columns(table: Table, features: Sequence[str], kept: np.ndarray) -> tuple[InputColumn, ...]:
    """The feature columns of the kept rows, raw (numbers with NaN, dates as parts, categories as codes)."""
    out = []
    for name in features:
        col, prof = table.column(name), table.profile(name)
        kind = _feature_kind(col, prof)
        if kind == "number":
            assert col.numbers is not None
            values = col.numbers[kept].astype(np.float32)
            values[~np.isfinite(values)] = np.nan
            out.append(InputColumn(name, "number", values, decimal_comma=col.decimal_comma))
        elif kind == "date":
            assert col.dates is not None
            out.append(InputColumn(name, "date", col.dates[kept], date_format=col.date_format))
        else:
            assert col.codes is not None and col.levels is not None
            order = sorted(range(len(col.levels)), key=lambda i: col.levels[i])  # type: ignore[index]
            remap = np.empty(len(col.levels) + 1, np.int32)
            remap[order] = np.arange(len(order), dtype=np.int32)
            remap[-1] = -1
            out.append(InputColumn(name, "category", remap[col.codes[kept]],
                                   levels=tuple(col.levels[i] for i in order)))
    return tuple(out)


def build_dataset(table: Table, choices: Choices, *, check_memory: Callable[[int, str], None] | None = None,
                  source_notes: Sequence[str] = ()) -> Dataset:
    """The Dataset the choices make: y from the target, the raw feature columns in `table` (fitted per split)
    and x (for exploring) prepared with values fitted on every kept row, not standardised."""
    p = plan(table, choices)
    if p.problems:
        raise TableError(_("{label}: {problem}").format(label=table.label, problem=p.problems[0]))
    y_all, classes, target_kind = _target_values(table, table.column(p.target))
    kept = p.kept
    y = y_all[kept]
    present = np.unique(y)
    if len(present) < 2:
        only = classes[int(present[0])] if len(present) else _("none")
        raise TableError(_("{label}: target column {name} has a single value {value}; classification needs at least "
                           "two classes").format(label=table.label, name=repr(p.target), value=repr(only)))
    if len(present) < len(classes):  # classes seen only in dropped rows
        keep_classes = np.zeros(len(classes), bool)
        keep_classes[present] = True
        remap = np.cumsum(keep_classes) - 1
        y = remap[y]
        classes = tuple(c for c, k in zip(classes, keep_classes, strict=True) if k)
    n = int(kept.sum())
    if check_memory is not None:  # the raw feature columns kept for fitting, and x
        held = sum(n * (16 if _feature_kind(table.column(f), table.profile(f)) == "date" else 4)
                   for f in p.features)
        check_memory(held + n * p.n_features * 4,
                     _("{n} rows x {features} features (after one-hot encoding) as float32").format(
                         n=f"{n:,}", features=f"{p.n_features:,}"))
    columns = input_columns(table, p.features, kept)
    data = TableData(columns, p.target, classes, target_kind, choices.missing, choices.numbers, choices.top_k,
                     np.flatnonzero(kept), p.ignored, p.summary,
                     {"label": table.label, "encoding": table.encoding, "separator": table.separator})
    display = fit_preparation(data, np.arange(n), scale=False)
    x = encode_table(data, display)
    notes = [*source_notes]
    if n < table.n_rows:
        notes.append(_("{n} rows dropped").format(n=f"{table.n_rows - n:,}"))
    if p.ignored:
        notes.append(_("ignored {columns}").format(columns=_(", ").join(repr(c) for c, _why in p.ignored)))
    onehot = [c for c in columns if c.kind == "category"]
    notes += [(_("one-hot encoded {name} ({k} values)") if len(c.levels) <= choices.top_k + 1 else
               _("one-hot encoded {name} (top {top} of {k} values + other)")).format(
        name=repr(c.name), k=len(c.levels), top=choices.top_k) for c in onehot]
    notes += [_("expanded the date {name}").format(name=repr(c.name)) for c in columns if c.kind == "date"]
    source = _("uploaded CSV {label}: {n} rows, {features} features, target {target} ({encoding}, separator "
               "{separator})").format(label=table.label, n=f"{n:,}", features=p.n_features, target=repr(p.target),
                                      encoding=table.encoding, separator=repr(table.separator))
    if notes:
        source = _("{source}; {notes}").format(source=source, notes=_("; ").join(notes))
    return Dataset(f"upload: {table.label}", x, y.astype(np.int64), classes, "tabular",
                   feature_names=tuple(display["features"]), source=source, table=data)


# ---- fitting on the training rows ---------------------------------------------------------------------

def _category_cells(col: InputColumn, idx: np.ndarray | slice) -> np.ndarray:
    levels = np.asarray([*col.levels, None], dtype=object)
    return levels[col.values[idx]]  # code -1 picks the None at the end


def _inputs(data: TableData, idx: np.ndarray | slice) -> dict[str, np.ndarray]:
    return {c.name: _category_cells(c, idx) if c.kind == "category" else c.values[idx] for c in data.columns}


def fit_preparation(data: TableData, idx: np.ndarray, *, scale: bool = True) -> dict[str, Any]:
    """The preparation fitted on rows `idx` (a split's training part) as plain JSON data: SimpleImputer and
    OneHotEncoder from scikit-learn, then each feature's mean and standard deviation (scale=False: mean 0,
    scale 1, for exploring)."""
    idx = np.asarray(idx, dtype=np.int64)
    columns: list[dict[str, Any]] = []
    features: list[str] = []
    fills = _numeric_fills(data, idx)
    for c in data.columns:
        if c.kind == "number":
            columns.append({"name": c.name, "kind": "number", "fill": fills.get(c.name, [0.0])[0],
                            "decimal_comma": bool(c.decimal_comma)})
            features.append(c.name)
        elif c.kind == "date":
            columns.append({"name": c.name, "kind": "date", "format": c.date_format,
                            "fill": fills.get(c.name, [0.0] * 4)})
            features += [f"{c.name} {part}" for part in DATE_PARTS]
        else:
            column = _fit_category(c, idx, data.top_k)
            columns.append(column)
            features += [f"{c.name}={v}" for v in column["categories"]] + ([f"{c.name}=(other)"]
                                                                           if column["other"] else [])
    prep: dict[str, Any] = {
        "format": "keras-lab-preparation", "version": FORMAT_VERSION, "target": data.target,
        "classes": list(data.classes), "target_kind": data.target_kind, "missing": data.missing,
        "numbers": data.numbers, "top_k": data.top_k, "columns": columns, "features": features,
        "ignored": [[c, why] for c, why in data.ignored], "missing_markers": list(MISSING_MARKERS),
        "mean": [0.0] * len(features), "scale": [1.0] * len(features)}
    if scale and len(idx):
        _fit_scale(prep, data, idx)
    return prep


def _numeric_fills(data: TableData, idx: np.ndarray) -> dict[str, list[float]]:
    """SimpleImputer's fill values (median or mean) of each number and date column on rows `idx`."""
    from sklearn.impute import SimpleImputer

    fills: dict[str, list[float]] = {}
    if not len(idx):
        return fills
    for c in data.columns:  # one column at a time: the imputer's masked copies stay small
        if c.kind == "category":
            continue
        values = c.values[idx].reshape(len(idx), -1).astype(np.float64)
        imputer = SimpleImputer(strategy=data.numbers, keep_empty_features=True).fit(values)
        fills[c.name] = [float(v) if math.isfinite(v) else 0.0 for v in imputer.statistics_]
    return fills


def _fit_category(c: InputColumn, idx: np.ndarray, top_k: int) -> dict[str, Any]:
    """A category column's entry: the most frequent value as fill, and the top_k categories OneHotEncoder
    keeps (the rest share 'other')."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    cells = _category_cells(c, idx)
    present = cells[pd.notna(cells)]
    if len(present):
        imputer = SimpleImputer(strategy="most_frequent", missing_values=None)
        fill = str(imputer.fit(present[:, None]).statistics_[0])
        filled = np.where(pd.notna(cells), cells, fill)
    else:  # nothing in training: any value will do, none is informative
        fill = c.levels[0] if c.levels else ""
        filled = np.full(len(cells), fill, dtype=object)
    categories = list(c.levels) or [fill]
    encoder = OneHotEncoder(categories=[categories], max_categories=top_k + 1,
                            handle_unknown="infrequent_if_exist", sparse_output=False)
    encoder.fit(filled.reshape(-1, 1) if len(filled) else np.array([[fill]], dtype=object))
    infrequent = encoder.infrequent_categories_[0]
    rare = set() if infrequent is None else {str(v) for v in infrequent}
    frequent = [str(v) for v in encoder.categories_[0] if str(v) not in rare]
    return {"name": c.name, "kind": "category", "categories": frequent, "other": bool(rare), "fill": fill}


def _fit_scale(prep: dict[str, Any], data: TableData, idx: np.ndarray) -> None:
    """Mean, then standard deviation, of the encoded training rows, a chunk at a time, into `prep`."""
    chunks = [idx[i:i + _CHUNK] for i in range(0, len(idx), _CHUNK)]
    total = sum(encode(prep, _inputs(data, rows)).sum(axis=0, dtype=np.float64) for rows in chunks)
    mean = total / len(idx)
    squares = sum(np.square(encode(prep, _inputs(data, rows)) - mean).sum(axis=0) for rows in chunks)
    std = np.sqrt(squares / len(idx))
    prep["mean"] = [float(v) for v in mean]
    prep["scale"] = [float(1.0 / s) if s > 1e-12 else 0.0 for s in std]


def encode_table(data: TableData, preparation: Mapping[str, Any], chunk: int = 20_000) -> np.ndarray:
    """Every kept row of `data` prepared (float32), a chunk of rows at a time."""
    n = len(data.rows)
    out = np.empty((n, len(preparation["features"])), np.float32)
    for start in range(0, n, chunk):
        out[start:start + chunk] = encode(preparation, _inputs(data, slice(start, start + chunk)))
    return out


_FITTED: weakref.WeakKeyDictionary[Any, dict[bytes, dict[str, Any]]] = weakref.WeakKeyDictionary()


def preparation_for(data: TableData, train_idx: np.ndarray) -> dict[str, Any]:
    """fit_preparation on a split's training rows, remembered per table and rows (a page may ask each rerun)."""
    import hashlib

    key = hashlib.sha256(np.ascontiguousarray(train_idx, dtype=np.int64).tobytes()).digest()
    memo = _FITTED.setdefault(data, {})
    if key not in memo:
        if len(memo) >= 16:
            memo.pop(next(iter(memo)))
        memo[key] = fit_preparation(data, train_idx)
    return memo[key]


def numeric_preparation(feature_names: Sequence[str], mean: np.ndarray, std: np.ndarray,
                        classes: Sequence[str], target: str = "class") -> dict[str, Any]:
    """The preparation of a table of numbers only (a built-in or NPZ dataset): (x - mean) / std."""
    return {"format": "keras-lab-preparation", "version": FORMAT_VERSION, "target": target,
            "classes": [str(c) for c in classes], "target_kind": "text", "missing": "impute",
            "numbers": "mean", "top_k": 0,
            "columns": [{"name": str(n), "kind": "number", "fill": float(m), "decimal_comma": False}
                        for n, m in zip(feature_names, mean, strict=True)],
            "features": [str(n) for n in feature_names], "ignored": [], "missing_markers": list(MISSING_MARKERS),
            "mean": [float(m) for m in mean], "scale": [float(1.0 / s) for s in std]}


# ---- a stored preparation, checked before use --------------------------------------------------------

_FORMAT_TEXT = re.compile(r"^[%A-Za-z0-9 ,./:T_-]{1,40}$")
_MAX_COLUMNS = 500
_MAX_FEATURES = 20_000
_MAX_NAME = 400
_MAX_CATEGORIES = 1000


def _finite(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PreparationError(_("{where} must be a finite number, got {value}").format(
            where=where, value=repr(str(value)[:40])))
    return float(value)


def _text(value: Any, where: str, limit: int = _MAX_NAME) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise PreparationError(_("{where} must be text of at most {limit} characters").format(where=where, limit=limit))
    return value


def check_preparation(obj: Any) -> dict[str, Any]:
    """A preparation read from a run's config.json, checked field by field (types, sizes, finite numbers,
    consistent widths) and rebuilt from known fields only; raises PreparationError saying what is wrong."""
    if not isinstance(obj, dict) or obj.get("format") != "keras-lab-preparation":
        raise PreparationError(_("the run's preparation is missing or not one Keras Lab wrote"))
    if obj.get("version") != FORMAT_VERSION:
        raise PreparationError(_("the run's preparation has version {version}; this app reads version {ours}").format(
            version=repr(str(obj.get("version"))[:20]), ours=FORMAT_VERSION))
    out_cols, width = _checked_columns(obj.get("columns"))
    if not 0 < width <= _MAX_FEATURES:
        raise PreparationError(_("the preparation makes {n} features; at most {most}").format(
            n=f"{width:,}", most=f"{_MAX_FEATURES:,}"))
    out: dict[str, Any] = {"format": "keras-lab-preparation", "version": FORMAT_VERSION, "columns": out_cols}
    for key in ("features", "mean", "scale"):
        values = obj.get(key)
        if not isinstance(values, list) or len(values) != width:
            raise PreparationError(_("the preparation's {key} must have {n} entries (one per feature)").format(
                key=repr(key), n=f"{width:,}"))
        out[key] = ([_text(v, _("a feature name")) for v in values] if key == "features"
                    else [_finite(v, _("a {key} value").format(key=key)) for v in values])
    return out | _checked_target_and_options(obj)


def _checked_columns(cols: Any) -> tuple[list[dict[str, Any]], int]:
    """The checked column entries, and the number of features they make."""
    if not isinstance(cols, list) or not 0 < len(cols) <= _MAX_COLUMNS:
        raise PreparationError(_("the preparation must list 1 to {most} columns").format(most=_MAX_COLUMNS))
    out_cols: list[dict[str, Any]] = []
    width = 0
    names = set()
    for i, c in enumerate(cols):
        if not isinstance(c, dict):
            raise PreparationError(_("column {i} must be an object").format(i=i + 1))
        name = _text(c.get("name"), _("column {i}'s name").format(i=i + 1))
        if name in names:
            raise PreparationError(_("column {name} is listed twice").format(name=repr(name)))
        names.add(name)
        kind = c.get("kind")
        check = _COLUMN_CHECKS.get(kind) if isinstance(kind, str) else None
        if check is None:
            raise PreparationError(_("{name}: unknown kind {kind}").format(name=repr(name), kind=repr(str(kind)[:20])))
        column, features = check(c, name)
        out_cols.append(column)
        width += features
    return out_cols, width


def _fill_of(name: str) -> str:
    return _("{name} fill").format(name=repr(name))


def _checked_number(c: dict[str, Any], name: str) -> tuple[dict[str, Any], int]:
    return {"name": name, "kind": "number", "fill": _finite(c.get("fill"), _fill_of(name)),
            "decimal_comma": bool(c.get("decimal_comma", False))}, 1


def _checked_date(c: dict[str, Any], name: str) -> tuple[dict[str, Any], int]:
    fmt = c.get("format")
    if not isinstance(fmt, str) or not _FORMAT_TEXT.match(fmt) or "%" not in fmt:
        raise PreparationError(_("{name}: the date format is not a plain strftime format").format(name=repr(name)))
    fill = c.get("fill")
    if not isinstance(fill, list) or len(fill) != 4:
        raise PreparationError(_("{name}: a date needs 4 fill values").format(name=repr(name)))
    return {"name": name, "kind": "date", "format": fmt, "fill": [_finite(v, _fill_of(name)) for v in fill]}, 4


def _checked_category(c: dict[str, Any], name: str) -> tuple[dict[str, Any], int]:
    cats = c.get("categories")
    if not isinstance(cats, list) or len(cats) > _MAX_CATEGORIES:
        raise PreparationError(_("{name}: categories must be a list of at most {most}").format(
            name=repr(name), most=_MAX_CATEGORIES))
    cats = [_text(v, _("a category of {name}").format(name=repr(name))) for v in cats]
    if len(set(cats)) != len(cats):
        raise PreparationError(_("{name}: a category is listed twice").format(name=repr(name)))
    other = c.get("other")
    if not isinstance(other, bool):
        raise PreparationError(_("{name}: 'other' must be true or false").format(name=repr(name)))
    return {"name": name, "kind": "category", "categories": cats, "other": other,
            "fill": _text(c.get("fill"), _fill_of(name))}, len(cats) + other


_COLUMN_CHECKS = {"number": _checked_number, "date": _checked_date, "category": _checked_category}


def _checked_target_and_options(obj: dict[str, Any]) -> dict[str, Any]:
    """The classes and target, and the options (missing, numbers, top_k, ignored columns) checked; an
    unknown option falls back to its default."""
    classes = obj.get("classes")
    if not isinstance(classes, list) or not 2 <= len(classes) <= 1000:
        raise PreparationError(_("the preparation must name 2 to 1000 classes"))
    out: dict[str, Any] = {"classes": [_text(v, _("a class name")) for v in classes]}
    out["target"] = _text(obj.get("target", ""), _("the target's name"))
    out["target_kind"] = "number" if obj.get("target_kind") == "number" else "text"
    out["missing"] = "drop" if obj.get("missing") == "drop" else "impute"
    out["numbers"] = "mean" if obj.get("numbers") == "mean" else "median"
    top_k = obj.get("top_k", 0)
    out["top_k"] = int(top_k) if isinstance(top_k, int) and not isinstance(top_k, bool) and 0 <= top_k <= 1000 \
        else 0
    ignored = obj.get("ignored", [])
    out["ignored"] = []
    if isinstance(ignored, list) and len(ignored) <= _MAX_COLUMNS:
        out["ignored"] = [[_text(i[0], _("an ignored column")), _text(i[1], _("a reason"), 1000)] for i in ignored
                          if isinstance(i, list) and len(i) == 2]
    out["missing_markers"] = list(MISSING_MARKERS)
    return out
