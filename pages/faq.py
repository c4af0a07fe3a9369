"""FAQ: searchable, grouped answers; /faq?q=<id or words> opens filtered (other pages link here)."""

import streamlit as st

from core import faq
from core.i18n import _
from ui.state import ensure_app_entry
from ui.text import md_literal

ensure_app_entry()

_QUERY = "faq_query"  # plain session key: survives visits to other pages, unlike widget keys
_WRITTEN = "faq_url_written"  # the ?q= this page last put in the URL


def _on_search() -> None:
    st.session_state[_QUERY] = st.session_state["faq_search_box"]


# The box is the truth and the URL follows it. A ?q= is taken into the box only when it arrives from outside
# (a link such as /faq?q=overfitting, on first load or from another page): one this page wrote itself is
# stale by the time the next query is typed, and taking it back would undo that query.
from_url = st.query_params.get("q")
if from_url is not None and from_url != st.session_state.get(_WRITTEN):
    st.session_state[_QUERY] = from_url
query = st.session_state.get(_QUERY, "")
st.session_state["faq_search_box"] = query  # the widget key is dropped on other pages: restore it

st.title(":material/help: " + _("Frequently asked questions"))
st.text_input(_("Search"), key="faq_search_box", on_change=_on_search, icon=":material/search:",
              placeholder=_("e.g. overfitting, learning rate, privacy, cifar"))
if query:
    st.query_params["q"] = query
elif "q" in st.query_params:
    del st.query_params["q"]
st.session_state[_WRITTEN] = query or None

groups = faq.groups()
total = len(faq.entries())
hits = faq.search(query)
if query:
    st.caption(_("{hits} of {total} answers match “{query}”.").format(hits=len(hits), total=total,
                                                                    query=md_literal(query)))
    if not hits:
        st.info(_("Nothing matches. Try a shorter word, or clear the search to see every answer."),
                icon=":material/search_off:")
else:
    jump = " · ".join(f"[{title}](#{group})" for group, title in groups.items())
    st.caption(_("{total} answers in {groups} groups. Jump to: {links}").format(
        total=total, groups=len(groups), links=jump))


def _show(entry: faq.FaqEntry) -> None:
    with st.container(border=True):
        st.subheader(entry.question, anchor=entry.id)
        st.markdown(entry.answer)
        if entry.links:
            cols = st.columns(len(entry.links) + 1)
            for col, (url_path, label) in zip(cols, entry.links, strict=False):
                # app.py serves each pages/<name>.py at /<name> (tests/core/test_faq.py renders every link)
                col.page_link(f"pages/{url_path}.py", label=label, icon=":material/arrow_forward:")


if hits and hits[0].id == query.strip().lower():  # a link to one answer: show it first
    _show(hits[0])
    hits = hits[1:]
    if hits:
        st.caption(_("Other answers that mention it:"))
for group, entries in faq.by_group(hits).items():
    st.header(groups[group], anchor=group, divider="gray")
    for entry in entries:
        _show(entry)
