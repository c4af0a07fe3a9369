"""AppTest of the Learn pages: the backprop explorer's numbers react to edits and steps; the FAQ filters."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.usefixtures("clean_streamlit_caches")
APP = str(Path(__file__).resolve().parents[2] / "app.py")


def _open(page: str, **query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params.update(query)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _latex(at: AppTest) -> str:
    return "\n".join(e.value for e in at.latex)


def test_backprop_shows_the_default_numbers():
    at = _open("pages/backprop.py")
    text = _latex(at)
    assert r"0.1 \cdot 1 + 0.2 \cdot 2 + 0.3 \cdot 3 + 0.5 = 1.9" in text
    assert r"+ 0.6 = 2.3" in text
    assert r"+ 0.8 = 3.74" in text
    assert f"= {1 / (1 + math.exp(-3.74)):.6g}" in text
    assert f"= {-math.log(1 / (1 + math.exp(-3.74))):.6g}" in text
    assert not at.error


def test_backprop_errata_list_the_articles_numbers_beside_the_apps():
    at = _open("pages/backprop.py")
    errata = next(e for e in at.expander if e.label.startswith("Errata"))
    text = "\n".join(m.value for m in errata.markdown).replace("\\", "")
    for printed, correct in [("1.6", "1.9"), ("1.8", "2.3"), ("1.64", "3.74"), ("0.613", "0.837535"),
                             ("0.268", f"{-math.log(1 / (1 + math.exp(-3.74))):.6g}"),
                             ("0.8 + 0.00387 = 0.839", "0.800232")]:
        assert f"the article prints {printed}; correct: **{correct}**" in text, printed
    assert "no f′(z) factor" in text
    assert "W2 = (0.7, 0.7)" in text and "w²¹ = 0.3 is W1[1,3]" in text and "w²² = 0.4 is W1[2,3]" in text


def _chart_texts(at: AppTest) -> list[str]:
    """Every annotation's text in the page's plotly charts."""
    layouts = [json.loads(c.proto.spec)["layout"] for c in at.get("plotly_chart")]
    return [a["text"] for layout in layouts for a in layout.get("annotations", [])]


def test_backprop_activation_curves_open_on_request():
    at = _open("pages/backprop.py")
    assert any(e.label == "What do these activations look like?" for e in at.expander)
    assert "max slope<br>0.25 at z = 0" not in _chart_texts(at)  # built only when opened
    at.session_state["bp_activation_curves"] = True  # the expander, opened
    at.run()
    assert not at.exception
    assert "max slope<br>0.25 at z = 0" in _chart_texts(at)
    assert any("at most 0.25" in c.value for c in at.caption)


def test_changing_a_weight_changes_the_dependent_numbers():
    at = _open("pages/backprop.py")
    at.selectbox(key="bp_param").select("W2[1]").run()
    value_box = next(n for n in at.number_input if n.label == "Value of W2[1]")
    value_box.set_value(0.5).run()
    assert not at.exception and not at.error
    text = _latex(at)
    new_net = 0.5 * 1.9 + 0.7 * 2.3 + 0.8
    assert rf"0.5 \cdot 1.9 + 0.7 \cdot 2.3 + 0.8 = {new_net:.6g}" in text
    assert "= 3.74" not in text
    assert f"{1 / (1 + math.exp(-new_net)):.6g}" in text
    assert r"0.1 \cdot 1 + 0.2 \cdot 2 + 0.3 \cdot 3 + 0.5 = 1.9" in text  # the hidden layer is unchanged


def test_step_ten_times_lowers_the_loss():
    at = _open("pages/backprop.py")
    for _ in range(10):
        next(b for b in at.button if b.label == "Step").click().run()
    history = at.session_state["bp_history"]
    assert len(history) == 11
    assert all(b < a for a, b in zip(history, history[1:], strict=False))
    caption = next(c.value for c in at.caption if "since the last edit" in c.value)
    first, last = map(float, re.search(r"loss (\S+) → (\S+?)\. ", caption).groups())
    assert caption.startswith("10 steps") and last < first
    assert len(at.get("plotly_chart")) >= 1


def test_invalid_edit_is_refused_with_a_message():
    at = _open("pages/backprop.py")
    at.selectbox(key=next(s.key for s in at.selectbox if s.label == "Output and loss")).select("linear_mse").run()
    label = next(n for n in at.number_input if n.label == "Label y")
    label.set_value(3.0).run()
    at.selectbox(key=next(s.key for s in at.selectbox if s.label == "Output and loss")).select("sigmoid_bce").run()
    assert not at.exception
    assert next(n for n in at.number_input if n.label == "Label y").value == 1.0  # clipped into 0..1


@pytest.mark.slow
def test_tensorflow_proof_agrees():
    at = _open("pages/backprop.py")
    next(b for b in at.button if b.label.startswith("Compare with TensorFlow")).click().run(timeout=120)
    assert not at.exception
    assert any("agree with TensorFlow" in s.value for s in at.success)


def test_faq_search_finds_overfitting():
    at = _open("pages/faq.py")
    assert len(at.subheader) >= 20
    at.text_input(key="faq_search_box").input("overfitting").run()
    questions = [s.value for s in at.subheader]
    assert questions[0].startswith("Overfitting")
    assert len(questions) < 20
    assert any("answers match" in c.value for c in at.caption)


def test_faq_link_filters_to_the_entry():
    at = _open("pages/faq.py", q="dead-relu")
    assert at.subheader[0].value.startswith("Dead ReLU units")
    assert at.text_input(key="faq_search_box").value == "dead-relu"


def _faq_state(at: AppTest) -> tuple[str, str | None, str]:
    """The search box, the URL's ?q= and the "n of m answers match" caption."""
    caption = next((c.value for c in at.caption if "answers match" in c.value), "")
    q = at.query_params.get("q")
    return at.text_input(key="faq_search_box").value, q[-1] if isinstance(q, list) else q, caption


