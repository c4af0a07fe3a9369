"""The session's model spec (shared with the Train page), the Model page's layer editor widgets and its
augmentation preview.

The spec lives in st.session_state["model_spec"], a plain (non-widget) key, so it survives page changes.
Editor widgets are keyed by a stable id per layer (not its position), so moving or deleting a layer
never hands one layer's settings to another.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace
from typing import Any

import streamlit as st

from core.augment_preview import AugmentPreview, augment_preview, augmentation_layers, flip_warning
from core.charts.augment import augment_grid_figure
from core.i18n import LANGUAGES, _, language, language_of
from core.models import ModelSummary, layer_position, model_summary
from core.settings import MAX_SPEC_JSON_BYTES
from core.specs import (
    LAYER_TYPES,
    LayerSpec,
    ModelSpec,
    Param,
    SpecAnalysis,
    SpecError,
    available_presets,
    default_preset_name,
    describe_layer,
    make_layer,
    preset,
    setting_label,
    validate_spec,
)
from ui.data import dataset_key
from ui.learn import render_activation_curves
from ui.text import md_literal

__all__ = ["SPEC_KEY", "augmentation_preview", "cached_summary", "current_spec", "editing_spec", "layer_editor",
           "preset_base", "set_spec", "spec_notes", "spec_problem", "spec_uploader", "summary_table"]

SPEC_KEY = "model_spec"
_IDS_KEY = "model_spec_ids"  # one stable id per layer, parallel to the spec's layers
_UPLOAD_KEY = "model_spec_upload_result"  # (level, message) of the last upload
_DATA_KEY = "model_spec_data"  # (name, input shape, classes, kind) the spec was last edited for
_REPLACED_KEY = "model_spec_replaced"  # why the default preset replaced the user's spec
_ids = itertools.count(1)


def _fits(spec: Any, dataset: Any) -> bool:
    return isinstance(spec, ModelSpec) and not validate_spec(
        spec, dataset.input_shape, dataset.n_classes, dataset.kind)


def _data_key(dataset: Any) -> tuple:
    return (dataset.name, tuple(dataset.input_shape), dataset.n_classes, dataset.kind)


def current_spec(dataset: Any) -> ModelSpec:
    """The spec to train: the session's if it fits this dataset, else the dataset's default preset."""
    spec = st.session_state.get(SPEC_KEY)
    if _fits(spec, dataset):
        return spec
    return preset(default_preset_name(dataset), dataset)


def spec_problem(dataset: Any) -> str | None:
    """Why the session's spec is not what current_spec returns (None when it is, or when there is none)."""
    spec = st.session_state.get(SPEC_KEY)
    if not isinstance(spec, ModelSpec) or _fits(spec, dataset):
        return None
    errors = validate_spec(spec, dataset.input_shape, dataset.n_classes, dataset.kind)
    default = preset(default_preset_name(dataset), dataset).name
    if st.session_state.get(_DATA_KEY) == _data_key(dataset):
        return _("The model on the Model page cannot be built: {problem} Fix it there; until then “{default}” is "
                 "used.").format(problem=errors[0], default=default)
    return _("Your model “{name}” does not fit {dataset}: {problem}").format(name=spec.name, dataset=dataset.name,
                                                                           problem=errors[0])


def editing_spec(dataset: Any) -> ModelSpec:
    """The spec the Model page edits: the session's, even while broken, unless it was made for other data.

    When the dataset changed and the spec does not fit it, the default preset replaces it and
    st.session_state["model_spec_replaced"] says why (shown until the next edit).
    """
    spec = st.session_state.get(SPEC_KEY)
    if isinstance(spec, ModelSpec) and (st.session_state.get(_DATA_KEY) == _data_key(dataset)
                                        or _fits(spec, dataset)):
        st.session_state[_DATA_KEY] = _data_key(dataset)
        return spec
    problem = spec_problem(dataset)
    spec = preset(default_preset_name(dataset), dataset)
    set_spec(spec)
    st.session_state[_DATA_KEY] = _data_key(dataset)
    if problem:
        st.session_state[_REPLACED_KEY] = _("{problem} The default “{name}” replaces it.").format(
            problem=problem, name=spec.name)
    return spec


def preset_base(spec: ModelSpec) -> str:
    """The name of the preset a spec was made from, if it was: "Article CNN (adapted) (edited)" -> "Article CNN"."""
    return spec.name.removesuffix(" (edited)").removesuffix(" (adapted)")


