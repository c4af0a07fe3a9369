"""Cached dataset loading and the dataset the user has selected (shared by every page).

The choice lives in non-widget session keys, so it survives page changes (Streamlit drops widget keys):
  st.session_state["dataset"]         a registry name ("digits", "mnist", ...) or an upload key
  st.session_state["dataset_subset"]  stratified subset size for registry datasets (None: every sample)
  st.session_state["uploads"]         {upload key: Dataset}: uploads cannot be reloaded by name

A CSV is read and profiled once per file (`inspect_upload`, kept in this session only: it holds the whole
table); `render_columns` shows its columns with kind, missing values and role, and returns the user's
choices (core.tabular.Choices), which `add_table` turns into the dataset.
"""

from __future__ import annotations

import zlib
from typing import Any

import pandas as pd
import streamlit as st

from core import explore, tabular
from core.datasets import DEFAULT_DATASET, Dataset, DatasetError, fetch, load, split_dataset
from core.text import LABEL_CHARS, plain, plain_all
from core.uploads import CsvInfo, UploadLimits, inspect_csv, read_upload, table_dataset
from ui.text import md_literal

__all__ = [
    "SUBSET",
    "UPLOADS",
    "add_table",
    "add_upload",
    "cached_class_counts",
    "cached_correlation",
    "cached_describe",
    "cached_mean_images",
    "cached_pixel_histogram",
    "projection_task",
    "current_dataset",
    "dataset_key",
    "download_dataset",
    "forget_table",
    "inspect_upload",
    "load_dataset",
    "missing_figure",
    "render_columns",
    "render_preparation",
    "render_row_prediction",
    "select_dataset",
    "split_problem",
]

UPLOADS = "uploads"
SUBSET = "dataset_subset"
_DIGESTS = "_upload_digests"
_TABLE = "_csv_table"  # (file key, CsvInfo) of the CSV being set up
_ROLES = "_data_roles"  # {"file": key, "roles": {column: role}, "n": edits applied (the editor's key)}
_LIMITS = UploadLimits()


@st.cache_resource(show_spinner="Loading dataset…", max_entries=6)
def load_dataset(name: str, subset: int | None = None, seed: int = 0) -> Dataset:
    """Registry datasets, loaded once per process and shared read-only by all sessions (never downloads)."""
    return load(name, subset, seed, download=False)


def download_dataset(name: str) -> Dataset:
    """Let Keras try the download (imports TensorFlow); raises DatasetError with instructions if it fails."""
    fetch(name)
    return load_dataset(name, st.session_state.get(SUBSET))


def current_dataset() -> Dataset:
    """The dataset selected on the Data page (digits by default); raises DatasetError if it is unreadable."""
    name = st.session_state.get("dataset", DEFAULT_DATASET)
    uploads = st.session_state.get(UPLOADS, {})
    if name in uploads:
        return uploads[name]
    if name.startswith("upload:"):  # an upload from a session that is gone: fall back to the default
        st.session_state["dataset"] = name = DEFAULT_DATASET
    return load_dataset(name, st.session_state.get(SUBSET))


def select_dataset(name: str, subset: int | None = None) -> Dataset:
    """Load `name` (an upload key or a registry name) and, only if that works, make it every page's dataset."""
    uploads = st.session_state.setdefault(UPLOADS, {})
    dataset = uploads[name] if name in uploads else load_dataset(name, subset)
    st.session_state["dataset"] = name
    st.session_state[SUBSET] = None if name in uploads else subset
    return dataset


def add_upload(data: bytes, filename: str, **options) -> Dataset:
    """Parse an upload (core.uploads.read_upload options), keep it in this session and select it."""
    dataset = read_upload(data, filename, **options)
    st.session_state.setdefault(UPLOADS, {})[dataset.name] = dataset
    st.session_state.setdefault(_DIGESTS, {})[dataset.name] = f"{zlib.crc32(data):08x}-{sorted(options.items())}"
    st.session_state["dataset"] = dataset.name
    st.session_state[SUBSET] = None
    return dataset


