"""The tunelab dashboard: a Streamlit app over a results store.

Installed as the package `tunelab_dashboard` (see setup.py). Start it with
`tunelab dashboard --storage DIR`, or from a checkout with
`streamlit run dashboard/app.py -- --storage DIR`. Importing this package stays light (no
Streamlit), so the CLI can find the app without paying for it.
"""

from pathlib import Path

APP_SCRIPT = Path(__file__).with_name("app.py")
