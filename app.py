"""Keras Lab entry point: page config, navigation over pages/, and the home view.

Run with `streamlit run app.py` (optionally `-- --dataset iris` to preselect a dataset).
"""

import streamlit as st

from ui.state import init_session

st.set_page_config(page_title="Keras Lab", page_icon=":material/science:", layout="wide")
init_session()

PAGES = {
    "Data": [st.Page("pages/data.py", title="Explore data", icon=":material/bar_chart:", url_path="data")],
    "Model": [st.Page("pages/model.py", title="Build a model", icon=":material/view_in_ar:", url_path="model")],
    "Train": [st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="train")],
    "Evaluate": [st.Page("pages/evaluate.py", title="Evaluate", icon=":material/target:", url_path="evaluate")],
    "Runs": [st.Page("pages/runs.py", title="Compare runs", icon=":material/compare:", url_path="runs")],
    "Learn": [
        st.Page("pages/backprop.py", title="Backpropagation", icon=":material/calculate:", url_path="backprop"),
        st.Page("pages/faq.py", title="FAQ", icon=":material/help:", url_path="faq"),
    ],
}


def home() -> None:
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


nav = st.navigation({"": [st.Page(home, title="Home", icon=":material/home:", default=True)], **PAGES})
nav.run()
