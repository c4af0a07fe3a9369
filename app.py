"""Keras Lab entry point: page config, session defaults and the navigation over pages/.

Run with `streamlit run app.py` (optionally `-- --dataset iris` to preselect a dataset).
"""

import streamlit as st

from core.i18n import _
from ui.errors import configure_error_details, run_guarded
from ui.i18n import init_language, language_switch
from ui.jobs import job_manager
from ui.state import init_session, keep_gc_cheap
from ui.workspace import current_workspace, render_workspace_box


def main() -> None:
    # An emoji icon: Streamlit draws it as a data: URL, while a :material/ icon makes every browser fetch the
    # favicon from fonts.gstatic.com (the app promises to work offline and to send nothing elsewhere).
    st.set_page_config(page_title="Keras Lab", page_icon="🧪", layout="wide")
    init_language()  # this visitor's language, for every text of this run (core.i18n)
    shared = configure_error_details()  # visitors of a shared server get an error id, never a traceback
    init_session()
    keep_gc_cheap()  # once TensorFlow is loaded here, Streamlit's per-run gc.collect stays cheap
    job_manager()  # created once per server: runs a dead server left "running" become "interrupted"
    language_switch()
    render_workspace_box(current_workspace())  # shared server: whose runs these are, kept in the URL

    # Sections hold the pages of one activity; none holds a lone page of its own name ("Train › Train").
    pages = {
        _("Experiment"): [
            st.Page("pages/data.py", title=_("Explore data"), icon=":material/bar_chart:", url_path="data"),
            st.Page("pages/model.py", title=_("Build a model"), icon=":material/view_in_ar:", url_path="model"),
            st.Page("pages/train.py", title=_("Train"), icon=":material/model_training:", url_path="train"),
            st.Page("pages/evaluate.py", title=_("Evaluate"), icon=":material/target:", url_path="evaluate"),
            st.Page("pages/runs.py", title=_("Compare runs"), icon=":material/compare:", url_path="runs"),
            st.Page("pages/sweep.py", title=_("Sweeps"), icon=":material/tune:", url_path="sweep"),
        ],
        _("Learn"): [
            st.Page("pages/backprop.py", title=_("Backpropagation"), icon=":material/calculate:",
                    url_path="backprop"),
            st.Page("pages/faq.py", title=_("FAQ"), icon=":material/help:", url_path="faq"),
        ],
    }
    home_title = _("Home")
    home = st.Page("pages/home.py", title=home_title, icon=":material/home:", default=True)
    page = st.navigation({"": [home], **pages})
    # The browser tab names the page ("Train · Keras Lab"), so several open tabs can be told apart. (Run
    # bare, `python app.py`, Streamlit gives its pages no title.)
    title = getattr(page, "title", home_title)
    st.set_page_config(page_title="Keras Lab" if title == home_title else f"{title} · Keras Lab")
    run_guarded(page.run, shared=shared)


# A training process spawned while a page runs this file through runpy (ui.state.ensure_app_entry, on a
# first direct link and in every AppTest run) re-imports it as "__mp_main__": it needs none of the app, and
# running it there would build a job manager and scan the run store in every training process.
if __name__ != "__mp_main__":
    main()
