"""Explore data: choose a dataset (built-in, Keras, or an upload), then look at it before training."""

import streamlit as st

from core import explore, tabular
from core.charts import data as charts
from core.datasets import ALL_DATASETS, DEFAULT_DATASET, KERAS_DATASETS, DatasetError, is_cached
from core.uploads import safe_label, upload_kind
from ui import data as ud
from ui.state import ensure_app_entry
from ui.text import md_literal

ensure_app_entry()

SIZES = [1000, 2000, 5000, 10000, 20000, "all"]
st.title(":material/bar_chart: Explore data")
uploads = st.session_state.setdefault(ud.UPLOADS, {})
if "data_pick" not in st.session_state:  # widget keys vanish on page change: sync from the real choice
    st.session_state["data_pick"] = st.session_state.get("dataset", DEFAULT_DATASET)
    if st.session_state["data_pick"] in KERAS_DATASETS:
        st.session_state["data_subset"] = st.session_state.get(ud.SUBSET) or "all"


def _label(name: str) -> str:
    if name in uploads:
        return f"{name}  ·  {uploads[name].n_samples:,} samples"
    cached = "" if name not in KERAS_DATASETS or is_cached(name) else "  ·  not downloaded"
    return f"{name}  ·  {ALL_DATASETS[name]}{cached}"


def _use_upload(data: bytes, filename: str, options: dict) -> None:
    try:
        if "table" in options:  # a CSV, read once: the user's choices make the dataset
            dataset = ud.add_table(options["table"], options["choices"], data)
        else:
            dataset = ud.add_upload(data, filename, **options)
        st.session_state["data_pick"] = dataset.name
        st.toast(f"Now using {md_literal(safe_label(filename))} on every page", icon=":material/check_circle:")
    except DatasetError as exc:
        st.session_state["_upload_error"] = str(exc)


choices = [*ALL_DATASETS, *uploads]
if st.session_state["data_pick"] not in choices:  # e.g. an upload of a session that has ended
    st.session_state["data_pick"] = DEFAULT_DATASET
left, right = st.columns([3, 1], vertical_alignment="bottom")
pick = left.selectbox("Dataset", choices, format_func=_label, key="data_pick")
subset = None
if pick in KERAS_DATASETS:
    st.session_state.setdefault("data_subset", 5000)  # a first look at a large set stays small
    size = right.select_slider("Subset size (stratified)", SIZES, key="data_subset",
                               help="Large sets are sampled, class proportions kept, so they fit small machines.")
    subset = None if size == "all" else int(size)

with st.expander("Upload your own data: CSV, NPZ or a ZIP of image folders", icon=":material/upload_file:"):
    st.caption("CSV/TSV: one row per sample, a class column (UTF-8, UTF-16 'Unicode text' or cp1252; separated "
               "by , ; tab or |); gaps, IDs, dates and free text are fine: you choose what each column is for. "
               "NPZ: arrays `x` and `y` (optional `class_names`). "
               "ZIP: one folder per class of PNG/JPEG images. Files stay in this browser session only.")
    file = st.file_uploader("File", type=["csv", "tsv", "txt", "npz", "zip"], key="data_upload")
    if file is None:
        ud.forget_table()  # a CSV read before is no longer held
    else:
        raw, name, options = file.getvalue(), file.name, {}
        try:
            kind = upload_kind(name)
            ready = True
            if kind == "csv":
                with st.spinner("Reading the table…"):
                    info = ud.inspect_upload(raw, name)
                st.caption(f"{info.n_rows:,} rows · {len(info.columns)} columns · encoding "
                           f"{md_literal(info.encoding)} · separator {md_literal(repr(info.separator))}"
                           + "".join(f" · {md_literal(n)}" for n in info.notes))
                st.dataframe(info.preview, height=180)
                st.markdown("**Columns**: what each one looks like and what it is for. Change a role in the table.")
                choices = ud.render_columns(info, f"{name}|{len(raw)}")
                plan = tabular.plan(info.table, choices)
                ud.render_preparation(plan.summary, plan.problems)
                options = {"table": info, "choices": choices}
                ready = not plan.problems
            elif kind == "zip":
                c1, c2 = st.columns(2)
                options["image_size"] = c1.select_slider("Resize images to", [8, 16, 28, 32, 48, 64], value=32)
                options["color"] = c2.radio("Colour", ["rgb", "grayscale"], horizontal=True)
            st.button(f"Use {md_literal(safe_label(name))}", icon=":material/check:", type="primary",
                      key="data_use", on_click=_use_upload, args=(raw, name, options), disabled=not ready)
        except DatasetError as exc:
            st.error(md_literal(exc), icon=":material/error:")
    if err := st.session_state.pop("_upload_error", None):
        st.error(md_literal(err), icon=":material/error:")

try:
    ds = ud.select_dataset(pick, subset)
