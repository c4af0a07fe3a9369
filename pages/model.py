"""Build a model: presets, a layer editor with live shape checks, an augmentation preview, the Keras summary,
a diagram, export."""

import streamlit as st

from core.charts.model import architecture_figure
from core.i18n import _
from core.models import export_code, export_file_stem
from core.specs import SpecError, analyse_spec, available_presets, layer_types_for, preset, preset_caption
from ui.data import current_dataset
from ui.model import (
    augmentation_preview,
    cached_summary,
    editing_spec,
    layer_editor,
    preset_base,
    set_spec,
    spec_notes,
    spec_uploader,
    summary_table,
)
from ui.state import ensure_app_entry
from ui.text import md_literal

ensure_app_entry()

st.title(":material/view_in_ar: " + _("Build a model"))
dataset = current_dataset()
shape = "x".join(map(str, dataset.input_shape))
kind = {"image": _("image"), "tabular": _("tabular")}.get(dataset.kind, dataset.kind)
st.caption(_("Dataset **{name}**: {kind}, input {shape}, {n} classes. The model is handed to the Train page as you "
             "build it.").format(name=md_literal(dataset.name), kind=kind, shape=shape, n=dataset.n_classes))

spec = editing_spec(dataset)
if "model_spec_replaced" in st.session_state:
    st.warning(md_literal(st.session_state["model_spec_replaced"]), icon=":material/swap_horiz:")

names = available_presets(dataset)
cols = st.columns([3, 1], vertical_alignment="bottom")
base = preset_base(spec)
index = names.index(base) if base in names else 0
# Keyed by the spec's own preset, so the choice follows a new spec (a preset, an upload) as it did unkeyed.
choice = cols[0].selectbox(_("Start from a preset"), names, index=index, key=f"model_preset_{dataset.kind}_{index}",
                           help=_("Replaces the layers below."))
if cols[1].button(_("Use preset"), icon=":material/auto_awesome:", width="stretch"):
    try:
        set_spec(preset(choice, dataset))
        st.rerun()
    except SpecError as exc:
        st.error(md_literal(exc))
st.caption(md_literal(preset_caption(choice, dataset)))  # names the dataset, which may come from an upload
if dataset.kind != "image":
    st.caption(":material/info: " + _(
        "**{name}** is tabular (one row of numbers per sample), so only dense layers and the MLP preset are "
        "offered: convolution, pooling, augmentation and the CNN presets need images. Pick an image dataset "
        "(digits, an NPZ of images, a ZIP of image folders) for them.").format(name=md_literal(dataset.name)))

analysis = analyse_spec(spec, dataset.input_shape, dataset.n_classes, dataset.kind)
st.subheader(_("Layers of “{name}”").format(name=md_literal(spec.name)))
for note in spec_notes(spec, dataset):
    st.info(md_literal(note), icon=":material/info:")
layer_editor(spec, analysis, layer_types_for(dataset.kind))
for error in analysis.errors:  # our words about validated layers: no user text
    st.error(error, icon=":material/error:")
for warning in analysis.warnings:
    st.warning(warning, icon=":material/warning:")
if dataset.kind == "image":
    augmentation_preview(spec, dataset)

if analysis.ok:
    try:
        summary = cached_summary(spec.to_json(), dataset.name, dataset.input_shape, dataset.n_classes,
                                 dataset.kind)
    except SpecError as exc:
        st.error(md_literal(exc))
        st.stop()
    st.subheader(_("What you built"))
    m = st.columns(4)
    m[0].metric(_("Parameters"), f"{summary.total_params:,}")
    m[1].metric(_("Trainable"), f"{summary.trainable_params:,}",
                help=_("{n} non-trainable (BatchNorm statistics, frozen layers)").format(
                    n=f"{summary.non_trainable_params:,}"))
    flops = f"{summary.flops / 1e6:,.2f} M" if summary.flops >= 100_000 else f"{summary.flops:,}"
    m[2].metric(_("FLOPs per example"), flops, help=_("Forward pass, 2 per multiply-add"))
    m[3].metric(_("Weight memory"), f"{summary.weight_bytes / 1024:,.1f} KiB", help=_("float32 weights"))
    for note in summary.notes:
        if note in summary.warnings:
            st.warning(note, icon=":material/cloud_off:")
        else:
            st.success(note, icon=":material/cloud_done:")
    left, right = st.columns([11, 9])
    rows, columns = summary_table(summary)
    left.dataframe(rows, hide_index=True, width="stretch", column_order=tuple(columns), column_config=columns)
    right.plotly_chart(architecture_figure(summary.rows, dataset.input_shape), config={"displayModeBar": False})

    st.subheader(_("Export"))
    code = export_code(spec, dataset)
    file_stem = export_file_stem(spec.name)
    c = st.columns(2)
    c[0].download_button(_("Keras script (.py)"), code, file_name=f"{file_stem}_{dataset.name}.py",
                         mime="text/x-python", icon=":material/code:", width="stretch")
    c[1].download_button(_("Model spec (.json)"), spec.to_json(), file_name=f"{file_stem}.json",
                         mime="application/json", icon=":material/download:", width="stretch")
    with st.expander(_("Python code that rebuilds this model"), icon=":material/code:"):
        st.code(code, language="python")

spec_uploader(dataset)
