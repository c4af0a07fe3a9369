"""Explore data: choose a dataset (built-in, Keras, or an upload), then look at it before training."""

import streamlit as st

from core import explore, tabular
from core.charts import data as charts
from core.datasets import (
    ALL_DATASETS,
    DEFAULT_DATASET,
    KERAS_DATASETS,
    DatasetError,
    dataset_description,
    describe_source,
    is_cached,
)
from core.i18n import _
from core.uploads import safe_label, upload_kind
from ui import data as ud
from ui.state import ensure_app_entry
from ui.text import md_literal

ensure_app_entry()

SIZES = [1000, 2000, 5000, 10000, 20000, "all"]
st.title(":material/bar_chart: " + _("Explore data"))
uploads = st.session_state.setdefault(ud.UPLOADS, {})
if "data_pick" not in st.session_state:  # widget keys vanish on page change: sync from the real choice
    st.session_state["data_pick"] = st.session_state.get("dataset", DEFAULT_DATASET)
    if st.session_state["data_pick"] in KERAS_DATASETS:
        st.session_state["data_subset"] = st.session_state.get(ud.SUBSET) or "all"


def _label(name: str) -> str:
    if name in uploads:
        return _("{name}  ·  {n} samples").format(name=name, n=f"{uploads[name].n_samples:,}")
    cached = "" if name not in KERAS_DATASETS or is_cached(name) else "  ·  " + _("not downloaded")
    return f"{name}  ·  {dataset_description(name)}{cached}"


def _use_upload(data: bytes, filename: str, options: dict) -> None:
    try:
        if "table" in options:  # a CSV, read once: the user's choices make the dataset
            dataset = ud.add_table(options["table"], options["choices"], data)
        else:
            dataset = ud.add_upload(data, filename, **options)
        st.session_state["data_pick"] = dataset.name
        st.toast(_("Now using {name} on every page").format(name=md_literal(safe_label(filename))),
                 icon=":material/check_circle:")
    except DatasetError as exc:
        st.session_state["_upload_error"] = str(exc)


choices = [*ALL_DATASETS, *uploads]
if st.session_state["data_pick"] not in choices:  # e.g. an upload of a session that has ended
    st.session_state["data_pick"] = DEFAULT_DATASET
left, right = st.columns([3, 1], vertical_alignment="bottom")
pick = left.selectbox(_("Dataset"), choices, format_func=_label, key="data_pick")
subset = None
if pick in KERAS_DATASETS:
    st.session_state.setdefault("data_subset", "all")  # the whole set: its images stay uint8 (memory below)
    size = right.select_slider(_("Subset size (stratified)"), SIZES, key="data_subset",
                               format_func=lambda n: _("all") if n == "all" else str(n),
                               help=_("The whole set by default. A subset is sampled with class proportions kept, "
                                      "for a quicker run on a small machine; its test part is the subset's images "
                                      "from the official test file."))
    subset = None if size == "all" else int(size)

with st.expander(_("Upload your own data: CSV, NPZ or a ZIP of image folders"), icon=":material/upload_file:"):
    st.caption(_("CSV/TSV: one row per sample, a class column (UTF-8, UTF-16 'Unicode text', GB18030/GBK or "
                 "cp1252; separated by , ; tab or |); gaps, IDs, dates and free text are fine: you choose what each "
                 "column is for. NPZ: arrays `x` and `y` (optional `class_names`). ZIP: one folder per class of "
                 "PNG/JPEG images. Files stay in this browser session only."))
    file = st.file_uploader(_("File"), type=["csv", "tsv", "txt", "npz", "zip"], key="data_upload")
    if file is None:
        ud.forget_table()  # a CSV read before is no longer held
    else:
        raw, name, options = file.getvalue(), file.name, {}
        try:
            kind = upload_kind(name)
            ready = True
            if kind == "csv":
                with st.spinner(_("Reading the table…")):
                    info = ud.inspect_upload(raw, name)
                st.caption(_("{rows} rows · {columns} columns · encoding {encoding} · separator {separator}").format(
                    rows=f"{info.n_rows:,}", columns=len(info.columns), encoding=md_literal(info.encoding),
                    separator=md_literal(repr(info.separator))) + "".join(f" · {md_literal(n)}" for n in info.notes))
                st.dataframe(info.preview, height=180)
                st.markdown(_("**Columns**: what each one looks like and what it is for. Change a role in the "
                              "table."))
                choices = ud.render_columns(info, f"{name}|{len(raw)}")
                plan = tabular.plan(info.table, choices)
                ud.render_preparation(plan.summary, plan.problems)
                options = {"table": info, "choices": choices}
                ready = not plan.problems
            elif kind == "zip":
                c1, c2 = st.columns(2)
                options["image_size"] = c1.select_slider(_("Resize images to"), [8, 16, 28, 32, 48, 64], value=32,
                                                         key="data_image_size")
                options["color"] = c2.radio(_("Colour"), ["rgb", "grayscale"], horizontal=True, key="data_color",
                                            format_func=lambda c: _("rgb") if c == "rgb" else _("grayscale"))
            st.button(_("Use {name}").format(name=md_literal(safe_label(name))), icon=":material/check:",
                      type="primary", key="data_use", on_click=_use_upload, args=(raw, name, options),
                      disabled=not ready)
        except DatasetError as exc:
            st.error(md_literal(exc), icon=":material/error:")
    if err := st.session_state.pop("_upload_error", None):
        st.error(md_literal(err), icon=":material/error:")

try:
    ds = ud.select_dataset(pick, subset)