except DatasetError as exc:
    message = st.empty()
    message.error(str(exc), icon=":material/cloud_off:")  # a registry dataset: our text, with its link
    if st.button("Try to download it with Keras", icon=":material/download:"):
        with st.spinner(f"Downloading {md_literal(pick)} with Keras…"):
            try:
                ud.download_dataset(pick)
                st.rerun()
            except DatasetError as exc2:
                message.error(str(exc2), icon=":material/cloud_off:")
    st.caption(f"The other pages keep using **{md_literal(st.session_state.get('dataset', 'digits'))}**.")
    st.stop()

key = ud.dataset_key(ds)
counts = ud.cached_class_counts(key, ds)
sizes = counts.groupby("part", sort=False)["count"].sum()
cols = st.columns(6)
cols[0].metric("Samples", f"{ds.n_samples:,}")
cols[1].metric("Classes", ds.n_classes)
cols[2].metric("Input shape", "x".join(map(str, ds.input_shape)))
for col, (part, n) in zip(cols[3:], sizes.items(), strict=False):
    col.metric(part.capitalize(), f"{int(n):,}")
st.caption(f":material/info: {md_literal(ds.source)}. Every page now uses this dataset.")
if ds.table is not None:
    with st.expander("How this table was prepared", icon=":material/table_chart:"):
        ud.render_preparation(ds.table.summary)
        st.caption("Each training run fits the fill-in values, the categories and the scaling on its own training "
                   "part; the values shown in Features are filled in with all rows, not standardised.")

tabs = st.tabs(["Class balance", "Images" if ds.kind == "image" else "Features", "2-D projection"])
with tabs[0]:
    st.plotly_chart(charts.class_balance_figure(counts), width="stretch")
    if problem := ud.split_problem(key, ds):
        st.warning(f"Training cannot use this dataset yet: {md_literal(problem)}", icon=":material/warning:")
    else:
        st.caption("The split training will use: stratified, seed 0, 70 / 15 / 15.")

with tabs[1]:
    names = list(ds.class_names)
    if ds.kind == "image":
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        cls = c1.selectbox("Class", range(ds.n_classes), format_func=lambda k: names[k])
        shuffle = st.session_state.setdefault("data_shuffle", 0)
        c2.button("Reshuffle", icon=":material/shuffle:", key="data_reshuffle", on_click=lambda: st.session_state.update(
            data_shuffle=shuffle + 1))
        idx = explore.class_sample_indices(ds.y, cls, 24, seed=shuffle)
        tile = ds.input_shape[:2]
        st.plotly_chart(charts.image_mosaic_figure(explore.mosaic(ds.x[idx], 12), tile=tile, cols=12,
                                                   title=f"Samples of class {names[cls]}"), width="stretch")
        means = ud.cached_mean_images(key, ds)
        per_row = min(10, ds.n_classes)
        st.plotly_chart(charts.image_mosaic_figure(explore.mosaic(means, per_row), tile=tile, cols=per_row,
                                                   titles=names, title="Mean image per class"), width="stretch")
        st.plotly_chart(charts.pixel_histogram_figure(ud.cached_pixel_histogram(key, ds)), width="stretch")
    else:
        st.dataframe(explore.preview_table(ds), height=240)
        st.caption(f"First {min(200, ds.n_samples)} of {ds.n_samples:,} rows. Summary statistics:")
        st.dataframe(ud.cached_describe(key, ds))
        c1, c2 = st.columns([1, 2])
        feature = c1.selectbox("Feature", range(len(ds.feature_names)), format_func=lambda i: ds.feature_names[i])
        c1.caption("Overlapping histograms mean this feature alone cannot tell those classes apart.")
        c2.plotly_chart(charts.feature_histogram_figure(ds.x[:, feature], [names[k] for k in ds.y],
                                                        ds.feature_names[feature], names), width="stretch")
        st.plotly_chart(charts.correlation_figure(ud.cached_correlation(key, ds)), width="stretch")

with tabs[2]:
    method = st.segmented_control("Method", ["PCA", "t-SNE"], default="PCA", required=True, key="data_projection",
                                  help="t-SNE shows local clusters better but takes seconds to a minute.")
    method = (method or "PCA").lower().replace("-", "")
    # Computed in a background thread, once per dataset and method for the whole server; the bar is drawn
    # here, outside any cached function. A click meanwhile stops only this drawing, not the computation.
    task = ud.projection_task(key, ds, method)
    if not task.wait(0.3):
        bar = st.progress(task.fraction, text="Projecting…")
        while not task.wait(0.25):
            bar.progress(task.fraction, text=f"{task.text} · {task.elapsed:.0f} s")
        bar.empty()
    try:
        proj = task.result()
    except DatasetError as exc:
        st.info(md_literal(exc), icon=":material/info:")
        st.stop()
    labels = [ds.class_names[k] for k in ds.y[proj.idx]]
    st.plotly_chart(charts.projection_figure(proj.coords, labels, names, f"{'t-SNE' if method == 'tsne' else 'PCA'}"
                                             f" of {ds.name}"), width="stretch")
    st.caption(proj.note)