def dataset_key(dataset: Dataset) -> str:
    """A cache key that changes when the data does (uploads: a digest of the uploaded bytes and options)."""
    digest = st.session_state.get(_DIGESTS, {}).get(dataset.name, "")
    return f"{dataset.name}|{dataset.subset}|{dataset.seed}|{dataset.n_samples}|{digest}"


def inspect_upload(data: bytes, filename: str) -> CsvInfo:
    """The CSV read and profiled once per file in this session (not in a cross-session cache: it holds the
    whole table as read, which the choices below are applied to)."""
    key = (filename, len(data), zlib.crc32(data))
    held = st.session_state.get(_TABLE)
    if held is not None and held[0] == key:
        return held[1]
    st.session_state.pop(_TABLE, None)  # the previous file's table is freed before the next one is read
    info = inspect_csv(data, filename)
    st.session_state[_TABLE] = (key, info)
    return info


def forget_table() -> None:
    """Free the CSV being set up (its file was removed from the uploader); datasets already made stay."""
    st.session_state.pop(_TABLE, None)


def add_table(info: CsvInfo, choices: tabular.Choices, data: bytes) -> Dataset:
    """The dataset an inspected CSV makes with `choices`, kept in this session and selected."""
    dataset = table_dataset(info, choices)
    st.session_state.setdefault(UPLOADS, {})[dataset.name] = dataset
    st.session_state.setdefault(_DIGESTS, {})[dataset.name] = f"{zlib.crc32(data):08x}-{choices}"
    st.session_state["dataset"] = dataset.name
    st.session_state[SUBSET] = None
    return dataset


_ROLE_HELP = ("feature: the model reads it (a date is expanded into year, month, day of year and weekday); "
              "target: the class to predict; ignore: left out")


def _apply_role_edits(editor_key: str, names: list[str], target: str) -> None:
    """The roles table's edits into this session's roles (a new target goes to the target box)."""
    state = st.session_state[_ROLES]
    for row, change in st.session_state.get(editor_key, {}).get("edited_rows", {}).items():
        role = change.get("role")
        if role is None or not 0 <= int(row) < len(names):
            continue
        name = names[int(row)]
        if role == "target":
            st.session_state["data_target"] = name
        elif name != target:
            state["roles"][name] = role
    state["n"] += 1  # a fresh table shows the roles as they now are


