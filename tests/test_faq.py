"""core.faq: every id is a valid link target, every page link exists, and search finds what a user types."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core import faq

ROOT = Path(__file__).resolve().parents[1]
DIAGNOSTIC_IDS = ["overfitting", "underfitting", "divergence", "learning-rate-too-high", "learning-rate-too-low",
                  "class-imbalance", "dead-relu", "vanishing-exploding-gradients"]


def test_entries_are_well_formed():
    ids = [e.id for e in faq.ENTRIES]
    assert len(ids) == len(set(ids))
    for e in faq.ENTRIES:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", e.id), e.id
        assert e.group in faq.GROUPS, e.id
        assert e.question.strip() and len(e.answer) > 80, e.id
        for page, label in e.links:
            assert (ROOT / page).is_file(), f"{e.id} links to missing {page}"
            assert label
    assert set(faq.by_group(list(faq.ENTRIES))) == set(faq.GROUPS)


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
