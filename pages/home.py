"""Home: what Keras Lab does, in a few lines, with a link to every page."""

import streamlit as st

from core.i18n import _
from ui.state import ensure_app_entry
from ui.text import md_literal

ensure_app_entry()

st.title(":material/science: Keras Lab")
st.markdown(_(
    "Learn and run deep-learning experiments in the browser — offline, no account. "
    "Explore a dataset, build a Keras model without code (or start from a classic small CIFAR-10 CNN), "
    "train it with live charts that survive page changes and reloads, evaluate it with a confusion "
    "matrix and scikit-learn metrics, compare runs, and see backpropagation worked out number by number."
))
st.caption(_("Selected dataset: **{dataset}** — change it on the Data page.").format(
    dataset=md_literal(st.session_state["dataset"])))
st.page_link("pages/train.py", label=_("Reproduce the article: its CIFAR-10 CNN trained as printed, in one click on "
                                       "the Train page"), icon=":material/menu_book:")
steps = [
    ("pages/data.py", _("1. Explore data"), ":material/bar_chart:",
     _("class balance, sample images, projections, your own uploads")),
    ("pages/model.py", _("2. Build a model"), ":material/view_in_ar:",
     _("presets, a layer editor with shape checks, code export")),
    ("pages/train.py", _("3. Train"), ":material/model_training:",
     _("background jobs, live loss and accuracy, stop and queue")),
    ("pages/evaluate.py", _("4. Evaluate"), ":material/target:",
     _("confusion matrix, precision / recall / F1, error gallery")),
    ("pages/runs.py", _("5. Compare runs"), ":material/compare:",
     _("every run on disk, side by side, downloads")),
    ("pages/sweep.py", _("6. Sweeps"), ":material/tune:",
     _("Optuna studies: grid, random or TPE, pruning, compare optimizers")),
    ("pages/backprop.py", _("7. Backpropagation"), ":material/calculate:",
     _("the forward pass, loss and chain rule, exactly")),
    ("pages/faq.py", _("8. FAQ"), ":material/help:", _("privacy, energy, explainability, practical answers")),
]
# Row by row: on a narrow screen Streamlit stacks each row's columns, so the cards keep their order 1..8
# (two columns of cards would read 1, 3, 5, 7, 2, 4, 6, 8 there).
for row in range(0, len(steps), 2):
    for column, (page, label, icon, what) in zip(st.columns(2, gap="small"), steps[row:row + 2], strict=False):
        with column.container(border=True, height="stretch"):
            st.page_link(page, label=f"**{label}**", icon=icon)
            st.caption(what)