def render_columns(info: CsvInfo, file_key: str, limits: UploadLimits = _LIMITS) -> tabular.Choices:
    """The target box, the table of columns (kind, missing values, role and why, the role editable), the
    missing-value chart and the options; returns the user's choices."""
    table = info.table
    state = st.session_state.get(_ROLES)
    if state is None or state.get("file") != file_key:
        state = st.session_state[_ROLES] = {"file": file_key, "roles": {}, "n": 0}
    names = list(info.columns)
    suggested = names.index(table.suggested_target) if table.suggested_target in names else None
    target = st.selectbox("Target (class) column", names, key="data_target", index=suggested,
                          placeholder="Choose the column to predict")
    if target is not None and target == table.suggested_target:
        st.caption(f"Suggested: {md_literal(table.target_reason)}.")
    elif target is None:
        st.caption(md_literal(table.target_reason))
    roles = {n: state["roles"].get(n, table.profile(n).role) for n in names}
    rows = []
    for prof in table.profiles:
        role = "target" if prof.name == target else roles[prof.name]
        why = (table.target_reason if prof.name == table.suggested_target else "chosen") if role == "target" \
            else prof.can_feature if role == "feature" and prof.can_feature else \
            prof.reason if prof.name not in state["roles"] else "your choice"
        rows.append({"column": prof.name, "kind": tabular.KINDS[prof.kind], "detail": prof.detail,
                     "missing": prof.n_missing, "missing %": 100 * prof.share_missing, "role": role, "why": why})
    editor_key = f"data_roles_{state['n']}"
    st.data_editor(pd.DataFrame(rows), key=editor_key, hide_index=True, width="stretch",
                   height=min(35 * (len(rows) + 1) + 3, 35 * 21 + 3),  # every column in view, up to 20
                   disabled=["column", "kind", "detail", "missing", "missing %", "why"],
                   column_config={
                       "role": st.column_config.SelectboxColumn("role", options=list(tabular.ROLES), required=True,
                                                                help=_ROLE_HELP),
                       "missing %": st.column_config.NumberColumn("missing %", format="%.1f"),
                       "kind": st.column_config.TextColumn("kind", help="number, category, date/time, "
                                                           "identifier-like, free text or constant"),
                   },
                   on_change=_apply_role_edits, args=(editor_key, names, target or ""))
    if any(p.n_missing for p in table.profiles):
        st.plotly_chart(missing_figure(table.profiles), width="stretch")
        if any(p.n_infinite for p in table.profiles):
            st.caption("Infinite values (inf, -inf) count as missing.")
    else:
        st.caption("No missing values (empty cells, NA, ?, null, NaN, n/a, - or infinite numbers).")
    c1, c2, c3 = st.columns(3)
    missing = c1.radio("Rows with missing values", ["impute", "drop"], horizontal=True, key="data_missing",
                       format_func={"impute": "fill in (impute)", "drop": "drop them"}.get,
                       help="Fill in: numbers with the median or mean, categories with the most frequent value, "
                            "all fitted on the training part only (scikit-learn's SimpleImputer). Rows whose "
                            "target is missing are always dropped.")
    numbers = c2.selectbox("Fill numbers with the", ["median", "mean"], key="data_numbers")
    top_k = c3.number_input("Categories kept per column", min_value=2, max_value=50,
                            value=limits.max_categories, key="data_top_k",
                            help="A category column is one-hot encoded with its most frequent values in the "
                                 "training part; the others share one 'other' column.")
    return tabular.Choices(target if target is not None else "", {n: r for n, r in state["roles"].items()},
                           missing, numbers, int(top_k))


def render_preparation(summary: tuple[str, ...] | list[str], problems: tuple[str, ...] = ()) -> None:
    """What the choices do (which rows are dropped, columns ignored or expanded, features made, why)."""
    for problem in problems:
        st.warning(md_literal(problem), icon=":material/warning:")
    st.markdown("\n".join(f"- {md_literal(line)}" for line in summary))


def missing_figure(profiles) -> Any:
    """Bars: the share of missing values per column (only columns that have some), the count on hover."""
    import plotly.graph_objects as go

    from core.charts.style import tidy

    gaps = [p for p in profiles if p.n_missing]
    names = plain_all([p.name for p in gaps], LABEL_CHARS)
    fig = go.Figure(go.Bar(
        x=[100 * p.share_missing for p in gaps], y=names, orientation="h",
        text=[f"{p.n_missing:,}" for p in gaps], textposition="outside", cliponaxis=False,
        customdata=[plain(p.name) for p in gaps],
        hovertemplate="%{customdata}: %{text} missing (%{x:.1f}%)<extra></extra>"))
    fig.update_layout(title="Missing values per column", height=max(200, 60 + 28 * len(gaps)),
                      margin={"l": 10, "r": 40, "b": 40}, xaxis={"title": "% of rows", "range": [0, 105]},
                      yaxis={"autorange": "reversed", "type": "category"})
    return tidy(fig)


def _example_cell(col: dict[str, Any]) -> str:
    """A typical value of a raw column as text: the value training fills a gap with."""
    if col["kind"] == "number":
        return f"{col['fill']:g}"
    if col["kind"] == "date":
        year, _, day, _ = col["fill"]
        try:
            when = pd.Timestamp(year=int(year), month=1, day=1) + pd.Timedelta(days=int(day) - 1)
            return when.strftime(col["format"])
        except (ValueError, OverflowError):
            return ""
    return str(col["fill"])


