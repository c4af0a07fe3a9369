"""core.faq: every id is a valid link target, every page link exists, and search finds what a user types."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import faq

ROOT = Path(__file__).resolve().parents[2]
DIAGNOSTIC_IDS = ["overfitting", "underfitting", "divergence", "learning-rate-too-high", "learning-rate-too-low",
                  "class-imbalance", "dead-relu", "vanishing-exploding-gradients"]


def test_entries_are_well_formed():
    ids = [e.id for e in faq.ENTRIES]
    assert len(ids) == len(set(ids))
    for e in faq.ENTRIES:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", e.id), e.id
        assert e.group in faq.GROUPS, e.id
        assert e.question.strip() and len(e.answer) > 80, e.id
        for url_path, label in e.links:
            assert re.fullmatch(r"[a-z]+", url_path), f"{e.id} links to {url_path!r}, not a URL path"
            assert label
    assert list(faq.by_group(list(faq.ENTRIES))) == list(faq.GROUPS)  # the FAQ's own order, unfiltered


def test_the_faq_page_links_each_answer_to_the_page_at_its_url_path(clean_streamlit_caches):
    """Every link of every answer, as the FAQ page draws it, goes to the page app.py serves at that path."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("pages/faq.py").run()
    assert not at.exception
    shown = Counter((link.proto.page, link.proto.label) for link in at.get("page_link"))
    assert shown == Counter(link for e in faq.ENTRIES for link in e.links)


@pytest.mark.parametrize("entry_id", DIAGNOSTIC_IDS + ["data-privacy", "energy-cost", "explainability",
                                                        "healthcare-risks", "dataset-offline", "runs-storage"])
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
    assert len(hits) < len(faq.ENTRIES)
    assert faq.search("") == list(faq.ENTRIES)
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
    assert len(hits) < len(faq.ENTRIES) / 3


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
    assert faq.search("+++") == [] and faq.search("  ") == list(faq.ENTRIES)
    assert faq._stems("energies") >= {"energy"} and faq._stems("fitting") >= {"fit"}
    assert faq._stems("sizes") & faq._stems("size") and faq._stems("biases") & faq._stems("bias")
    assert "overfitting" in faq._terms("What is the difference between over- and under-fitting?")


def test_search_results_open_with_the_group_of_the_best_match():
    hits = faq.search("over-fitting")
    groups = faq.by_group(hits)
    first = next(iter(groups.values()))[0]
    assert first.id in {"overfitting", "over-vs-underfitting"}  # not "explainability", which only mentions it
    assert [e for g in groups.values() for e in g if e.id == "explainability"]  # still listed, further down
