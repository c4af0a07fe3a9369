"""Keras Lab entry point: page config, session defaults and the navigation over pages/.

Run with `streamlit run app.py` (optionally `-- --dataset iris` to preselect a dataset).
"""

import streamlit as st

from ui.errors import configure_error_details, run_guarded
from ui.jobs import job_manager
from ui.state import init_session, keep_gc_cheap
from ui.workspace import current_workspace, render_workspace_box

# An emoji icon: Streamlit draws it as a data: URL, while a :material/ icon makes every browser fetch the
# favicon from fonts.gstatic.com (the app promises to work offline and to send nothing elsewhere).
st.set_page_config(page_title="Keras Lab", page_icon="🧪", layout="wide")
SHARED = configure_error_details()  # visitors of a shared server get an error id, never a traceback
init_session()
keep_gc_cheap()  # once TensorFlow is loaded here, Streamlit's per-run gc.collect stays cheap
job_manager()  # created once per server: runs a dead server left "running" become "interrupted"
render_workspace_box(current_workspace())  # shared server: whose runs these are, kept in the URL (local: nothing)

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


nav = st.navigation({"": [st.Page("pages/home.py", title="Home", icon=":material/home:", default=True)], **PAGES})
run_guarded(nav.run, shared=SHARED)