def render_row_prediction(model: Any, preparation: dict[str, Any], class_names, key: str) -> None:
    """Type new rows of the raw columns (or upload a CSV of them): predicted through the run's preparation, the
    same code that prepared its training rows."""
    from core.evaluation import prediction_table
    from core.model_files import ModelFileError, predict_probabilities
    from core.prediction_input import read_csv_rows

    try:
        prep = tabular.check_preparation(preparation)
    except tabular.PreparationError as exc:
        st.info(f"Prediction needs the run's preparation: {md_literal(exc)}.")
        return
    columns = [c["name"] for c in prep["columns"]]
    st.caption("Type a new row as it would appear in your table (an empty cell, NA or ? counts as missing and is "
               "filled in as in training), or upload a CSV of rows. The run's own preparation turns them into "
               "the model's inputs: " + md_literal(", ".join(columns[:12]) + (", …" if len(columns) > 12 else ""))
               + ".")
    start = pd.DataFrame([{c["name"]: _example_cell(c) for c in prep["columns"]}], dtype=object)
    typed = st.data_editor(start, key=f"{key}_typed", num_rows="dynamic", hide_index=True, width="stretch",
                           column_config={c: st.column_config.TextColumn(c) for c in columns})
    typed = typed.dropna(how="all")
    if len(typed):
        try:
            x = tabular.prepare_rows(prep, typed.astype(object).where(typed.notna(), ""))
            st.dataframe(prediction_table(predict_probabilities(model, x), class_names), hide_index=True)
        except (ValueError, KeyError) as exc:
            st.error(md_literal(f"the typed rows could not be prepared: {exc}"), icon=":material/error:")
    up = st.file_uploader("Or a CSV with one or more rows (a header naming the columns, or one value per column "
                          "in this order)", type=["csv", "txt"], key=f"{key}_csv")
    if up is not None:
        try:
            x = read_csv_rows(up.getvalue(), preparation=prep)
            st.dataframe(prediction_table(predict_probabilities(model, x), class_names), hide_index=True)
        except ModelFileError as exc:
            st.error(md_literal(exc), icon=":material/error:")


@st.cache_data(show_spinner=False, max_entries=16)
def cached_class_counts(key: str, _dataset: Dataset, split_seed: int = 0):
    """Class counts per train / validation / test part of the default split (what training will use)."""
    try:
        split = split_dataset(_dataset, seed=split_seed)
    except DatasetError:
        return explore.class_counts(_dataset)
    return explore.class_counts(_dataset, split)


@st.cache_data(show_spinner=False, max_entries=16)
def split_problem(key: str, _dataset: Dataset, split_seed: int = 0) -> str | None:
    """Why training could not split this dataset (e.g. an upload of a handful of rows); None when it can."""
    try:
        split_dataset(_dataset, seed=split_seed)
    except DatasetError as exc:
        return str(exc)
    return None


@st.cache_data(show_spinner=False, max_entries=16)
def cached_mean_images(key: str, _dataset: Dataset):
    return explore.mean_images(_dataset.x, _dataset.y, _dataset.n_classes)


@st.cache_data(show_spinner=False, max_entries=16)
def cached_pixel_histogram(key: str, _dataset: Dataset):
    return explore.pixel_histogram(_dataset.x)


@st.cache_data(show_spinner=False, max_entries=16)
def cached_describe(key: str, _dataset: Dataset):
    return explore.describe(_dataset)


@st.cache_data(show_spinner=False, max_entries=16)
def cached_correlation(key: str, _dataset: Dataset):
    return explore.correlation(_dataset)


@st.cache_resource(show_spinner=False)
def _projection_tasks() -> explore.TaskCache:
    """One memo of projections for the whole server (it holds no Streamlit element, so nothing is replayed)."""
    return explore.TaskCache(max_entries=16)


def projection_task(key: str, dataset: Dataset, method: str, seed: int = 0) -> explore.Task[explore.Projection]:
    """PCA / t-SNE of `dataset`, computed once per (data, method, seed) in a background thread.

    The caller polls the task and draws its own progress bar; no Streamlit call happens inside the
    computation, so a second showing or a second visitor just gets the finished result.
    """
    return _projection_tasks().get((key, method, seed), lambda progress: explore.project_2d(
        dataset, method, seed=seed, progress=progress))  # type: ignore[arg-type]
