"""The Data page under AppTest: every built-in dataset, keras datasets from a fixture cache, a real upload
through st.file_uploader, bad uploads shown as st.error, and the choice seen by every page."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.datasets import BUILTIN_DATASETS

APP = str(Path(__file__).resolve().parents[2] / "app.py")
CSV = b"height,weight,colour,kind\n" + b"1.0,2.0,red,a\n1.5,2.5,blue,b\n2.0,1.0,red,a\n2.5,0.5,blue,b\n" * 5

pytestmark = pytest.mark.usefixtures("clean_streamlit_caches")


def _data_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    at.switch_page("pages/data.py").run()
    assert not at.exception, at.exception
    return at


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_home_runs_and_names_the_dataset():
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert any("digits" in c.value for c in at.caption)


@pytest.mark.parametrize("name", list(BUILTIN_DATASETS))
def test_every_builtin_dataset_renders(name):
    at = _data_page()
    at.selectbox(key="data_pick").set_value(name).run()
    assert not at.exception and not at.error
    from core.datasets import load

    ds = load(name)
    m = _metrics(at)
    assert m["Samples"] == f"{ds.n_samples:,}" and m["Classes"] == str(ds.n_classes)
    assert int(m["Train"].replace(",", "")) + int(m["Validation"]) + int(m["Test"]) == ds.n_samples
    assert at.session_state["dataset"] == name
    kind_tab = "Images" if ds.kind == "image" else "Features"
    assert [t.label for t in at.tabs] == ["Class balance", kind_tab, "2-D projection"]


def test_tsne_option_runs_on_iris():
    at = _data_page()
    at.selectbox(key="data_pick").set_value("iris").run()
    at.segmented_control(key="data_projection").set_value("t-SNE").run()
    assert not at.exception and not at.error
    assert any("t-SNE (perplexity" in c.value for c in at.caption)


def _projection_caption(at) -> str:
    return next(c.value for c in at.caption if c.value.startswith(("t-SNE (perplexity", "PCA: the two")))


@pytest.mark.parametrize("name", ["iris", "wine"])
def test_tsne_shows_again_after_pca_and_for_a_second_visitor(name):
    """t-SNE -> PCA -> t-SNE once raised CacheReplayClosureError: the cached projection drew into a progress
    bar made outside it. Now the cached result is shown again, in this session and in a fresh one."""
    from ui import data as ud

    at = _data_page()
    at.selectbox(key="data_pick").set_value(name).run()
    for method in ["t-SNE", "PCA", "t-SNE", "PCA", "t-SNE"]:
        at.segmented_control(key="data_projection").set_value(method).run()
        assert not at.exception, (method, at.exception)
        assert not at.error
        assert _projection_caption(at).startswith("t-SNE" if method == "t-SNE" else "PCA"), method
    computed = list(ud._projection_tasks()._tasks)
    assert sorted(m for k, m, _ in computed if k.startswith(f"{name}|")) == ["pca", "tsne"]  # each once

    second = _data_page()  # another visitor, once the result is cached
    second.selectbox(key="data_pick").set_value(name).run()
    second.segmented_control(key="data_projection").set_value("t-SNE").run()
    assert not second.exception, second.exception
    assert _projection_caption(second).startswith("t-SNE (perplexity")
    second.segmented_control(key="data_projection").set_value("PCA").run()
    second.segmented_control(key="data_projection").set_value("t-SNE").run()
    assert not second.exception, second.exception
    assert set(ud._projection_tasks()._tasks) == set(computed)  # served from the memo, not computed again


def _sample_mosaic(at: AppTest) -> np.ndarray:
    """The pixels of the "Samples of class" mosaic as the browser gets them (a base64 typed array)."""
    spec = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if "Samples of class" in c.proto.spec)
    z = spec["data"][0]["z"]
    shape = [int(n) for n in z["shape"].split(",")]
    return np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(shape)


def test_reshuffle_shows_other_samples_and_a_rerun_keeps_them():
    at = _data_page()  # digits, class 0: 178 samples, 24 shown
    first = _sample_mosaic(at)
    at.run()
    np.testing.assert_array_equal(_sample_mosaic(at), first)  # a rerun alone does not reshuffle
    at.button(key="data_reshuffle").click().run()
    assert not at.exception
    second = _sample_mosaic(at)
    assert second.shape == first.shape and not np.array_equal(second, first)
    at.button(key="data_reshuffle").click().run()
    assert not np.array_equal(_sample_mosaic(at), second)  # every press, not only the first


def test_csv_upload_through_the_file_uploader_becomes_every_pages_dataset():
    at = _data_page()
    at.file_uploader(key="data_upload").set_value(("measures.csv", CSV, "text/csv")).run()
    assert not at.exception and not at.error
    target = at.selectbox(key="data_target")
    assert target.label == "Target (class) column" and target.value == "kind"
    assert at.button(key="data_use").label == "Use measures.csv"
    at.button(key="data_use").click().run()
    assert not at.exception and not at.error
    assert at.session_state["dataset"] == "upload: measures.csv"
    assert _metrics(at)["Samples"] == "20" and _metrics(at)["Input shape"] == "4"  # colour one-hot: 2 columns
    # the choice survives a page change, and the home page names it
    at.switch_page("pages/home.py").run()
    assert any("upload: measures.csv" in c.value for c in at.caption)
    at.switch_page("pages/data.py").run()
    assert not at.exception and at.selectbox(key="data_pick").value == "upload: measures.csv"


def test_upload_injected_in_session_state_is_current_dataset():
    """The way the page stores uploads, read back by ui.data.current_dataset on another page."""
    from core.uploads import read_csv

    at = AppTest.from_string("""
