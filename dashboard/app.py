"""tunelab dashboard: the entry script. It routes between the pages (st.navigation) and keeps
the chosen study; each page lives in its own file under app_pages/.

Run with `tunelab dashboard --storage DIR`, or `streamlit run dashboard/app.py -- --storage DIR`.
It reads only the results store and never imports Ray.
"""

from __future__ import annotations

import streamlit as st

from tunelab_dashboard import loaders, session

st.set_page_config(page_title="tunelab", page_icon=":material/tune:", layout="wide")

PAGES = [
    st.Page("app_pages/studies.py", title="Studies", icon=":material/list:", default=True),
    st.Page("app_pages/overview.py", title="Overview", icon=":material/dashboard:"),
    st.Page("app_pages/early_stopping.py", title="Early stopping", icon=":material/show_chart:"),
    st.Page("app_pages/bias_variance.py", title="Bias & variance", icon=":material/target:"),
    st.Page("app_pages/hyperparameters.py", title="Hyperparameters", icon=":material/tune:"),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("app_pages/trust.py", title="Trust", icon=":material/verified:"),
    st.Page("app_pages/pareto.py", title="Pareto", icon=":material/scatter_plot:"),
]

page = st.navigation(PAGES)
storage = session.storage_root()
summaries = loaders.study_summaries(storage)
session.study_picker(summaries)
st.sidebar.caption(f"Storage: `{storage}`")
# Before the page: a page that has nothing to show stops the script, and the live refresh
# must still be scheduled.
session.keep_fresh(storage)
page.run()
