"""Cached dataset loading and the dataset the user has selected (shared by every page).

The choice lives in non-widget session keys, so it survives page changes (Streamlit drops widget keys):
  st.session_state["dataset"]         a registry name ("digits", "mnist", ...) or an upload key
  st.session_state["dataset_subset"]  stratified subset size for registry datasets (None: every sample)
  st.session_state["uploads"]         {upload key: Dataset}: uploads cannot be reloaded by name
"""

from __future__ import annotations

import zlib

import streamlit as st

from core import explore
from core.datasets import DEFAULT_DATASET, Dataset, DatasetError, DatasetRef, fetch, load, split_dataset
from core.uploads import CsvInfo, inspect_csv, read_upload

__all__ = [
    "SUBSET",
    "UPLOADS",
    "add_upload",
    "cached_class_counts",
    "cached_correlation",
    "cached_describe",
    "cached_inspect_csv",
    "cached_mean_images",
    "cached_pixel_histogram",
    "projection_task",
    "current_dataset",
    "current_dataset_ref",
    "dataset_key",
    "download_dataset",
    "load_dataset",
    "select_dataset",
    "split_problem",
]

UPLOADS = "uploads"
SUBSET = "dataset_subset"
_DIGESTS = "_upload_digests"


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


def current_dataset_ref() -> DatasetRef | None:
    """What a run records to rebuild the current dataset; None for uploads."""
    name = st.session_state.get("dataset", DEFAULT_DATASET)
    if name in st.session_state.get(UPLOADS, {}) or name.startswith("upload:"):
        return None
    return DatasetRef(name, st.session_state.get(SUBSET), 0)


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


@st.cache_data(show_spinner=False, max_entries=8)
def cached_inspect_csv(data: bytes, filename: str) -> CsvInfo:
    return inspect_csv(data, filename)


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