except DatasetError as exc:
    message = st.empty()
    message.error(str(exc), icon=":material/cloud_off:")  # a registry dataset: our text, with its link
    if st.button(_("Try to download it with Keras"), icon=":material/download:", key="data_download"):
        with st.spinner(_("Downloading {name} with Keras…").format(name=md_literal(pick))):
            try:
                ud.download_dataset(pick)
                st.rerun()
            except DatasetError as exc2:
                message.error(str(exc2), icon=":material/cloud_off:")
    st.caption(_("The other pages keep using **{name}**.").format(
        name=md_literal(st.session_state.get("dataset", "digits"))))
    st.stop()

key = ud.dataset_key(ds)
counts = ud.cached_class_counts(key, ds)
sizes = counts.groupby("part", sort=False)["count"].sum()
cols = st.columns(6)
cols[0].metric(_("Samples"), f"{ds.n_samples:,}")
cols[1].metric(_("Classes"), ds.n_classes)
cols[2].metric(_("Input shape"), "x".join(map(str, ds.input_shape)))
for col, (part, n) in zip(cols[3:], sizes.items(), strict=False):
    col.metric(charts.part_label(part).capitalize(), f"{int(n):,}")
st.caption(":material/info: " + _("{source}. Every page now uses this dataset.").format(
    source=md_literal(describe_source(ds))))
st.caption(f":material/memory: {md_literal(ud.memory_text(ds))}")
if ds.table is not None:
    with st.expander(_("How this table was prepared"), icon=":material/table_chart:"):
        ud.render_preparation(ds.table.summary)
        st.caption(_("Each training run fits the fill-in values, the categories and the scaling on its own training "
                     "part; the values shown in Features are filled in with all rows, not standardised."))

tabs = st.tabs([_("Class balance"), _("Images") if ds.kind == "image" else _("Features"), _("2-D projection")])
with tabs[0]:
    st.plotly_chart(charts.class_balance_figure(counts), width="stretch")
    if problem := ud.split_problem(key, ds):
        st.warning(_("Training cannot use this dataset yet: {reason}").format(reason=md_literal(problem)),
                   icon=":material/warning:")
    else:
        st.caption(md_literal(ud.split_text(ds)))

with tabs[1]:
    names = list(ds.class_names)
    if ds.kind == "image":
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        cls = c1.selectbox(_("Class"), range(ds.n_classes), format_func=lambda k: names[k],
                           key=f"data_class|{key}")  # one per dataset: another's choice never shows here
        shuffle = st.session_state.setdefault("data_shuffle", 0)
        c2.button(_("Reshuffle"), icon=":material/shuffle:", key="data_reshuffle",
                  on_click=lambda: st.session_state.update(data_shuffle=shuffle + 1))
        idx = explore.class_sample_indices(ds.y, cls, 24, seed=shuffle)
        tile = ds.input_shape[:2]
        st.plotly_chart(charts.image_mosaic_figure(explore.mosaic(ds.x[idx], 12), tile=tile, cols=12,
                                                   title=_("Samples of class {name}").format(name=names[cls])),
                        width="stretch")
        means = ud.cached_mean_images(key, ds)
        per_row = min(10, ds.n_classes)
        st.plotly_chart(charts.image_mosaic_figure(explore.mosaic(means, per_row), tile=tile, cols=per_row,
                                                   titles=names, title=_("Mean image per class")), width="stretch")
        st.plotly_chart(charts.pixel_histogram_figure(ud.cached_pixel_histogram(key, ds)), width="stretch")
    else:
        st.dataframe(explore.preview_table(ds), height=240)
        st.caption(_("First {n} of {total} rows. Summary statistics:").format(n=min(200, ds.n_samples),
                                                                              total=f"{ds.n_samples:,}"))
        st.dataframe(ud.cached_describe(key, ds).rename(columns=ud.describe_columns()))
        c1, c2 = st.columns([1, 2])
        feature = c1.selectbox(_("Feature"), range(len(ds.feature_names)), format_func=lambda i: ds.feature_names[i],
                               key=f"data_feature|{key}")
        c1.caption(_("Overlapping histograms mean this feature alone cannot tell those classes apart."))
        c2.plotly_chart(charts.feature_histogram_figure(ds.x[:, feature], [names[k] for k in ds.y],
                                                        ds.feature_names[feature], names), width="stretch")
        st.plotly_chart(charts.correlation_figure(ud.cached_correlation(key, ds)), width="stretch")

with tabs[2]:
    method = st.segmented_control(_("Method"), ["PCA", "t-SNE"], default="PCA", required=True, key="data_projection",
                                  help=_("t-SNE shows local clusters better but takes seconds to a minute."))
    method = (method or "PCA").lower().replace("-", "")
    # Computed in a background thread, once per dataset and method for the whole server; the bar is drawn
    # here, outside any cached function. A click meanwhile stops only this drawing, not the computation.
    task = ud.projection_task(key, ds, method)
    if not task.wait(0.3):
        bar = st.progress(task.fraction, text=_("Projecting…"))
        while not task.wait(0.25):
            bar.progress(task.fraction, text=f"{task.text} · {task.elapsed:.0f} s")
        bar.empty()
    try:
        proj = task.result()
    except DatasetError as exc:
        st.info(md_literal(exc), icon=":material/info:")
        st.stop()
    labels = [ds.class_names[k] for k in ds.y[proj.idx]]
    title = _("{method} of {name}").format(method="t-SNE" if method == "tsne" else "PCA", name=ds.name)
    st.plotly_chart(charts.projection_figure(proj.coords, labels, names, title), width="stretch")
    st.caption(proj.note)
