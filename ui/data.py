"""Cached dataset loading and the dataset the user has selected (shared by every page).

The choice lives in non-widget session keys, so it survives page changes (Streamlit drops widget keys):
  st.session_state["dataset"]         a registry name ("digits", "mnist", ...) or an upload key
  st.session_state["dataset_subset"]  stratified subset size for registry datasets (None: every sample, the
                                      default: Keras datasets keep uint8 images, see memory_text)
  st.session_state["uploads"]         {upload key: Dataset}: uploads cannot be reloaded by name

A CSV is read and profiled once per file (`inspect_upload`, kept in this session only: it holds the whole
table); `render_columns` shows its columns with kind, missing values and role, and returns the user's
choices (core.tabular.Choices), which `add_table` turns into the dataset.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core import explore, tabular
from core.datasets import (
    DEFAULT_DATASET,
    TENSORFLOW_BYTES,
    Dataset,
    DatasetError,
    describe_split,
    fetch,
    load,
    memory_need,
    split_dataset,
)
from core.i18n import _, language, language_of, pgettext
from core.specs import analyse_spec, default_preset_name, preset
from core.text import LABEL_CHARS, plain, plain_all
from core.training import TrainConfig
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
    "describe_columns",
    "download_dataset",
    "forget_table",
    "inspect_upload",
    "load_dataset",
    "memory_text",
    "missing_figure",
    "render_columns",
    "render_preparation",
    "render_row_prediction",
    "select_dataset",
    "split_problem",
    "split_text",
]

UPLOADS = "uploads"
SUBSET = "dataset_subset"
_DIGESTS = "_upload_digests"
_TABLE = "_csv_table"  # (file key, CsvInfo) of the CSV being set up
_ROLES = "_data_roles"  # {"file": key, "roles": {column: role}, "n": edits applied (the editor's key)}
_LIMITS = UploadLimits()


@st.cache_resource(show_spinner=False, max_entries=6)
def _load_registry(name: str, subset: int | None, seed: int) -> Dataset:
    return load(name, subset, seed, download=False)


def load_dataset(name: str, subset: int | None = None, seed: int = 0) -> Dataset:
    """Registry datasets, loaded once per process and shared read-only by all sessions (never downloads); the
    spinner, unlike a cache's own, is in the reader's language and shows only when the load takes a while."""
    with st.spinner(_("Loading dataset…")):
        return _load_registry(name, subset, seed)


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
    """The CSV read and profiled once per file and language in this session (not in a cross-session cache: it
    holds the whole table as read, which the choices below are applied to; its profile is written in words)."""
    key = (filename, len(data), zlib.crc32(data), language())
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


def _apply_role_edits(editor_key: str, names: list[str], target: str, labels: dict[str, str]) -> None:
    """The roles table's edits into this session's roles (a new target goes to the target box); `labels` maps
    each role as the table showed it back to its key."""
    state = st.session_state[_ROLES]
    for row, change in st.session_state.get(editor_key, {}).get("edited_rows", {}).items():
        role = labels.get(change.get("role"))
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
    target = st.selectbox(_("Target (class) column"), names, key="data_target", index=suggested,
                          placeholder=_("Choose the column to predict"))
    if target is not None and target == table.suggested_target:
        st.caption(_("Suggested: {reason}.").format(reason=md_literal(table.target_reason)))
    elif target is None:
        st.caption(md_literal(table.target_reason))
    roles = {n: state["roles"].get(n, table.profile(n).role) for n in names}
    rows = []
    for prof in table.profiles:
        role = "target" if prof.name == target else roles[prof.name]
        why = (table.target_reason if prof.name == table.suggested_target else _("chosen")) if role == "target" \
            else prof.can_feature if role == "feature" and prof.can_feature else \
            prof.reason if prof.name not in state["roles"] else _("your choice")
        rows.append({"column": prof.name, "kind": tabular.kind_label(prof.kind), "detail": prof.detail,
                     "missing": prof.n_missing, "missing %": 100 * prof.share_missing,
                     "role": tabular.role_label(role), "why": why})
    labels = {tabular.role_label(r): r for r in tabular.ROLES}
    editor_key = f"data_roles_{state['n']}"
    st.data_editor(pd.DataFrame(rows), key=editor_key, hide_index=True, width="stretch",
                   height=min(35 * (len(rows) + 1) + 3, 35 * 21 + 3),  # every column in view, up to 20
                   disabled=["column", "kind", "detail", "missing", "missing %", "why"],
                   column_config={
                       "column": st.column_config.TextColumn(_("column")),
                       "kind": st.column_config.TextColumn(pgettext("column", "kind"), help=_(
                           "number, category, date/time, identifier-like, free text or constant")),
                       "detail": st.column_config.TextColumn(_("detail")),
                       "missing": st.column_config.NumberColumn(_("missing")),
                       "missing %": st.column_config.NumberColumn(_("missing %"), format="%.1f"),
                       "role": st.column_config.SelectboxColumn(_("role"), options=list(labels), required=True,
                                                                help=_(
                           "feature: the model reads it (a date is expanded into year, month, day of year and "
                           "weekday); target: the class to predict; ignore: left out")),
                       "why": st.column_config.TextColumn(_("why")),
                   },
                   on_change=_apply_role_edits, args=(editor_key, names, target or "", labels))
    if any(p.n_missing for p in table.profiles):
        st.plotly_chart(missing_figure(table.profiles), width="stretch")
        if any(p.n_infinite for p in table.profiles):
            st.caption(_("Infinite values (inf, -inf) count as missing."))
    else:
        st.caption(_("No missing values (empty cells, NA, ?, null, NaN, n/a, - or infinite numbers)."))
    c1, c2, c3 = st.columns(3)
    missing = c1.radio(_("Rows with missing values"), ["impute", "drop"], horizontal=True, key="data_missing",
                       format_func=lambda k: _("fill in (impute)") if k == "impute" else _("drop them"),
                       help=_("Fill in: numbers with the median or mean, categories with the most frequent value, "
                              "all fitted on the training part only (scikit-learn's SimpleImputer). Rows whose "
                              "target is missing are always dropped."))
    numbers = c2.selectbox(_("Fill numbers with the"), ["median", "mean"], key="data_numbers",
                           format_func=lambda k: _("median") if k == "median" else _("mean"))
    top_k = c3.number_input(_("Categories kept per column"), min_value=2, max_value=50,
                            value=limits.max_categories, key="data_top_k",
                            help=_("A category column is one-hot encoded with its most frequent values in the "
                                   "training part; the others share one 'other' column."))
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
        hovertemplate=_("%{customdata}: %{text} missing (%{x:.1f}%)") + "<extra></extra>"))
    fig.update_layout(title=_("Missing values per column"), height=max(200, 60 + 28 * len(gaps)),
                      margin={"l": 10, "r": 40, "b": 40},
                      xaxis={"title": _("{percent} of rows").format(percent="%"), "range": [0, 105]},
                      yaxis={"autorange": "reversed", "type": "category"})
    return tidy(fig)


def _example_cell(col: dict[str, Any]) -> str:
    """A typical value of a raw column as text: the value training fills a gap with."""
    if col["kind"] == "number":
        return f"{col['fill']:g}"
    if col["kind"] == "date":
        year, _month, day, _weekday = col["fill"]
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
        st.info(_("Prediction needs the run's preparation: {reason}.").format(reason=md_literal(exc)))
        return
    columns = [c["name"] for c in prep["columns"]]
    st.caption(_("Type a new row as it would appear in your table (an empty cell, NA or ? counts as missing and is "
                 "filled in as in training), or upload a CSV of rows. The run's own preparation turns them into the "
                 "model's inputs: {columns}.").format(
        columns=md_literal(_(", ").join(columns[:12]) + (_(", ") + "…" if len(columns) > 12 else ""))))
    start = pd.DataFrame([{c["name"]: _example_cell(c) for c in prep["columns"]}], dtype=object)
    typed = st.data_editor(start, key=f"{key}_typed", num_rows="dynamic", hide_index=True, width="stretch",
                           column_config={c: st.column_config.TextColumn(c) for c in columns})
    typed = typed.dropna(how="all")
    if len(typed):
        try:
            x = tabular.prepare_rows(prep, typed.astype(object).where(typed.notna(), ""))
            st.dataframe(prediction_table(predict_probabilities(model, x), class_names), hide_index=True)
        except (ValueError, KeyError) as exc:
            st.error(_("the typed rows could not be prepared: {reason}").format(reason=md_literal(exc)),
                     icon=":material/error:")
    up = st.file_uploader(_("Or a CSV with one or more rows (a header naming the columns, or one value per column "
                            "in this order)"), type=["csv", "txt"], key=f"{key}_csv")
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


def split_problem(key: str, dataset: Dataset, split_seed: int = 0) -> str | None:
    """Why training could not split this dataset (e.g. an upload of a handful of rows), in the visitor's
    language; None when it can."""
    return _split_problem(key, dataset, split_seed, language())


@st.cache_data(show_spinner=False, max_entries=16)
def _split_problem(key: str, _dataset: Dataset, split_seed: int, lang: str) -> str | None:
    """split_problem, cached per language too (`lang`: the message is words)."""
    try:
        split_dataset(_dataset, seed=split_seed)
    except DatasetError as exc:
        return str(exc)
    return None


def split_text(dataset: Dataset) -> str:
    """The split training uses by default, in words (the Train page can pool an official split instead)."""
    words = _("The split training will use: {split}.").format(split=describe_split(dataset))
    if dataset.has_official_split:
        words += _(" The Train page can pool every image and re-split them 70 / 15 / 15 instead.")
    return words


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.1f} GB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:,.0f} MB" \
        if n_bytes >= 2**20 else f"{n_bytes / 2**10:,.0f} KB"


def memory_text(dataset: Dataset) -> str:
    """The memory a training of this dataset needs with its default model and batch, part by part."""
    batch = TrainConfig().batch_size
    spec = preset(default_preset_name(dataset), dataset)
    analysis = analyse_spec(spec, dataset.input_shape, dataset.n_classes, dataset.kind)
    shapes = [dataset.input_shape, *(row.output_shape for row in analysis.rows if row.output_shape)]
    need = memory_need(dataset, batch_size=batch, values_per_sample=sum(math.prod(s) for s in shapes),
                       params=analysis.total_params)
    stored = _("uint8, one byte per pixel value") if dataset.x.dtype == np.uint8 else "float32"
    return _("Memory: the data take {data} ({stored}) here and twice in the training process (as received, then "
             "split into training / validation / test). Training {model} with batches of {batch} adds {per_batch} "
             "per batch of float32 (inputs, layer outputs and their gradients) and {weights} for the model (weights, "
             "gradients, Adam's two moments). TensorFlow and Keras running the fit take about {tensorflow} more: "
             "the training process needs about {total}.").format(
        data=_size(need.data), stored=stored, model=spec.name, batch=batch, per_batch=_size(need.batch),
        weights=_size(need.model), tensorflow=_size(TENSORFLOW_BYTES), total=_size(need.training_process))


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


def describe_columns() -> dict[str, str]:
    """pandas describe()'s statistics as people read them, in the visitor's language (for the table's header)."""
    return {"count": _("count"), "mean": _("mean"), "std": _("std"), "min": _("min"), "max": _("max")}



@st.cache_resource(show_spinner=False)
def _projection_tasks() -> explore.TaskCache:
    """One memo of projections for the whole server (it holds no Streamlit element, so nothing is replayed)."""
    return explore.TaskCache(max_entries=16)


def projection_task(key: str, dataset: Dataset, method: str, seed: int = 0) -> explore.Task[explore.Projection]:
    """PCA / t-SNE of `dataset`, computed once per (data, method, seed) in a background thread.

    The caller polls the task and draws its own progress bar; no Streamlit call happens inside the
    computation, so a second showing or a second visitor just gets the finished result. Its progress texts are
    in the language of the visitor who started it; the result's note is written when shown (Projection.note).
    """
    lang = language()

    def compute(progress: explore.Progress) -> explore.Projection:
        with language_of(lang):
            return explore.project_2d(dataset, method, seed=seed, progress=progress)  # type: ignore[arg-type]

    return _projection_tasks().get((key, method, seed), compute)
