"""core.faq: every id is a valid link target, every page link exists, and search finds what a user types, in
English or Chinese, whichever language the page is in."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import faq
from core.i18n import set_language

ROOT = Path(__file__).resolve().parents[2]
DIAGNOSTIC_IDS = ["overfitting", "underfitting", "divergence", "learning-rate-too-high", "learning-rate-too-low",
                  "class-imbalance", "dead-relu", "vanishing-exploding-gradients"]


def test_entries_are_well_formed():
    ids = [e.id for e in faq.entries()]
    assert len(ids) == len(set(ids))
    for e in faq.entries():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", e.id), e.id
        assert e.group in faq.groups(), e.id
        assert e.question.strip() and len(e.answer) > 80, e.id
        for url_path, label in e.links:
            assert re.fullmatch(r"[a-z]+", url_path), f"{e.id} links to {url_path!r}, not a URL path"
            assert label
    assert list(faq.by_group(list(faq.entries()))) == list(faq.groups())  # the FAQ's own order, unfiltered


def test_the_faq_page_links_each_answer_to_the_page_at_its_url_path(clean_streamlit_caches):
    """Every link of every answer, as the FAQ page draws it, goes to the page app.py serves at that path."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("pages/faq.py").run()
    assert not at.exception
    shown = Counter((link.proto.page, link.proto.label) for link in at.get("page_link"))
    assert shown == Counter(link for e in faq.entries() for link in e.links)


@pytest.mark.parametrize("entry_id", DIAGNOSTIC_IDS + ["data-privacy", "energy-cost", "explainability",
                                                        "healthcare-risks", "ethics-fairness", "dataset-offline",
                                                        "runs-storage", "further-reading"])
def test_links_other_pages_use_resolve(entry_id):
    assert faq.faq_link(entry_id) == f"/faq?q={entry_id}"
    assert faq.search(entry_id)[0].id == entry_id  # what /faq?q=<id> shows first


def test_unknown_id_raises():
    with pytest.raises(KeyError, match="unknown FAQ entry 'overfit'"):
        faq.faq_link("overfit")


def test_search_is_case_insensitive_and_uses_keywords():
    assert [e.id for e in faq.search("FEDERATED")] == ["data-privacy"]
    assert "data-privacy" in [e.id for e in faq.search("differential privacy")]
    assert "dataset-offline" in [e.id for e in faq.search("mnist.npz")]
    hits = [e.id for e in faq.search("dying relu")]  # a keyword that is not in the question
    assert hits == ["dead-relu"]


def test_search_ranks_and_filters():
    hits = faq.search("Overfitting")
    assert hits[0].id == "overfitting"
    assert all("overfitting" in (e.question + e.answer + " ".join(e.keywords)).lower() for e in hits)
    assert len(hits) < len(faq.entries())
    assert faq.search("") == list(faq.entries())
    assert faq.search("zzz no such thing") == []


def test_practical_answers_carry_the_facts_users_need():
    assert "~/.keras/datasets/" in faq.get("dataset-offline").answer
    assert "cifar-10-batches-py/" in faq.get("dataset-offline").answer
    assert "KERAS_LAB_RUNS" in faq.get("runs-storage").answer
    deploy = faq.get("deploy").answer
    assert "3.11" in deploy and "3.13" in deploy and "requirements.txt" in deploy


@pytest.mark.parametrize("query", ["over-fitting", "overfitting", "Overfit", "OVER-FITTING", "over fitting",
                                   "over\u2010fitting", "overfits"])
def test_hyphens_spaces_case_and_endings_do_not_matter(query):
    """ "over-fitting" once found nothing, although an answer asks about "over- and under-fitting"."""
    hits = [e.id for e in faq.search(query)]
    assert {"overfitting", "over-vs-underfitting"} <= set(hits), (query, hits)
    assert len(hits) < len(faq.entries()) / 3


@pytest.mark.parametrize(("query", "entry_id"), [
    ("energies", "energy-cost"), ("Energy", "energy-cost"), ("electricities", "energy-cost"),
    ("batch sizes", "batch-size-learning-rate"), ("learning-rates", "batch-size-learning-rate"),
    ("dp sgd", "data-privacy"), ("DPSGD", "data-privacy"), ("under fitting", "underfitting"),
    ("under-fit", "underfitting"), ("imbalanced classes", "class-imbalance"), ("biases", "dead-relu"),
])
def test_plurals_and_compounds_find_their_answer(query, entry_id):
    assert entry_id in [e.id for e in faq.search(query)], query


def test_normalisation_stays_precise():
    assert faq.search("energies privacy") == []  # still every word must be found
    assert [e.id for e in faq.search("federated")] == ["data-privacy"]
    assert faq.search("fit")[:1] and all("fit" in (e.id + e.question + e.answer + " ".join(e.keywords)).lower()
                                           for e in faq.search("fit"))
    assert faq.search("+++") == [] and faq.search("  ") == list(faq.entries())
    assert faq._stems("energies") >= {"energy"} and faq._stems("fitting") >= {"fit"}
    assert faq._stems("sizes") & faq._stems("size") and faq._stems("biases") & faq._stems("bias")
    assert "overfitting" in faq._terms("What is the difference between over- and under-fitting?")