import streamlit as st
from ui.data import current_dataset
ds = current_dataset()
st.text(f"{ds.name}|{ds.n_samples}")
""", default_timeout=30)
    ds = read_csv(CSV, "injected.csv", "kind")
    at.session_state["uploads"] = {ds.name: ds}
    at.session_state["dataset"] = ds.name
    at.run()
    assert not at.exception
    assert at.text[0].value == "upload: injected.csv|20"


def test_bad_uploads_show_an_error_and_the_page_stays_usable():
    at = _data_page()
    at.file_uploader(key="data_upload").set_value(("ragged.csv", b"a,b,label\n1,2,x\n1,2\n", "text/csv")).run()
    assert not at.exception
    assert "line 3 has 2 fields" in at.error[0].value
    assert _metrics(at)["Samples"] == "1,797"  # still digits
    buf = io.BytesIO()
    np.savez(buf, x=np.array([{"a": 1}, {"b": 2}], dtype=object), y=np.array([0, 1]))
    at.file_uploader(key="data_upload").set_value(("obj.npz", buf.getvalue(), "application/octet-stream")).run()
    at.button(key="data_use").click().run()
    assert not at.exception
    assert any("holds Python objects" in e.value for e in at.error)
    assert at.session_state["dataset"] == "digits"


def test_keras_dataset_from_cache_and_missing_one(tmp_path, monkeypatch):
    from tests.core.test_datasets import write_mnist

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    write_mnist(tmp_path, n_train=300, n_test=100)
    at = _data_page()
    at.selectbox(key="data_pick").set_value("mnist").run()
    assert not at.exception and not at.error
    metrics = _metrics(at)
    assert metrics["Samples"] == "400" and at.session_state["dataset"] == "mnist"
    assert at.select_slider(key="data_subset").value == "all" and at.session_state["dataset_subset"] is None
    # the official split: the test file's 100 images; validation 15 % of the 300 training images
    assert (metrics["Train"], metrics["Validation"], metrics["Test"]) == ("255", "45", "100")
    captions = [c.value for c in at.caption]
    assert any("official test file (100 samples)" in c for c in captions), captions
    memory = next(c for c in captions if "Memory:" in c)
    assert "309 KB (uint8" in memory and "the training process needs about" in memory
    at.select_slider(key="data_subset").set_value(1000).run()
    assert at.session_state["dataset_subset"] == 1000
    at.selectbox(key="data_pick").set_value("cifar10").run()
    assert not at.exception
    assert "cifar-10-python.tar.gz" in at.error[0].value and str(tmp_path) in at.error[0].value
    assert at.session_state["dataset"] == "mnist"  # the other pages keep the last good choice


def test_a_stale_upload_choice_falls_back_to_digits():
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["dataset"] = "upload: gone.csv"  # chosen in a session whose uploads are gone
    at.run()
    at.switch_page("pages/data.py").run()
    assert not at.exception and not at.error
    assert at.selectbox(key="data_pick").value == "digits" and at.session_state["dataset"] == "digits"


def test_an_upload_too_small_to_split_is_explained_on_the_data_page():
    from core.uploads import read_csv

    tiny = read_csv(b"a,label\n1,x\n2,y\n", "tiny.csv", "label")
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["uploads"] = {tiny.name: tiny}
    at.session_state["dataset"] = tiny.name
    at.run()
    at.switch_page("pages/data.py").run()
    assert not at.exception, at.exception
    assert at.session_state["dataset"] == tiny.name
    warnings = [w.value for w in at.warning]
    assert any("2 samples are too few to split" in w for w in warnings), warnings
    assert not any("The split training will use" in c.value for c in at.caption)


# ---- a real-world table: kinds, roles, missing values, the user's choices -------------------------------

def _upload_table(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="data_upload").set_value((name, data, "text/csv")).run()
    assert not at.exception, at.exception
    return at


def test_an_uploaded_table_shows_each_columns_kind_role_and_missing_values():
    from tests.core.test_tabular import titanic_like

    at = _upload_table(_data_page(), "titanic.csv", titanic_like())
    assert not at.error
    assert at.selectbox(key="data_target").value == "Survived"
    assert any("Suggested: a whole-number column with 2 classes, named like a class column" in c.value
               for c in at.caption)
    roles = at.data_editor[0].value.set_index("column")
    assert list(roles.columns) == ["kind", "detail", "missing", "missing %", "role", "why"]
    assert roles.loc["PassengerId", "kind"] == "identifier-like" and roles.loc["PassengerId", "role"] == "ignore"
    assert "identifier" in roles.loc["PassengerId", "why"]
    assert roles.loc["Name", "kind"] == "free text" and roles.loc["Name", "role"] == "ignore"
    assert roles.loc["Boarded", "kind"] == "date/time" and roles.loc["Boarded", "role"] == "feature"
    assert roles.loc["Survived", "role"] == "target" and roles.loc["Embarked", "missing"] == 2
    assert at.dataframe[0].value.shape[1] == 13  # the file's preview comes first
    charts = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("Missing values per column" in spec for spec in charts)
    summary = " ".join(m.value for m in at.markdown).replace("\\", "")
    assert "8 feature column(s) make 14 model input(s)" in summary and "Ignored: PassengerId" in summary
    at.button(key="data_use").click().run()
    assert not at.exception and not at.error
    assert at.session_state["dataset"] == "upload: titanic.csv"
    assert _metrics(at)["Input shape"] == "14" and _metrics(at)["Samples"] == "400"
    assert any(e.label == "How this table was prepared" for e in at.expander)


def test_dropping_rows_with_gaps_fewer_categories_and_the_mean_are_the_users_choice():
    from tests.core.test_tabular import adult_like

    at = _upload_table(_data_page(), "adult.csv", adult_like())
    assert at.selectbox(key="data_target").value == "income"
    at.radio(key="data_missing").set_value("drop").run()
    at.selectbox(key="data_numbers").set_value("mean").run()
    at.number_input(key="data_top_k").set_value(5).run()
    summary = " ".join(m.value for m in at.markdown).replace("\\", "")  # as shown, escapes aside
    assert "more row(s) dropped because a feature is missing there" in summary
    assert "native-country (top 5 of 42 values + other)" in summary
    at.button(key="data_use").click().run()
    assert not at.exception and not at.error
    ds = at.session_state["uploads"]["upload: adult.csv"]
    assert ds.table.missing == "drop" and ds.table.numbers == "mean" and ds.table.top_k == 5
    assert ds.n_samples < 593 and ds.input_shape == (1 + 3 + 1 + 3 + 6 + 4,)


def test_a_target_that_cannot_be_a_class_column_is_explained_and_use_is_off():
    from tests.core.test_tabular import titanic_like

    at = _upload_table(_data_page(), "titanic.csv", titanic_like())
    at.selectbox(key="data_target").set_value("Name").run()
    assert not at.exception
    assert any("column 'Name' cannot be the target" in w.value for w in at.warning)
    assert at.button(key="data_use").disabled
    at.selectbox(key="data_target").set_value("Pclass").run()  # whole numbers, three values: allowed
    assert not at.warning and not at.button(key="data_use").disabled
    at.button(key="data_use").click().run()
    assert at.session_state["uploads"]["upload: titanic.csv"].class_names == ("1", "2", "3")


def test_hostile_column_names_with_gaps_are_shown_as_text_in_the_roles_table_and_chart():
    from tests.pages.test_hostile_text import assert_shown_as_text

    names = ["![x](http://evil.example/x.png)", "<img src=http://evil.example/y>", "label"]
    rows = "".join(f"{'NA' if i % 5 == 0 else i},{'?' if i % 7 == 0 else 'ab'[i % 2]},{'xy'[i % 2]}\n"
                   for i in range(40))
    at = _upload_table(_data_page(), "hostile.csv", (",".join(names) + "\n" + rows).encode())
    texts = assert_shown_as_text(at)
    assert list(at.data_editor[0].value["column"]) == names  # a table shows them literally
    assert any("&lt;img src=http://evil.example/y&gt;" in t for t in texts["plotly"])


def test_typed_and_uploaded_rows_are_predicted_through_the_runs_preparation():
    """Evaluate's Predict for a table: a row typed as in the file (gaps as NA, a date, a category never seen)
    or a CSV of rows goes through the run's stored preparation; hostile column names stay text."""
    import keras

    from core import tabular
    from core.datasets import split_dataset
    from core.uploads import read_csv
    from tests.pages.test_hostile_text import assert_shown_as_text

    names = ["**size** $x$", "<img src=http://evil.example/c>", "when", "label"]
    rows = "".join(f"{'NA' if i % 6 == 0 else i % 11},{'red blue green'.split()[i % 3]},"
                   f"2021-03-{i % 28 + 1:02d},{'xy'[i % 2]}\n" for i in range(60))
    ds = read_csv((",".join(names) + "\n" + rows).encode(), "t.csv", "label")
    prep = json.loads(json.dumps(split_dataset(ds).preparation))  # as read back from config.json
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(ds.input_shape), keras.layers.Dense(2, activation="softmax")])
    at = AppTest.from_string("""
import streamlit as st
from ui.data import render_row_prediction
render_row_prediction(st.session_state["model"], st.session_state["prep"], ["x", "y"], key="p")
""", default_timeout=60)
    at.session_state["model"], at.session_state["prep"] = model, prep
    at.run()
    assert_shown_as_text(at)
    typed = at.data_editor[0].value
    assert list(typed.columns) == names[:3]  # the raw columns, literally, with the training fill-ins typed
    assert typed.iloc[0, 1] == prep["columns"][1]["fill"]
    shown = next(d.value for d in at.dataframe if "prediction" in d.value.columns)
    expected = model.predict(tabular.prepare_rows(prep, typed.astype(str)), verbose=0)
    assert shown["probability"].iloc[0] == pytest.approx(expected.max(), abs=1e-4)
    csv_rows = (",".join(names) + "\nNA,purple,2021-03-09,x\n3,red,?,\n").encode()
    at.file_uploader(key="p_csv").set_value(("rows.csv", csv_rows, "text/csv")).run()
    assert not at.exception and not at.error
    uploaded = [d.value for d in at.dataframe if "prediction" in d.value.columns][-1]
    assert len(uploaded) == 2
    at.session_state["prep"] = {**prep, "mean": [float("nan")] * len(prep["mean"])}  # damaged config.json
    at.run()
    assert any("Prediction needs the run's preparation" in i.value for i in at.info)


