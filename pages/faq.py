import streamlit as st

st.title("FAQ")
st.info("This page is not built yet.")
