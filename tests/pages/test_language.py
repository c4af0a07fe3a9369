"""Every page with ?lang=zh: no English sentence in what a person reads (texts, labels, help, chart titles),
and ?lang=en shows no Chinese. Code, names (layers, presets, datasets, metric keys) and numbers may stay."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGES = ["pages/home.py", "pages/data.py", "pages/model.py", "pages/train.py", "pages/evaluate.py", "pages/runs.py",
         "pages/sweep.py", "pages/backprop.py", "pages/faq.py"]
# Words that are names, not English sentences: Keras classes, presets, datasets, libraries, metric keys.
ALLOWED = re.compile(r"\b(Keras Lab|Small MLP|Small CNN|Article CNN(?: \(adapted\))?|Stronger CNN|Transfer learning|"
                     r"MobileNetV2|scikit-learn|TensorFlow|Keras|Optuna|Streamlit|Plotly|GradientTape|"
                     r"val_accuracy|val_loss|Fashion-MNIST|CIFAR-10|CIFAR-100|MNIST|Grad-CAM|Adam|AdamW|SGD|"
                     r"RMSprop|ReLU|LeakyReLU|GELU|ELU|TPE|Hyperband)\b")
CODE = re.compile(r"`[^`]*`|\$\$.*?\$\$|\$[^$]*\$|\\\(.*?\\\)|https?://\S+", re.S)
SENTENCE = re.compile(r"\b[A-Za-z][a-z]+(?:[ ,'-]+[A-Za-z][a-z]+){2,}\b")  # three English words in a row


def english_sentences(text: str) -> list[str]:
    """English runs of three or more words left in `text` once code, maths, URLs and names are removed."""
    text = ALLOWED.sub(" ", CODE.sub(" ", text))
    return SENTENCE.findall(text)


def _figure_texts(spec: str) -> list[str]:
    fig = json.loads(spec)
    layout = fig.get("layout", {})
    texts = [str((layout.get("title") or {}).get("text", ""))]
    for key, axis in layout.items():
        if key.startswith(("xaxis", "yaxis")) and isinstance(axis, dict):
            texts.append(str((axis.get("title") or {}).get("text", "")))
    texts += [str(a.get("text", "")) for a in layout.get("annotations", [])]
    texts += [str(t.get("name", "")) for t in fig.get("data", []) if t.get("showlegend", True)]
    return texts


def _rendered_texts(at) -> list[str]:
    """What a person reads on the page: texts, labels, help, options of choices, chart titles and axes."""
    texts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success",
                 "exception"):
        texts += [str(e.value) for e in at.get(kind)]
    for kind in ("button", "checkbox", "toggle", "selectbox", "multiselect", "radio", "number_input", "text_input",
                 "text_area", "slider", "select_slider", "date_input", "download_button", "file_uploader",
                 "tabs", "expander", "metric", "segmented_control", "pills"):
        for element in at.get(kind):
            proto = getattr(element, "proto", None)
            for field in ("label", "help", "placeholder"):
                value = getattr(proto, field, "") if proto is not None else ""
                if isinstance(value, str):
                    texts.append(value)
    for chart in at.get("plotly_chart"):
        texts += _figure_texts(chart.proto.spec)
    return texts


def _page(path: str, lang: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["lang"] = lang
    at.run()
    at.switch_page(path)
    at.run()
    assert not at.exception, at.exception
    return at


def test_the_detector_finds_english_and_spares_code_names_and_chinese():
    assert english_sentences("Train the model on your data") == ["Train the model on your data"]
    assert english_sentences("在 `model.fit(x, y)` 中训练 Small CNN，使用 Adam 优化器") == []
    assert english_sentences("损失函数 $-\\ln \\hat y$ 与 val_accuracy") == []


@pytest.mark.slow
@pytest.mark.parametrize("path", PAGES)
def test_a_chinese_reader_meets_no_english_sentence(path, clean_streamlit_caches):
    at = _page(path, "zh")
    found = sorted({s for text in _rendered_texts(at) for s in english_sentences(text)})
    assert not found, f"{len(found)} English phrases on {path}: {found[:15]}"


@pytest.mark.slow
def test_an_english_reader_sees_no_chinese(clean_streamlit_caches):
    for path in PAGES:
        at = _page(path, "en")
        chinese = [t for t in _rendered_texts(at) if re.search(r"[\u4e00-\u9fff]", t) and "简体中文" not in t]
        assert not chinese, (path, chinese[:5])