# ---- Chinese names in uploads, and the page in Chinese ---------------------------------------------------

def _chart_names(at: AppTest) -> dict[str, set[str]]:
    """Per chart title: the names a reader sees in it (trace names, categories on the x axis, tile captions)."""
    out = {}
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        names = {str(t.get("name", "")) for t in spec["data"]}
        names |= {str(x) for t in spec["data"] if isinstance(t.get("x"), list) for x in t["x"]}
        names |= {str(a.get("text", "")) for a in spec["layout"].get("annotations", [])}
        out[str((spec["layout"].get("title") or {}).get("text", ""))] = names
    return out


def _selectbox(at: AppTest, label: str):
    return next(s for s in at.selectbox if s.label == label)


def test_chinese_column_and_class_names_of_a_gbk_table_show_in_the_roles_table_tables_and_charts():
    from tests.core.test_uploads import _CHINESE

    at = _upload_table(_data_page(), "天气.csv", _CHINESE.encode("gbk"))  # what Excel saves on a Chinese Windows
    assert not at.error
    assert any("encoding gb18030" in c.value for c in at.caption)
    assert list(at.data_editor[0].value["column"]) == ["城市", "温度", "天气"]
    assert at.selectbox(key="data_target").value == "天气"
    summary = " ".join(m.value for m in at.markdown)
    assert "Target '天气': 3 classes (多云, 小雨, 晴)" in summary and "城市 (3 values)" in summary
    assert at.button(key="data_use").label == "Use 天气.csv"
    at.button(key="data_use").click().run()
    assert not at.exception and not at.error and at.session_state["dataset"] == "upload: 天气.csv"
    charts = _chart_names(at)
    assert {"晴", "多云", "小雨"} <= charts["Samples per class"]
    assert {"晴", "多云", "小雨"} <= charts["城市=上海 by class"]  # the first feature's histogram, per class
    assert {"晴", "多云", "小雨"} <= charts["PCA of upload: 天气.csv"]
    preview = at.dataframe[-2].value  # the first rows, then their summary statistics
    assert list(preview.columns[:3]) == ["class", "城市=上海", "城市=北京"] and preview["class"][0] == "晴"
    assert _selectbox(at, "Feature").options[0] == "城市=上海"


