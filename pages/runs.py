import streamlit as st

st.title("Compare runs")
st.info("This page is not built yet.")
