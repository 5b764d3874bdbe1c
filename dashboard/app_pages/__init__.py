"""One Streamlit page per file; app.py routes between them with st.navigation."""
