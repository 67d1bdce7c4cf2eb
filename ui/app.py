"""Paper Assistant in the browser: `make run`, or `streamlit run ui/app.py`.

The entry point: page setup, first-run index build, the sidebar, then the page.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run ui/app.py` puts ui/ on the path, not the repository; pages import `ui.common`.
REPO = str(Path(__file__).resolve().parents[1])
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from ui import common  # noqa: E402 - needs the path above

st.set_page_config(
    page_title="Paper Assistant",
    page_icon=":material/menu_book:",
    layout="wide",
    initial_sidebar_state="expanded",
)

settings = common.settings()
common.build_index_if_missing(settings)

pages = st.navigation(
    [
        st.Page("chat.py", title="Chat", icon=":material/forum:", default=True),
        st.Page("summary.py", title="Summary", icon=":material/summarize:"),
        st.Page("evals.py", title="Evals", icon=":material/monitoring:"),
        st.Page("papers.py", title="Papers", icon=":material/library_books:"),
    ]
)
common.sidebar(settings)
pages.run()