def spec_notes(spec: ModelSpec, dataset: Any) -> tuple[str, ...]:
    """The spec's notes; a preset's own notes in the visitor's language, though they were written in the
    language of the run that made the preset (the visitor may have switched language since)."""
    base = preset_base(spec)
    if not spec.notes or base not in available_presets(dataset):
        return spec.notes
    try:
        for code in LANGUAGES:
            with language_of(code):
                written_in_code = preset(base, dataset).notes == spec.notes
            if written_in_code:
                return preset(base, dataset).notes
    except SpecError:  # the preset does not fit this data: the notes cannot be its own
        pass
    return spec.notes


def set_spec(spec: ModelSpec) -> None:
    """Replace the session's spec (preset, upload): every layer gets a fresh widget id."""
    st.session_state[SPEC_KEY] = spec
    st.session_state[_IDS_KEY] = [next(_ids) for _ in spec.layers]
    st.session_state.pop(_REPLACED_KEY, None)


def _layer_ids(spec: ModelSpec) -> list[int]:
    ids = st.session_state.get(_IDS_KEY)
    if not isinstance(ids, list) or len(ids) != len(spec.layers):
        ids = [next(_ids) for _ in spec.layers]
        st.session_state[_IDS_KEY] = ids
    return ids


def _edited(spec: ModelSpec, layers: list[LayerSpec], ids: list[int]) -> None:
    name = spec.name if spec.name == "custom" or spec.name.endswith("(edited)") else f"{spec.name} (edited)"
    st.session_state[SPEC_KEY] = ModelSpec(tuple(layers), name, spec.notes)
    st.session_state[_IDS_KEY] = ids
    st.session_state.pop(_REPLACED_KEY, None)


def _move(uid: int, step: int) -> None:
    spec = st.session_state[SPEC_KEY]
    ids, layers = list(st.session_state[_IDS_KEY]), list(spec.layers)
    i, j = ids.index(uid), ids.index(uid) + step
    if 0 <= j < len(ids):
        ids[i], ids[j], layers[i], layers[j] = ids[j], ids[i], layers[j], layers[i]
        _edited(spec, layers, ids)


def _delete(uid: int) -> None:
    spec = st.session_state[SPEC_KEY]
    ids, layers = list(st.session_state[_IDS_KEY]), list(spec.layers)
    k = ids.index(uid)
    del ids[k], layers[k]
    _edited(spec, layers, ids)


def _set_param(uid: int, name: str) -> None:
    spec = st.session_state[SPEC_KEY]
    ids, layers = list(st.session_state[_IDS_KEY]), list(spec.layers)
    k = ids.index(uid)
    value, setting = st.session_state[f"layer_{uid}_{name}"], LAYER_TYPES[layers[k].type][name]
    if setting.kind == "choice" and value not in setting.choices:
        # The label of an untouched choice that the browser kept from before a language switch: Streamlit hands it
        # over as text and puts the widget back on the layer's own value.
        return
    params = {**layers[k].params, name: value}
    layers[k] = make_layer(layers[k].type, _("layer {index}").format(index=k + 1), **params)
    _edited(spec, layers, ids)


def _param_widget(uid: int, name: str, p: Param, value: Any) -> None:
    # value= (not a pre-set session value): widgets in a closed popover are mounted lazily by the browser
    # and would otherwise start from their default and fire on_change with it.
    common = {"key": f"layer_{uid}_{name}", "help": p.help(), "on_change": _set_param, "args": (uid, name)}
    label = setting_label(name)
    if p.kind == "bool":
        st.toggle(label, value=value, **common)
    elif p.kind == "choice":
        st.selectbox(label, list(p.choices), index=list(p.choices).index(value), format_func=p.label, **common)
    elif p.kind == "int":
        st.number_input(label, min_value=int(p.low), max_value=int(p.high), value=int(value), step=1, **common)
    else:
        small = name in ("l1", "l2")
        st.number_input(label, min_value=float(p.low), max_value=float(p.high), value=float(value),
                        step=1e-4 if small else 0.05, format="%.4f" if small else "%.2f", **common)


def _position_text(i: int, n: int) -> str:
    """Where a new layer goes, in words: before layer i+1 of n."""
    if i == n:
        return _("at the end (before the head)")
    return _("at the start") if i == 0 else _("after layer {index}").format(index=i)


