"""Plotly figures for every page: pure functions, data in -> go.Figure out (no Streamlit, no Keras).

One module per page or topic (data, model, training, eval, learn); `style` holds the layout they share.
"""
