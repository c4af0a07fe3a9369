import streamlit as st

st.title("Backpropagation")
st.info("This page is not built yet.")