def layer_editor(spec: ModelSpec, analysis: SpecAnalysis, kind_types: list[str]) -> None:
    """One row per layer: what it does and its output shape, a settings popover, up / down / delete."""
    ids = _layer_ids(spec)
    failed = set(analysis.failed)
    for k, (uid, layer, row) in enumerate(zip(ids, spec.layers, analysis.rows, strict=False)):
        cols = st.columns([0.35, 3.2, 1.4, 1.3, 0.45, 0.45, 0.45, 0.45], vertical_alignment="center")
        icon = ":red[:material/error:]" if k + 1 in failed else f"**{k + 1}**"
        cols[0].markdown(icon)
        cols[1].markdown(f"**{layer.type}** &nbsp; {describe_layer(make_layer(layer.type, **layer.params))}")
        cols[2].markdown(f"`{'x'.join(map(str, row.output_shape))}`" if row.output_shape else "—")
        cols[3].caption(_("{n} params").format(n=f"{row.params:,}") if row.params else "")
        schema = LAYER_TYPES[layer.type]
        with cols[4].popover("", icon=":material/tune:", key=f"pop_{uid}", help=_("Settings"), disabled=not schema):
            for name, p in schema.items():
                _param_widget(uid, name, p, layer.params[name])
                if name == "activation":
                    render_activation_curves(f"layer_{uid}_activation_curves")
        cols[5].button("", icon=":material/arrow_upward:", key=f"up_{uid}", help=_("Move up"),
                       on_click=_move, args=(uid, -1), disabled=k == 0)
        cols[6].button("", icon=":material/arrow_downward:", key=f"down_{uid}", help=_("Move down"),
                       on_click=_move, args=(uid, 1), disabled=k == len(ids) - 1)
        cols[7].button("", icon=":material/delete:", key=f"del_{uid}", help=_("Delete layer"),
                       on_click=_delete, args=(uid,), disabled=len(ids) == 1)
    head = analysis.rows[-1]
    cols = st.columns([0.35, 3.2, 1.4, 1.3, 1.8], vertical_alignment="center")
    cols[0].markdown(":material/flag:")
    cols[1].markdown(_("**Dense** &nbsp; {settings} — the classifier head, always added").format(settings=head.label))
    cols[2].markdown(f"`{head.output_shape[0]}`" if head.output_shape else "—")
    cols[3].caption(_("{n} params").format(n=f"{head.params:,}") if head.params else "")

    add = st.columns([2, 2, 1], vertical_alignment="bottom")
    new_type = add[0].selectbox(_("Add a layer"), kind_types, index=kind_types.index("Dropout"), key="add_layer_type")
    n = len(spec.layers)
    # Keyed by the layer count, so it goes back to "at the end" once a layer is added or deleted, and by the language:
    # the browser would keep showing (and send back) an option's words from before a language switch.
    where = add[1].selectbox(_("Position"), list(range(n, -1, -1)), key=f"add_layer_position_{n}_{language()}",
                             format_func=lambda i: _position_text(i, n))
    if add[2].button(_("Add"), icon=":material/add:", width="stretch"):
        ids, layers = list(ids), list(spec.layers)
        layers.insert(where, make_layer(new_type))
        ids.insert(where, next(_ids))
        _edited(spec, layers, ids)
        st.rerun()


def cached_summary(spec_json: str, name: str, input_shape: tuple[int, ...], n_classes: int,
                   kind: str) -> ModelSummary:
    """Keras' exact summary, cached by what it depends on (the spec and the data's shape) and by the language
    its notes and settings are written in."""
    with st.spinner(_("Building the model with Keras…")):
        return _cached_summary(spec_json, name, tuple(input_shape), n_classes, kind, language())


@st.cache_data(max_entries=32, show_spinner=False)
def _cached_summary(spec_json: str, name: str, input_shape: tuple[int, ...], n_classes: int, kind: str,
                    lang: str) -> ModelSummary:
    """`lang` only keys the cache: the summary's texts come in the thread's language, which it names."""
    shape_only = SimpleNamespace(name=name, input_shape=input_shape, n_classes=n_classes, kind=kind)
    return model_summary(ModelSpec.from_json(spec_json), shape_only)


