"""User text is text on every page: hostile file, column, feature, class, spec and run names under AppTest.

One visitor's upload names classes `![x](http://evil.example/x.png)`; another visitor's Evaluate page must
show those characters, not fetch the image. Each test renders a page with such names (through a real CSV
upload, a real spec, runs in the real format) and checks every element the page sent: text that Streamlit
renders as Markdown carries no raw hostile markup and does carry the escaped name; plotly figures carry
HTML-escaped names; selectboxes, multiselects and tables (which Streamlit shows literally) carry them as is.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.compare import run_label
from core.jobs import TrainRequest, run_config
from core.runs import RunStore
from core.specs import default_preset_name, preset
from core.text import LABEL_CHARS, plain
from core.training import TrainConfig
from core.uploads import UploadLimits, read_csv
from tests.core.test_evaluation import fake_probs
from ui.text import md_literal

APP = str(Path(__file__).resolve().parents[2] / "app.py")

LONGEST = getattr(UploadLimits(), "max_label_chars", 5000)  # the longest column or class name uploads accept
CLASSES = ["![x](http://evil.example/x.png)", "[click](http://evil.example)",
           "<img src=http://evil.example/y>", "$\\frac{1}{2}$", "L" * LONGEST]
FEATURES = ["<script>alert(1)</script>", ":red[x]", "**bold**", "class", "true", "f" * LONGEST]
TARGET = "**target** $y$"
FILENAME = "![f](http://evil.example/f.png).csv"
SPEC_NAME = "![s](http://evil.example/s.png) <b>$x$</b> :red[s]"
NOTES = ("<img src=http://evil.example/n>", "[note](http://evil.example/n)", "$\\sqrt{2}$")
LABEL = "[run](http://evil.example/r) <img src=http://evil.example/r.png> $r$"
MESSAGE = "failed: ![m](http://evil.example/m.png) **m**"

# Substrings that only hostile text brings: none may reach a Markdown-rendering element unescaped.
NEEDLES = ("](http", "<img", "<script", "<b>", "$\\frac", "$\\sqrt", "$x$", "$y$", "$r$", ":red[", "**bold**",
           "**target**", "**m**")
# Elements Streamlit shows literally: only their label and tooltip are Markdown.
LITERAL = {"selectbox", "multiselect", "dataframe", "arrow_data_frame", "code", "text", "text_input",
           "text_area", "json", "plotly_chart"}


# ---- hostile data in its real formats ------------------------------------------------------------

def hostile_csv(rows_per_class: int = 16, features: list[str] = FEATURES) -> bytes:
    """A CSV with hostile column names and hostile class names in the target column."""
    rng = np.random.default_rng(0)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*features, TARGET])
    for k, name in enumerate(CLASSES):
        for _ in range(rows_per_class):
            writer.writerow([f"{v:.4f}" for v in rng.normal(k, 1.0, len(features))] + [name])
    return out.getvalue().encode("utf-8")


def hostile_dataset():
    return read_csv(hostile_csv(), FILENAME, TARGET)


def hostile_spec(dataset):
    return replace(preset(default_preset_name(dataset), dataset), name=SPEC_NAME, notes=NOTES)


def write_hostile_run(store: RunStore, dataset, *, learning_rate: float = 1e-3, accuracy: float = 0.7,
                      state: str = "completed", message: str = "3 epochs") -> str:
    """A finished run of `dataset` in the real format (config.json from core.jobs.run_config)."""
    from core.datasets import split_dataset

    settings = TrainConfig(epochs=3, learning_rate=learning_rate)
    config = run_config(TrainRequest(dataset, hostile_spec(dataset), settings, label=LABEL))
    run_id = store.create_run(config)
    for e in range(1, 4):
        store.append_metrics(run_id, {"kind": "epoch", "epoch": e, "loss": 1.5 / e, "accuracy": 0.4 + 0.1 * e,
                                      "val_loss": 1.6 / e, "val_accuracy": 0.35 + 0.1 * e, "lr": learning_rate})
    test_idx = split_dataset(dataset, seed=0).test_idx
    y_true = dataset.y[test_idx]
    store.save_predictions(run_id, probs=fake_probs(y_true, dataset.n_classes, accuracy, int(learning_rate * 1e4)),
                           y_true=y_true, test_idx=test_idx, test_loss=np.float32(0.9),
                           test_accuracy=np.float32(accuracy))
    store.write_status(run_id, state, message)
    return run_id


# ---- what the page sent ------------------------------------------------------------------------

def _strings(message: Any, prefix: str = ""):
    """(field path, text) for every string field of a protobuf message, nested ones included."""
    for field, value in message.ListFields():
        name = f"{prefix}{field.name}"
        single = isinstance(value, str | bytes | int | float) or hasattr(value, "ListFields")
        values = [value] if single else list(value)
        for v in values:
            if isinstance(v, str):
                yield name, v
            elif hasattr(v, "ListFields"):
                yield from _strings(v, f"{name}.")


def _nodes(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _nodes(child)


def _figure_strings(spec: str):
    def walk(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from walk(v)
        elif isinstance(value, list):
            for v in value:
                yield from walk(v)
    return list(walk(json.loads(spec)))


def rendered(at: AppTest) -> dict[str, list[str]]:
    """Every text the page sent, by how the browser treats it: 'markdown', 'literal' or 'plotly'."""
    out: dict[str, list[str]] = {"markdown": [], "literal": [], "plotly": []}
    for node in _nodes(at._tree):
        proto = getattr(node, "proto", None)
        if proto is None or not hasattr(proto, "ListFields"):
            continue
        kind = getattr(node, "type", "")
        for field, text in _strings(proto):
            if kind == "plotly_chart" and field == "spec":
                out["plotly"] += _figure_strings(text)
            elif kind in LITERAL and field not in ("label", "help"):
                out["literal"].append(text)
            else:
                out["markdown"].append(text)
    return out


def assert_shown_as_text(at: AppTest) -> dict[str, list[str]]:
    """No exception, and no hostile markup left where the browser would interpret it."""
    assert not at.exception, at.exception
    texts = rendered(at)
    for text in texts["markdown"]:
        active = re.sub(r"\\[!-/:-@\[-`{-~]", "\0", text)  # what is left once escaped characters are out
        for needle in NEEDLES:
            assert needle not in active, f"unescaped {needle!r} in Markdown: {text[:300]!r}"
    for text in texts["plotly"]:
        for needle in ("<img", "<script", "<a ", "$"):
            assert needle not in text, f"unescaped {needle!r} in a plotly figure: {text[:300]!r}"
    return texts


def _contains(texts: list[str], part: str) -> bool:
    return any(part in t for t in texts)


def _app(page: str, **state: Any) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    at.switch_page(page).run()
    return at


# ---- the pages ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_data_page_upload_with_hostile_names(clean_streamlit_caches):
    at = _app("pages/data.py")
    at.file_uploader(key="data_upload").set_value((FILENAME, hostile_csv(), "text/csv")).run()
    assert_shown_as_text(at)
    assert at.selectbox(key="data_target").options == [*FEATURES, TARGET]  # literal widget: as typed
    assert list(at.dataframe[0].value.columns) == [*FEATURES, TARGET]  # the file's preview table
    at.selectbox(key="data_target").set_value(TARGET)
    at.button(key="data_use").click().run()
    texts = assert_shown_as_text(at)
    ds = hostile_dataset()
    assert at.session_state["dataset"] == ds.name
    assert _contains(texts["markdown"], md_literal(ds.source))  # names the target column, escaped
    feature = next(s for s in at.selectbox if s.label == "Feature")
    assert feature.options == [*FEATURES]
    for name in CLASSES:  # class balance, histogram and projection legends (long names shortened)
        assert _contains(texts["plotly"], plain(name, LABEL_CHARS))
    for name in FEATURES:  # correlation axes, histogram title
        assert _contains(texts["plotly"], plain(name, LABEL_CHARS))
    preview = next(d.value for d in at.dataframe if d.value.columns[0] == "class")  # the Features tab
    assert list(preview.columns) == ["class", *[f"{f} (2)" if f == "class" else f for f in FEATURES]]
    assert set(preview["class"]) <= set(CLASSES)


@pytest.mark.slow
def test_data_page_with_a_5000_character_column_name(clean_streamlit_caches):
    """Accepted or refused by the upload caps, a very long hostile name never breaks the page."""
    long_name = ("![x](http://evil.example/x.png) " * 200)[:5000]
    at = _app("pages/data.py")
    at.file_uploader(key="data_upload").set_value(("long.csv", hostile_csv(features=["a", long_name]), "text/csv"))
    at.run()
    assert_shown_as_text(at)
    if not at.error:
        at.button(key="data_use").click().run()
        texts = assert_shown_as_text(at)
        assert _contains(texts["plotly"], plain(long_name, LABEL_CHARS))


@pytest.mark.slow
def test_model_and_train_pages_show_a_hostile_spec_and_run(clean_streamlit_caches):
    ds = hostile_dataset()
    spec = hostile_spec(ds)
    run_id = write_hostile_run(RunStore(), ds, state="failed", message=MESSAGE)
    at = _app("pages/model.py", uploads={ds.name: ds}, dataset=ds.name)
    at.file_uploader(key="model_spec_file").set_value(("spec.json", spec.to_json().encode(), "application/json"))
    at.run()
    texts = assert_shown_as_text(at)
    assert at.session_state["model_spec"].name == SPEC_NAME
    assert _contains(texts["markdown"], md_literal(SPEC_NAME))  # the heading and the "Loaded …" message
    for note in NOTES:
        assert _contains(texts["markdown"], md_literal(note))
    assert _contains(texts["markdown"], md_literal(ds.name))

    at.session_state["train_run_id"] = run_id
    at.switch_page("pages/train.py").run()
    texts = assert_shown_as_text(at)
    assert _contains(texts["markdown"], md_literal(SPEC_NAME))
    assert _contains(texts["markdown"], md_literal(MESSAGE))


@pytest.mark.slow
def test_evaluate_page_shows_hostile_class_and_feature_names(clean_streamlit_caches):
    ds = hostile_dataset()
    store = RunStore()
    run_id = write_hostile_run(store, ds)
    at = _app("pages/evaluate.py", uploads={ds.name: ds}, dataset=ds.name)
    texts = assert_shown_as_text(at)
    assert at.selectbox(key="eval_run").value == run_id
    options = at.selectbox(key=f"ev_{run_id}_true").options
    assert options == list(ds.class_names) and set(options) == set(CLASSES)  # literal widget: as typed
    for name in CLASSES:  # confusion matrix axes and ROC / PR legends, whole in the hover text
        assert _contains(texts["plotly"], plain(name, LABEL_CHARS))
        assert _contains(texts["plotly"], f"true {plain(name)} → predicted")
    true_name = at.selectbox(key=f"ev_{run_id}_true").value
    assert _contains([s.value for s in at.subheader], f"True {md_literal(true_name)} → predicted")
    tables = [d.value for d in at.dataframe if "predicted" in d.value.columns]  # the cell's and mistakes' rows
    assert tables
    for table in tables:  # the features named "true" and "class" keep a column of their own
        assert list(table.columns) == ["row", "true", "predicted", "probability",
                                       *[f"{f} (2)" if f == "true" else f for f in FEATURES]]

    for true_name, pred_name in ((CLASSES[0], CLASSES[4]), (CLASSES[3], CLASSES[2])):
        at.selectbox(key=f"ev_{run_id}_true").set_value(true_name)
        at.selectbox(key=f"ev_{run_id}_pred").set_value(pred_name)
        at.run()
        assert_shown_as_text(at)
        heading = f"True {md_literal(true_name)} → predicted {md_literal(pred_name)}"
        assert _contains([s.value for s in at.subheader], heading)


@pytest.mark.slow
def test_runs_page_lists_and_compares_hostile_runs(clean_streamlit_caches):
    ds = hostile_dataset()
    store = RunStore()
    a = write_hostile_run(store, ds, learning_rate=1e-3, accuracy=0.5)
    b = write_hostile_run(store, ds, learning_rate=1e-2, accuracy=0.9)
    at = _app("pages/runs.py", uploads={ds.name: ds}, dataset=ds.name)
    assert_shown_as_text(at)
    table = at.dataframe[0].value
    assert set(table["model"]) == {SPEC_NAME} and set(table["label"]) == {LABEL}  # a table shows text as is
    at.multiselect(key="runs_selected").set_value([a, b]).run()
    texts = assert_shown_as_text(at)
    labels = {run_label(i) for i in store.list_runs()}
    assert all(LABEL in label for label in labels)
    for label in labels:
        assert _contains(texts["plotly"], plain(label))  # the learning-curve legend
    assert _contains(texts["plotly"], plain(CLASSES[0]))  # F1 change bars, confusion change axes
    assert _contains(texts["literal"], f"{next(iter(labels))}")  # run pickers show the label as is


def test_faq_and_home_show_a_hostile_query_and_dataset_name_as_text(clean_streamlit_caches):
    ds = hostile_dataset()
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["uploads"] = {ds.name: ds}
    at.session_state["dataset"] = ds.name
    at.run()
    texts = assert_shown_as_text(at)
    assert _contains(texts["markdown"], md_literal(ds.name))
    query = CLASSES[0] + " " + CLASSES[2]
    at.query_params["q"] = query
    at.switch_page("pages/faq.py").run()
    texts = assert_shown_as_text(at)
    assert _contains(texts["markdown"], md_literal(query))