def test_faq_every_query_takes_effect_and_the_url_follows_the_box():
    """Typing "energy", then "privacy", once snapped the box back to "energy" (the ?q= it had written itself
    was read back as a new link); every second query was lost."""
    at = _open("pages/faq.py")
    for query, first_question in [("energy", "How much energy"), ("privacy", "How can personal data"),
                                  ("over-fitting", "What is the difference between over"),
                                  ("energies", "How much energy"), ("dead-relu", "Dead ReLU units")]:
        at.text_input(key="faq_search_box").input(query).run()
        assert not at.exception, at.exception
        box, url, caption = _faq_state(at)
        assert (box, url) == (query, query), query
        assert f"match “{query}”" in caption, (query, caption)
        assert any(s.value.startswith(first_question) for s in at.subheader), query
    at.run()  # a rerun for any other reason (a click elsewhere) keeps the query
    assert _faq_state(at)[:2] == ("dead-relu", "dead-relu")
    at.text_input(key="faq_search_box").input("").run()
    assert "q" not in at.query_params and len(at.subheader) >= 20


def test_faq_link_fills_the_box_on_arrival_then_typing_wins():
    at = _open("pages/faq.py", q="dead-relu")
    at.text_input(key="faq_search_box").input("energy").run()
    assert _faq_state(at)[0] == "energy" and at.subheader[0].value.startswith("How much energy")
    at.text_input(key="faq_search_box").input("privacy").run()
    assert _faq_state(at)[0] == "privacy" and at.subheader[0].value.startswith("How can personal data")
    at.switch_page("pages/backprop.py").run()  # another page, then a link to one answer
    at.query_params["q"] = "overfitting"
    at.switch_page("pages/faq.py").run()
    assert _faq_state(at)[0] == "overfitting" and at.subheader[0].value.startswith("Overfitting")


@pytest.mark.slow
def test_gradient_report_of_a_finished_run(tmp_path, _isolated_run_store):
    """The Backprop page loads a run's saved model and its test split, and reports that model's gradients."""
    import keras
    import numpy as np

    from core.datasets import load_builtin, split_dataset
    from core.layer_gradients import gradient_report
    from core.runs import RunStore
    from tests.core.test_evaluation import write_run

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(16, activation="sigmoid"), keras.layers.Dense(10, activation="softmax")])
    store = RunStore(_isolated_run_store)
    run_id = write_run(store, "digits")
    model.save(store.model_path(run_id))

    at = _open("pages/backprop.py")
    at.toggle(key="bp_run_report").set_value(True).run()
    assert not at.exception and not at.error, (at.exception, at.error)
    split = split_dataset(load_builtin("digits"), seed=0)  # the split write_run recorded
    expected = gradient_report(model, split.x_test[:128], split.y_test[:128])
    caption = next(c.value for c in at.caption if "First-layer gradient norm" in c.value)
    assert f"norm {expected[0].grad_norm:.3g}," in caption and f"last layer {expected[-1].grad_norm:.3g}." in caption
    assert np.isfinite(expected[0].grad_norm) and expected[0].grad_norm > 0
