import streamlit as st

st.title("Explore data")
st.info("This page is not built yet.")
