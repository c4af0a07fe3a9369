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
from typing import Any, Literal

import numpy as np
import pandas as pd

from core.checks import KerasLabError
from core.datasets import Dataset, DatasetError

__all__ = [
    "DATE_PARTS",
    "KINDS",
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
    "numeric_preparation",
    "parse_numbers",
    "parse_rows",
    "plan",
    "preparation_for",
    "prepare_rows",
    "profile_table",
    "suggest_target",
]

Kind = Literal["number", "category", "date", "identifier", "text", "constant"]
Role = Literal["feature", "target", "ignore"]
KINDS: dict[str, str] = {"number": "number", "category": "category", "date": "date/time",
                         "identifier": "identifier-like", "text": "free text", "constant": "constant"}
ROLES: tuple[str, ...] = ("feature", "target", "ignore")
TARGET_NAMES = frozenset({"class", "label", "labels", "target", "species", "type", "diagnosis", "outcome",
                          "survived", "y"})
_ID_NAMES = frozenset({"id", "ids", "key", "index", "idx", "uuid", "guid"})
MAX_SUGGESTED_CLASSES = 50  # a suggested target has 2..50 classes
MIN_CLASS_ROWS = 3  # "enough samples per class": every class in training, validation and test
MOSTLY_MISSING = 0.6  # a column missing in this share of rows or more is ignored by default
FORMAT_VERSION = 1
_CHUNK = 20_000  # rows prepared at a time (the temporaries of encode stay a few MB)


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
    present = n_rows - col.n_missing - col.n_infinite
    share = (col.n_missing + col.n_infinite) / n_rows if n_rows else 0.0
    common = {"name": col.name, "n_missing": col.n_missing + col.n_infinite, "share_missing": share,
              "n_infinite": col.n_infinite}

    def make(kind: Kind, detail: str, role: Role, reason: str, distinct: int | None, *, can_feature: str = "",
             can_target: str = "") -> ColumnProfile:
        if role == "feature" and present > 0 and share >= MOSTLY_MISSING:
            role, reason = "ignore", f"{_fmt_share(share)} of its values are missing"
        return ColumnProfile(kind=kind, detail=detail, role=role, reason=reason, distinct=distinct,
                             can_feature=can_feature, can_target=can_target, **common)

    if col.problem:
        kind: Kind = "number" if col.is_numeric or col.n_text == 0 else "category"
        return make(kind, "cannot be read", "ignore", col.problem, None, can_feature=col.problem,
                    can_target=col.problem)
    if col.is_numeric:
        assert col.numbers is not None
        uniques, integral = _numeric_stats(col.numbers)
        k = len(uniques)
        if k <= 1:
            detail = "empty" if k == 0 else f"one value ({number_class_name(uniques[0])})"
            return make("constant", detail, "ignore", "a column with one value carries no information", k,
                        can_target=f"it has {detail}; classification needs at least two classes")
        too_many = "" if integral and k <= limits.max_classes else (
            f"it holds {'continuous numbers' if not integral else 'numbers'} with {k:,} distinct values, not "
            f"classes")
        consecutive = integral and float(uniques.max() - uniques.min()) == k - 1
        id_name = bool(set(_tokens(col.name)) & _ID_NAMES) or col.name.lower().endswith("id")
        if integral and k == present == n_rows and n_rows >= 20 and (id_name or consecutive):
            return make("identifier", "unique whole number per row", "ignore",
                        "an identifier names a row and says nothing general about it", k,
                        can_target="it is unique per row")
        detail = f"{k} whole-number values" if integral and k <= MAX_SUGGESTED_CLASSES else "numbers"
        return make("number", detail, "feature", "", k, can_target=too_many)
    if col.dates is not None and col.date_format:
        return make("date", f"format {col.date_format}", "feature",
                    "expanded into " + ", ".join(DATE_PARTS), None, can_target="a date is not a class")
    k = None if col.levels is None else len(col.levels)
    mean_chars = col.chars / col.n_text if col.n_text else 0.0
    mean_words = col.words / col.n_text if col.n_text else 0.0
    over = col.levels is None
    can_feature = (f"it has more than {limits.max_levels:,} distinct values: too many to encode" if over else
                   f"column {col.name!r} has a value of {col.first_long[1]:,} characters at line "
                   f"{col.first_long[0] + 2}; category names may have at most {limits.max_label_chars}"
                   if col.first_long else "")
    can_target = ("" if k is not None and 2 <= k <= limits.max_classes and not col.first_long else
                  f"it has more than {limits.max_classes} distinct values" if k is None or k > limits.max_classes
                  else f"it has a single value {col.levels[0]!r}; classification needs at least two classes"
                  if k == 1 and col.levels else "it has no values" if k < 2 else
                  f"target column {col.name!r} has a value of {col.first_long[1]:,} characters at line "
                  f"{col.first_long[0] + 2}; class names may have at most {limits.max_label_chars}"
                  if col.first_long else "")
    if k is not None and k <= 1:
        detail = "empty" if k == 0 else "one value"
        return make("constant", detail, "ignore", "a column with one value carries no information", k,
                    can_feature=can_feature, can_target=can_target)
    mostly_unique = over or (k is not None and k > limits.max_categories and k >= 0.5 * col.n_text)
    if col.first_long or (mostly_unique or (k is not None and k >= 0.3 * col.n_text and k > limits.max_categories)
                          ) and (mean_chars >= 30 or mean_words >= 4):
        return make("text", f"{mean_words:.0f} words on average", "ignore",
                    "free text: long, mostly unique strings are not encoded", k, can_feature=can_feature,
                    can_target=can_target or "free text is not a class")
    if mostly_unique:
        detail = ("unique per row" if col.unique and not over else
                  f"more than {limits.max_levels:,} distinct values" if over else
                  f"{k:,} distinct values in {col.n_text:,} rows")
        return make("identifier", detail, "ignore", "an identifier names a row and says nothing general about it",
                    k, can_feature=can_feature, can_target=can_target or "it is (nearly) unique per row")
    assert k is not None
    detail = f"{k} values" + (f" (top {limits.max_categories} + other)" if k > limits.max_categories + 1 else "")
    return make("category", detail, "feature", "", k, can_feature=can_feature, can_target=can_target)


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
            why = (f"a {'text ' if prof.kind == 'category' else 'whole-number '}column with {prof.distinct} "
                   f"classes" + (", named like a class column" if named else "")
                   + ("" if enough else f"; some class has fewer than {MIN_CLASS_ROWS} rows"))
    if not best:
        return "", ("no column looks like a class column (2 to 50 distinct values, not free text, an identifier "
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
    shown = ", ".join(str(int(r) + 2) for r in rows[:limit])
    return f"line{'s' if len(rows) > 1 else ''} {shown}{', …' if len(rows) > limit else ''}"


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
            raise TableError(f"{table.label}: target column {col.name!r} holds numbers with {len(uniques):,} "
                             f"distinct values, not classes; Keras Lab trains classifiers: choose a column of "
                             f"classes")
        y = np.full(len(col.numbers), -1, np.int64)
        y[finite] = np.searchsorted(uniques, col.numbers[finite])
        return y, tuple(number_class_name(v) for v in uniques), "number"
    if col.levels is None or len(col.levels) > lim.max_classes:
        raise TableError(f"{table.label}: target column {col.name!r} has more than {lim.max_classes} distinct "
                         f"values; at most {lim.max_classes} classes are allowed (is it a class column?)")
    if col.first_long is not None:
        raise TableError(f"{table.label}: target column {col.name!r} has a value of {col.first_long[1]:,} "
                         f"characters at line {col.first_long[0] + 2}; class names may have at most "
                         f"{lim.max_label_chars}")
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
    problems: list[str] = []
    summary: list[str] = []
    n = table.n_rows
    kept = np.ones(n, bool)
    if not target:
        problems.append("choose the target (class) column")
    else:
        col, prof = table.column(target), table.profile(target)
        if prof.can_target:
            problems.append(prof.can_target if prof.can_target.startswith("target column ") else
                            f"column {target!r} cannot be the target: {prof.can_target}")
        else:
            missing = _missing_mask(col)
            k = prof.distinct or 0
            summary.append(f"Target {target!r}: {k} classes" + (f" ({', '.join(_class_names(col)[:10])}"
                                                                + (", …" if k > 10 else "") + ")" if k else "") + ".")
            if missing.any():
                rows = np.flatnonzero(missing)
                summary.append(f"{len(rows):,} row(s) dropped because the target {target!r} is missing there "
                               f"({_lines(rows)}).")
            kept &= ~missing
    features = [name for name, role in roles.items() if role == "feature"]
    ignored = [(p.name, "ignored by choice" if p.name in choices.roles and p.role != "ignore" else p.reason
                or "ignored by choice") for p in table.profiles if roles[p.name] == "ignore"]
    widths = 0
    expanded, encoded, filled, infinite, unparsed = [], [], [], [], []
    drops: list[tuple[str, int]] = []
    drop_mask = np.zeros(n, bool)
    for name in features:
        col, prof = table.column(name), table.profile(name)
        if prof.can_feature:
            problems.append(prof.can_feature if prof.can_feature.startswith("column ") else
                            f"column {name!r} cannot be a feature: {prof.can_feature}")
            continue
        kind = _feature_kind(col, prof)
        if kind == "number":
            widths += 1
        elif kind == "date":
            widths += 4
            expanded.append(name)
            if col.date_unparsed:
                unparsed.append(f"{name!r}: {col.date_unparsed:,} value(s) that are not dates in the format "
                                f"{col.date_format} (e.g. {col.first_unparsed[:30]!r}) count as missing")
        else:
            assert col.levels is not None
            k = len(col.levels)
            widths += k if k <= choices.top_k + 1 else choices.top_k + 1
            encoded.append(f"{name} ({k} values)" if k <= choices.top_k + 1 else
                           f"{name} (top {choices.top_k} of {k} values + other)")
        if col.n_infinite:
            infinite.append(f"{name} ({col.n_infinite:,})")
        missing = _missing_mask(col)
        count = int((missing & kept).sum())
        if count:
            if choices.missing == "drop":
                drops.append((name, count))
                drop_mask |= missing
            else:
                how = "the most frequent value" if kind == "category" else f"the {choices.numbers}"
                filled.append(f"{name} {count:,} ({_fmt_share(count / max(1, int(kept.sum())))}) with {how}")
    if choices.missing == "drop" and drop_mask.any():
        rows = np.flatnonzero(drop_mask & kept)
        if len(rows):
            summary.append(f"{len(rows):,} more row(s) dropped because a feature is missing there ("
                           + ", ".join(f"{c} {k:,}" for c, k in drops) + f"; {_lines(rows)}).")
        kept &= ~drop_mask
    if filled:
        summary.append("Missing values filled in, with values fitted on the training part only: "
                       + "; ".join(filled) + ".")
    if infinite:
        summary.append("Infinite values count as missing: " + ", ".join(infinite) + ".")
    summary += [u + "." for u in unparsed]
    if ignored:
        summary.append("Ignored: " + "; ".join(f"{c} ({why})" for c, why in ignored) + ".")
    if expanded:
        summary.append("Expanded into year, month, day of year and weekday: " + ", ".join(expanded) + ".")
    if encoded:
        summary.append("One-hot encoded (categories from the training part; unknown ones go to 'other', or are "
                       "ignored): " + ", ".join(encoded) + ".")
    if not features:
        problems.append("no feature columns: set at least one column's role to feature")
    elif widths > table.max_features:
        problems.append(f"{widths:,} features after one-hot encoding; the limit is {table.max_features:,}: "
                        f"ignore some columns or keep fewer categories per column")
    n_kept = int(kept.sum())
    if target and not problems and n_kept == 0:
        problems.append("no row is left once those with missing values are dropped: impute them instead")
    summary.insert(0, f"{n_kept:,} of {n:,} rows used, {len(features)} feature column(s) make {widths:,} "
                      f"model input(s), standardised with the training part's mean and standard deviation.")
    return Plan(target, tuple(features), widths, kept, tuple(summary), tuple(ignored), tuple(problems))


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
        raise TableError(f"{table.label}: {p.problems[0]}")
    y_all, classes, target_kind = _target_values(table, table.column(p.target))
    kept = p.kept
    y = y_all[kept]
    present = np.unique(y)
    if len(present) < 2:
        only = classes[int(present[0])] if len(present) else "none"
        raise TableError(f"{table.label}: target column {p.target!r} has a single value {only!r}; "
                         f"classification needs at least two classes")
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
                     f"{n:,} rows x {p.n_features:,} features (after one-hot encoding) as float32")
    columns = input_columns(table, p.features, kept)
    data = TableData(columns, p.target, classes, target_kind, choices.missing, choices.numbers, choices.top_k,
                     np.flatnonzero(kept), p.ignored, p.summary,
                     {"label": table.label, "encoding": table.encoding, "separator": table.separator})
    display = fit_preparation(data, np.arange(n), scale=False)
    x = encode_table(data, display)
    notes = [*source_notes]
    if n < table.n_rows:
        notes.append(f"{table.n_rows - n:,} rows dropped")
    if p.ignored:
        notes.append("ignored " + ", ".join(repr(c) for c, _ in p.ignored))
    onehot = [c for c in columns if c.kind == "category"]
    notes += [f"one-hot encoded {c.name!r} ({len(c.levels)} values)" if len(c.levels) <= choices.top_k + 1 else
              f"one-hot encoded {c.name!r} (top {choices.top_k} of {len(c.levels)} values + other)" for c in onehot]
    notes += [f"expanded the date {c.name!r}" for c in columns if c.kind == "date"]
    source = (f"uploaded CSV {table.label}: {n:,} rows, {p.n_features} features, target {p.target!r} "
              f"({table.encoding}, separator {table.separator!r})" + (f"; {'; '.join(notes)}" if notes else ""))
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
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    idx = np.asarray(idx, dtype=np.int64)
    columns: list[dict[str, Any]] = []
    features: list[str] = []
    numeric = [c for c in data.columns if c.kind != "category"]
    fills: dict[str, list[float]] = {}
    if len(idx):
        for c in numeric:  # one column at a time: the imputer's masked copies stay small
            values = c.values[idx].reshape(len(idx), -1).astype(np.float64)
            imputer = SimpleImputer(strategy=data.numbers, keep_empty_features=True).fit(values)
            fills[c.name] = [float(v) if math.isfinite(v) else 0.0 for v in imputer.statistics_]
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
            encoder = OneHotEncoder(categories=[categories], max_categories=data.top_k + 1,
                                    handle_unknown="infrequent_if_exist", sparse_output=False)
            encoder.fit(filled.reshape(-1, 1) if len(filled) else np.array([[fill]], dtype=object))
            infrequent = encoder.infrequent_categories_[0]
            rare = set() if infrequent is None else {str(v) for v in infrequent}
            frequent = [str(v) for v in encoder.categories_[0] if str(v) not in rare]
            columns.append({"name": c.name, "kind": "category", "categories": frequent, "other": bool(rare),
                            "fill": fill})
            features += [f"{c.name}={v}" for v in frequent] + ([f"{c.name}=(other)"] if rare else [])
    prep: dict[str, Any] = {
        "format": "keras-lab-preparation", "version": FORMAT_VERSION, "target": data.target,
        "classes": list(data.classes), "target_kind": data.target_kind, "missing": data.missing,
        "numbers": data.numbers, "top_k": data.top_k, "columns": columns, "features": features,
        "ignored": [[c, why] for c, why in data.ignored], "missing_markers": list(MISSING_MARKERS),
        "mean": [0.0] * len(features), "scale": [1.0] * len(features)}
    if scale and len(idx):  # mean, then standard deviation, of the training rows, a chunk at a time
        chunks = [idx[i:i + _CHUNK] for i in range(0, len(idx), _CHUNK)]
        total = sum(encode(prep, _inputs(data, rows)).sum(axis=0, dtype=np.float64) for rows in chunks)
        mean = total / len(idx)
        squares = sum(np.square(encode(prep, _inputs(data, rows)) - mean).sum(axis=0) for rows in chunks)
        std = np.sqrt(squares / len(idx))
        prep["mean"] = [float(v) for v in mean]
        prep["scale"] = [float(1.0 / s) if s > 1e-12 else 0.0 for s in std]
    return prep


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
        raise PreparationError(f"{where} must be a finite number, got {str(value)[:40]!r}")
    return float(value)


