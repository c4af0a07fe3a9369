"""The only Streamlit-aware helpers shared by pages (session state, cached loaders, widgets)."""