def test_search_results_open_with_the_group_of_the_best_match():
    hits = faq.search("over-fitting")
    groups = faq.by_group(hits)
    first = next(iter(groups.values()))[0]
    assert first.id in {"overfitting", "over-vs-underfitting"}  # not "explainability", which only mentions it
    assert [e for g in groups.values() for e in g if e.id == "explainability"]  # still listed, further down


def _requires_python(dist: str) -> str:
    """The installed distribution's Requires-Python, e.g. ">=3.11"."""
    from importlib.metadata import metadata

    return metadata(dist)["Requires-Python"]


def test_gpu_answer_matches_the_installed_stack():
    """Native Windows GPU ended with TensorFlow 2.10 (WSL2 since); the pinned TensorFlow and Keras name the
    Python they need, read here from the installed packages, so a version bump makes this answer fail."""
    from importlib.metadata import PackageNotFoundError, version

    answer = faq.get("gpu").answer
    assert "TensorFlow 2.10 was the last release with GPU support on native Windows" in answer and "WSL2" in answer
    assert "Python 3.8" in answer and "TensorFlow 2.13 was the last release for Python 3.8" in answer
    for dist in ("tensorflow-cpu", "tensorflow"):
        try:
            tf_version, tf_python = version(dist), _requires_python(dist)
            break
        except PackageNotFoundError:
            continue
    major_minor = ".".join(tf_version.split(".")[:2])
    assert f"TensorFlow {major_minor}, which this app pins, needs Python {tf_python.removeprefix('>=')} or newer" \
        in answer
    keras_major_minor = ".".join(version("keras").split(".")[:2])
    assert f"Keras {keras_major_minor} needs {_requires_python('keras').removeprefix('>=')} or newer" in answer


def test_energy_answer_gives_the_published_estimate_and_why_distribution_saves_no_energy():
    answer = faq.get("energy-cost").answer
    assert "1,300 MWh" in answer and "1,287 MWh" in answer and "1.3 GWh" in answer and "Patterson" in answer
    assert "megawatt" not in answer.lower() and "gigawatt" not in answer.lower()  # units written one way
    assert "faster" in answer and "energy (power × time) stays the same" in answer


def test_privacy_answer_distinguishes_a_local_lab_from_a_shared_server():
    from core.workspaces import WORKSPACES_DIR

    answer = faq.get("data-privacy").answer
    assert "nothing is sent anywhere" not in answer
    assert "**On your own computer**" in answer and "**On a shared deployment**" in answer
    assert f"runs/{WORKSPACES_DIR}/" in answer and "`config.json`" in answer and "`predictions.npz`" in answer


def test_explainability_points_to_the_explain_tab():
    answer = faq.get("explainability").answer
    assert "**Explain** tab" in answer and "Grad-CAM" in answer and "saliency" in answer.lower()
    assert ("evaluate", "Evaluate") in faq.get("explainability").links
    assert faq.search("grad-cam")[0].id == "explainability"


def test_new_entries_on_ethics_and_reading():
    ethics = faq.get("ethics-fairness")
    assert ethics.group == "article" and ("evaluate", "Evaluate") in ethics.links
    assert all(word in ethics.answer for word in ("Bias in the data", "Fairness across groups", "Accountability",
                                                  "per-class precision, recall and F1"))
    reading = faq.get("further-reading").answer
    assert all(name in reading for name in ("keras.io", "Deep Learning with Python", "Dive into Deep Learning",
                                            "d2l.ai", "zh.d2l.ai", "CS231n"))
    assert "http" not in reading  # plain names, no links that could rot or be made up
    assert faq.search("fairness")[0].id == "ethics-fairness"
    assert faq.search("what should I read")[0].id == "further-reading"


# Tools an answer might suggest that this app does not have (it has Sweeps on Optuna and writes TensorBoard
# event files per run, so those two may be named).
NOT_IN_THE_APP = ("W&B", "Weights & Biases", "wandb", "MLflow", "Comet", "Neptune", "ReduceLROnPlateau",
                  "Keras Tuner", "KerasTuner", "Ray Tune", "TensorBoard Projector")


def test_answers_name_only_tools_the_app_has():
    from core.runs import TENSORBOARD_DIR

    for e in faq.entries():
        text = f"{e.question} {e.answer}"
        assert not [t for t in NOT_IN_THE_APP if t.lower() in text.lower()], e.id
    assert f"`{TENSORBOARD_DIR}/`" in faq.get("runs-storage").answer  # the folder the runs really have


