"""Keras Lab entry point: page config, session defaults and the navigation over pages/.

Run with `streamlit run app.py` (optionally `-- --dataset iris` to preselect a dataset).
"""

import streamlit as st

from ui.errors import configure_error_details, run_guarded
from ui.jobs import job_manager
from ui.state import init_session, keep_gc_cheap
from ui.workspace import current_workspace, render_workspace_box

HOME_TITLE = "Home"


def main() -> None:
    # An emoji icon: Streamlit draws it as a data: URL, while a :material/ icon makes every browser fetch the
    # favicon from fonts.gstatic.com (the app promises to work offline and to send nothing elsewhere).
    st.set_page_config(page_title="Keras Lab", page_icon="🧪", layout="wide")
    shared = configure_error_details()  # visitors of a shared server get an error id, never a traceback
    init_session()
    keep_gc_cheap()  # once TensorFlow is loaded here, Streamlit's per-run gc.collect stays cheap
    job_manager()  # created once per server: runs a dead server left "running" become "interrupted"
    render_workspace_box(current_workspace())  # shared server: whose runs these are, kept in the URL

    # Sections hold the pages of one activity; none holds a lone page of its own name ("Train › Train").
    pages = {
        "Experiment": [
            st.Page("pages/data.py", title="Explore data", icon=":material/bar_chart:", url_path="data"),
            st.Page("pages/model.py", title="Build a model", icon=":material/view_in_ar:", url_path="model"),
            st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
            st.Page("pages/evaluate.py", title="Evaluate", icon=":material/target:", url_path="evaluate"),
            st.Page("pages/runs.py", title="Compare runs", icon=":material/compare:", url_path="runs"),
            st.Page("pages/sweep.py", title="Sweeps", icon=":material/tune:", url_path="sweep"),
        ],
        "Learn": [
            st.Page("pages/backprop.py", title="Backpropagation", icon=":material/calculate:", url_path="backprop"),
            st.Page("pages/faq.py", title="FAQ", icon=":material/help:", url_path="faq"),
        ],
    }
    home = st.Page("pages/home.py", title=HOME_TITLE, icon=":material/home:", default=True)
    page = st.navigation({"": [home], **pages})
    # The browser tab names the page ("Train · Keras Lab"), so several open tabs can be told apart. (Run
    # bare, `python app.py`, Streamlit gives its pages no title.)
    title = getattr(page, "title", HOME_TITLE)
    st.set_page_config(page_title="Keras Lab" if title == HOME_TITLE else f"{title} · Keras Lab")
    run_guarded(page.run, shared=shared)


# A training process spawned while a page runs this file through runpy (ui.state.ensure_app_entry, on a
# first direct link and in every AppTest run) re-imports it as "__mp_main__": it needs none of the app, and
# running it there would build a job manager and scan the run store in every training process.
if __name__ != "__mp_main__":
    main()