def test_chinese_folder_names_of_an_image_zip_show_in_the_galleries_and_charts():
    from tests.core.test_uploads import _gbk_names_zip, _png

    members = {f"{cls}/{i}.png": _png(size=(12, 12), color=color) for cls, color in (("猫", (250, 0, 0)),
                                                                                      ("狗", (0, 0, 250)))
               for i in range(8)}
    at = _data_page()
    at.file_uploader(key="data_upload").set_value(("宠物.zip", _gbk_names_zip(members, "gbk"), "application/zip"))
    at.run()
    at.button(key="data_use").click().run()
    assert not at.exception and not at.error and at.session_state["dataset"] == "upload: 宠物.zip"
    assert _selectbox(at, "Class").options == ["狗", "猫"]
    charts = _chart_names(at)
    assert {"狗", "猫"} <= charts["Samples per class"] and {"狗", "猫"} <= charts["PCA of upload: 宠物.zip"]
    assert {"狗", "猫"} <= charts["Mean image per class"] and "Samples of class 狗" in charts
    _selectbox(at, "Class").set_value(1).run()
    assert "Samples of class 猫" in _chart_names(at)


def test_in_chinese_the_roles_table_shows_chinese_kinds_and_roles_and_keeps_the_keys():
    from core.i18n import language_of
    from tests.core.test_tabular import titanic_like

    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["lang"] = "zh"
    at.run()
    at.switch_page("pages/data.py").run()
    with language_of("zh"):  # AppTest formats a chosen value in the test's thread
        _upload_table(at, "titanic.csv", titanic_like())
        roles = at.data_editor[0].value.set_index("column")
        assert (roles.loc["PassengerId", "kind"], roles.loc["PassengerId", "role"]) == ("标识符", "忽略")
        assert (roles.loc["Name", "kind"], roles.loc["Boarded", "kind"]) == ("自由文本", "日期")
        assert (roles.loc["Survived", "role"], roles.loc["Pclass", "role"]) == ("目标", "特征")
        role = json.loads(at.data_editor[0].proto.columns)["role"]
        assert (role["label"], role["type_config"]["options"]) == ("角色", ["特征", "目标", "忽略"])  # to pick from
        at.button(key="data_use").click().run()
    assert not at.exception and not at.error
    table = at.session_state["uploads"]["upload: titanic.csv"].table
    assert table.target == "Survived" and "PassengerId" in {c for c, _ in table.ignored}


def test_a_role_picked_by_its_chinese_label_is_stored_as_its_key(monkeypatch):
    """The grid's callback maps the label a person picked back to the role it stands for."""
    from core import tabular
    from core.i18n import language_of
    from ui import data as ud

    state = {"_data_roles": {"file": "f", "roles": {}, "n": 0},
             "data_roles_0": {"edited_rows": {"0": {"role": "忽略"}, "1": {"role": "目标"}}}}
    monkeypatch.setattr(ud.st, "session_state", state)
    with language_of("zh"):
        labels = {tabular.role_label(r): r for r in tabular.ROLES}
    ud._apply_role_edits("data_roles_0", ["a", "b", "label"], "label", labels)
    assert state["_data_roles"] == {"file": "f", "roles": {"a": "ignore"}, "n": 1} and state["data_target"] == "b"