# --- Chinese --------------------------------------------------------------------------------------------
TOPICS = [  # (Chinese query, English query, the answer both rank first): issue 16's ten, then every other topic
    ("隐私", "privacy", "data-privacy"),
    ("过拟合", "overfitting", "overfitting"),
    ("学习率", "learning rate", "batch-size-learning-rate"),
    ("能耗", "energy", "energy-cost"),
    ("医疗", "healthcare", "healthcare-risks"),
    ("可解释", "explainable", "explainability"),
    ("联邦学习", "federated learning", "data-privacy"),
    ("数据增强", "data augmentation", "overfitting"),
    ("微调", "fine-tuning", "fine-tuning"),
    ("迁移学习", "transfer learning", "fine-tuning"),
    ("GPU", "GPU", "gpu"),
    ("公平性", "fairness", "ethics-fairness"),
    ("离线", "offline", "dataset-offline"),
    ("优化器", "optimizer", "optimizers"),
    ("混淆矩阵", "confusion matrix", "confusion-matrix"),
    ("过拟合 欠拟合", "overfitting underfitting", "over-vs-underfitting"),
    ("批大小", "batch size", "batch-size-learning-rate"),
    ("部署", "deploy", "deploy"),
    ("存储", "storage", "runs-storage"),
    ("工作区", "workspace", "workspace"),
    ("延伸阅读", "further reading", "further-reading"),
    ("欠拟合", "underfitting", "underfitting"),
    ("发散", "divergence", "divergence"),
    ("学习率过高", "learning rate too high", "learning-rate-too-high"),
    ("学习率过低", "learning rate too low", "learning-rate-too-low"),
    ("类别不平衡", "class imbalance", "class-imbalance"),
    ("ReLU 死亡", "dead relu", "dead-relu"),
    ("梯度消失", "vanishing gradient", "vanishing-exploding-gradients"),
]


@pytest.fixture
def page_language():
    """Sets this thread's language as app.py does for a run (`page_language("zh")`); English again after."""
    yield set_language
    set_language("en")


def test_every_answer_has_a_chinese_topic_query():
    assert {entry_id for *_queries, entry_id in TOPICS} == {e.id for e in faq.entries()}


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize(("zh", "en", "entry_id"), TOPICS)
def test_a_topic_in_either_language_ranks_its_answer_first_on_both_pages(page_language, lang, zh, en,
                                                                         entry_id):
    page_language(lang)
    for query in (zh, en):
        hits = faq.search(query)
        assert hits and hits[0].id == entry_id, (lang, query, [e.id for e in hits])


def test_answers_come_in_the_page_language_whatever_the_query_language(page_language):
    page_language("zh")
    zh = faq.search("overfitting")[0]  # an English query on the Chinese page
    assert zh.id == "overfitting" and zh.question.startswith("过拟合") and "早停" in zh.answer
    assert ("train", "训练") in zh.links and "数据增强" in zh.keywords
    assert faq.groups()["diagnostics"] == "训练诊断"
    page_language("en")
    en = faq.search("过拟合")[0]  # and a Chinese one on the English page
    assert en.id == "overfitting" and en.question.startswith("Overfitting")


def test_chinese_is_cut_into_bigrams_and_full_width_letters_are_plain():
    assert faq._query_terms("过拟合") == ["过拟", "拟合"]
    assert faq._query_terms("GPU训练 Dropout") == ["gpu", "训练", "dropout"]  # no space needed before Chinese
    assert {"过", "过拟", "拟合", "overfitting"} <= faq._terms("Overfitting（过拟合）")
    assert faq.search("ＧＰＵ")[0].id == "gpu"  # as typed with a Chinese input method
    assert faq.search("过拟合 联邦学习") == []  # every word must still be found
    assert [e.id for e in faq.search("联邦学习")] == ["data-privacy"]


def test_the_glossary_translates_a_whole_query_and_ranks_the_answer_it_names_first():
    """过拟合 / 欠拟合 are also in the question "过拟合和欠拟合有什么区别？", earlier in the FAQ; the
    glossary says they are the ids overfitting / underfitting."""
    assert "overfitting" in faq._glossary()["过拟 拟合"] and "过拟合" in faq._glossary()["overfitting"]
    assert [e.id for e in faq.search("过拟合")][:2] == ["overfitting", "over-vs-underfitting"]
    assert [e.id for e in faq.search("欠拟合")][:2] == ["underfitting", "over-vs-underfitting"]


def test_an_answer_without_its_chinese_text_is_found_by_the_glossary_term(monkeypatch):
    monkeypatch.setattr(faq, "LANGUAGES", {"en": "English"})  # index the English texts only
    faq._searchable.cache_clear()
    try:
        assert faq.search("过拟合")[0].id == "overfitting"  # glossary: overfitting
        assert "data-privacy" in [e.id for e in faq.search("联邦学习")]  # glossary: federated learning
    finally:
        faq._searchable.cache_clear()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_page_answers_issue_16s_queries_in_both_languages(lang, page_language, clean_streamlit_caches):
    """The page shows the right answer first and no "Try a shorter word" for each of the ten queries."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["lang"] = lang
    at.run()
    at.switch_page("pages/faq.py").run()
    page_language(lang)
    for zh, en, entry_id in TOPICS[:10]:
        for query in (zh, en):
            at.text_input(key="faq_search_box").input(query).run()
            assert not at.exception and not at.info, (lang, query, [i.value for i in at.info])
            assert at.subheader[0].value == faq.get(entry_id).question, (lang, query)
