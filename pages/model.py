import streamlit as st

st.title("Build a model")
st.info("This page is not built yet.")