def summary_table(summary: ModelSummary) -> tuple[list[dict], dict[str, Any]]:
    """The summary's rows as the page's table shows them (positions in words) and its columns, in order,
    with their headings."""
    rows = [{**row, "layer": layer_position(row["layer"])} for row in summary.rows]
    columns = {"layer": st.column_config.TextColumn(_("layer")), "type": st.column_config.TextColumn(_("type")),
               "output shape": st.column_config.TextColumn(_("output shape")),
               "params": st.column_config.NumberColumn(_("params"), format="localized"),
               "trainable": st.column_config.NumberColumn(_("trainable params"), format="localized")}
    return rows, columns


@st.cache_data(max_entries=16, show_spinner=False)
def _cached_augment_preview(augmentation_json: str, key: str, _dataset: Any, seed: int) -> AugmentPreview:
    """The preview, cached by the augmentation layers, the data (key) and the seed: other layers do not
    change it."""
    return augment_preview(ModelSpec.from_json(augmentation_json), _dataset, seed=seed)


def augmentation_preview(spec: ModelSpec, dataset: Any) -> None:
    """Samples of the data and what the spec's own augmentation layers make of them, with a seed."""
    st.subheader(_("What augmentation does to your images"))
    layers = augmentation_layers(spec)
    if not layers:
        st.info(_("“{name}” has no augmentation layer, so every epoch shows the model exactly the same images. Add "
                  "one with **Add a layer** above, at the start: RandomRotation, RandomZoom or RandomTranslation "
                  "(RandomFlip for photos, not for digits or letters). Its effect on your images is then shown "
                  "here.").format(name=md_literal(spec.name)), icon=":material/info:")
        return
    cols = st.columns([1, 3], vertical_alignment="bottom")
    seed = cols[0].number_input(_("Augmentation seed"), min_value=0, max_value=999_999, value=0, step=1,
                                key="augment_seed", help=_("The same seed gives the same pictures; change it (or "
                                                           "click + / −) for new random draws."))
    steps = ", ".join(f"{layer.type} {describe_layer(layer)}" for layer in layers)
    cols[1].caption(_("Samples of **{name}** (left) and random versions of them made by this model's own "
                      "augmentation layers ({steps}), as training sees them. Each epoch draws new versions.").format(
                          name=md_literal(dataset.name), steps=steps))
    warning = flip_warning(spec, dataset)
    if warning:
        st.warning(warning, icon=":material/flip:")
    with st.spinner(_("Augmenting sample images with Keras…")):
        preview = _cached_augment_preview(ModelSpec(layers, "augmentation").to_json(), dataset_key(dataset),
                                          dataset, int(seed))
    st.plotly_chart(augment_grid_figure(preview.originals, preview.augmented, preview.labels, preview.seed),
                    width="content", config={"displayModeBar": False})


def _on_upload(dataset: Any) -> None:
    """Runs before the script: apply the uploaded spec, or keep the message saying why not."""
    uploaded = st.session_state.get("model_spec_file")
    if uploaded is None:
        st.session_state.pop(_UPLOAD_KEY, None)
        return
    try:
        if uploaded.size > MAX_SPEC_JSON_BYTES:
            raise SpecError(_("spec file is {size} bytes; at most {limit} allowed").format(
                size=f"{uploaded.size:,}", limit=f"{MAX_SPEC_JSON_BYTES:,}"))
        spec = ModelSpec.from_json(uploaded.getvalue())
        errors = validate_spec(spec, dataset.input_shape, dataset.n_classes, dataset.kind)
        if errors:
            raise SpecError(_("the spec “{name}” does not fit {dataset}: {problems}").format(
                name=spec.name, dataset=dataset.name, problems=" ".join(errors)))
        set_spec(spec)
        st.session_state[_UPLOAD_KEY] = ("success", _("Loaded “{name}” ({n} layers).").format(
            name=spec.name, n=len(spec.layers)))
    except SpecError as exc:
        st.session_state[_UPLOAD_KEY] = ("error", _("Spec not loaded: {reason}").format(reason=exc))


def spec_uploader(dataset: Any) -> None:
    """Load a saved spec (.json): untrusted, so size-capped and checked before it replaces the model."""
    st.file_uploader(_("Load a model spec (.json)"), type=["json"], key="model_spec_file",
                     on_change=_on_upload, args=(dataset,), help=_("A file saved with “Model spec (.json)”"))
    result = st.session_state.get(_UPLOAD_KEY)
    if result and st.session_state.get("model_spec_file") is not None:
        if result[0] == "success":
            st.success(md_literal(result[1]), icon=":material/check_circle:")
        else:
            st.error(md_literal(result[1]), icon=":material/block:")