def _text(value: Any, where: str, limit: int = _MAX_NAME) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise PreparationError(f"{where} must be text of at most {limit} characters")
    return value


def check_preparation(obj: Any) -> dict[str, Any]:
    """A preparation read from a run's config.json, checked field by field (types, sizes, finite numbers,
    consistent widths) and rebuilt from known fields only; raises PreparationError saying what is wrong."""
    if not isinstance(obj, dict) or obj.get("format") != "keras-lab-preparation":
        raise PreparationError("the run's preparation is missing or not one Keras Lab wrote")
    if obj.get("version") != FORMAT_VERSION:
        raise PreparationError(f"the run's preparation has version {str(obj.get('version'))[:20]!r}; this app "
                               f"reads version {FORMAT_VERSION}")
    cols = obj.get("columns")
    if not isinstance(cols, list) or not 0 < len(cols) <= _MAX_COLUMNS:
        raise PreparationError(f"the preparation must list 1 to {_MAX_COLUMNS} columns")
    out_cols: list[dict[str, Any]] = []
    width = 0
    names = set()
    for i, c in enumerate(cols):
        where = f"column {i + 1}"
        if not isinstance(c, dict):
            raise PreparationError(f"{where} must be an object")
        name = _text(c.get("name"), f"{where}'s name")
        if name in names:
            raise PreparationError(f"column {name!r} is listed twice")
        names.add(name)
        kind = c.get("kind")
        if kind == "number":
            out_cols.append({"name": name, "kind": kind, "fill": _finite(c.get("fill"), f"{name!r} fill"),
                             "decimal_comma": bool(c.get("decimal_comma", False))})
            width += 1
        elif kind == "date":
            fmt = c.get("format")
            if not isinstance(fmt, str) or not _FORMAT_TEXT.match(fmt) or "%" not in fmt:
                raise PreparationError(f"{name!r}: the date format is not a plain strftime format")
            fill = c.get("fill")
            if not isinstance(fill, list) or len(fill) != 4:
                raise PreparationError(f"{name!r}: a date needs 4 fill values")
            out_cols.append({"name": name, "kind": kind, "format": fmt,
                             "fill": [_finite(v, f"{name!r} fill") for v in fill]})
            width += 4
        elif kind == "category":
            cats = c.get("categories")
            if not isinstance(cats, list) or len(cats) > _MAX_CATEGORIES:
                raise PreparationError(f"{name!r}: categories must be a list of at most {_MAX_CATEGORIES}")
            cats = [_text(v, f"a category of {name!r}") for v in cats]
            if len(set(cats)) != len(cats):
                raise PreparationError(f"{name!r}: a category is listed twice")
            other = c.get("other")
            if not isinstance(other, bool):
                raise PreparationError(f"{name!r}: 'other' must be true or false")
            out_cols.append({"name": name, "kind": kind, "categories": cats, "other": other,
                             "fill": _text(c.get("fill"), f"{name!r} fill")})
            width += len(cats) + other
        else:
            raise PreparationError(f"{name!r}: unknown kind {str(kind)[:20]!r}")
    if not 0 < width <= _MAX_FEATURES:
        raise PreparationError(f"the preparation makes {width:,} features; at most {_MAX_FEATURES:,}")
    out: dict[str, Any] = {"format": "keras-lab-preparation", "version": FORMAT_VERSION, "columns": out_cols}
    for key in ("features", "mean", "scale"):
        values = obj.get(key)
        if not isinstance(values, list) or len(values) != width:
            raise PreparationError(f"the preparation's {key!r} must have {width:,} entries (one per feature)")
        out[key] = ([_text(v, "a feature name") for v in values] if key == "features"
                    else [_finite(v, f"a {key} value") for v in values])
    classes = obj.get("classes")
    if not isinstance(classes, list) or not 2 <= len(classes) <= 1000:
        raise PreparationError("the preparation must name 2 to 1000 classes")
    out["classes"] = [_text(v, "a class name") for v in classes]
    out["target"] = _text(obj.get("target", ""), "the target's name")
    out["target_kind"] = "number" if obj.get("target_kind") == "number" else "text"
    out["missing"] = "drop" if obj.get("missing") == "drop" else "impute"
    out["numbers"] = "mean" if obj.get("numbers") == "mean" else "median"
    top_k = obj.get("top_k", 0)
    out["top_k"] = int(top_k) if isinstance(top_k, int) and not isinstance(top_k, bool) and 0 <= top_k <= 1000 \
        else 0
    ignored = obj.get("ignored", [])
    out["ignored"] = []
    if isinstance(ignored, list) and len(ignored) <= _MAX_COLUMNS:
        out["ignored"] = [[_text(i[0], "an ignored column"), _text(i[1], "a reason", 1000)] for i in ignored
                          if isinstance(i, list) and len(i) == 2]
    out["missing_markers"] = list(MISSING_MARKERS)
    return out
