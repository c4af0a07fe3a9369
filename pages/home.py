"""Home: what Keras Lab does, in a few lines, with a link to every page."""

import streamlit as st

from ui.state import ensure_app_entry

ensure_app_entry()  # a direct link (/train) must run through app.py's navigation

st.title(":material/science: Keras Lab")
st.markdown(
    "Learn and run deep-learning experiments in the browser — offline, no account. "
    "Explore a dataset, build a Keras model without code (or start from the article's CIFAR-10 CNN), "
    "train it with live charts that survive page changes and reloads, evaluate it with a confusion "
    "matrix and scikit-learn metrics, compare runs, and see backpropagation worked out number by number."
)
st.caption(f"Selected dataset: **{st.session_state['dataset']}** — change it on the Data page.")
steps = [
    ("pages/data.py", "1. Explore data", "class balance, sample images, projections, your own uploads"),
    ("pages/model.py", "2. Build a model", "presets, a layer editor with shape checks, code export"),
    ("pages/train.py", "3. Train", "background jobs, live loss and accuracy, stop and queue"),
    ("pages/evaluate.py", "4. Evaluate", "confusion matrix, precision / recall / F1, error gallery"),
    ("pages/runs.py", "5. Compare runs", "every run on disk, side by side, downloads"),
    ("pages/backprop.py", "6. Backpropagation", "the forward pass, loss and chain rule, exactly"),
    ("pages/faq.py", "7. FAQ", "privacy, energy, explainability, practical answers"),
]
for page, label, what in steps:
    col1, col2 = st.columns([1, 3])
    col1.page_link(page, label=label)
    col2.write(what)
