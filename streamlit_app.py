"""FER Studio entry point: `streamlit run streamlit_app.py`. A router, nothing else."""

import streamlit as st

from dashboard import url_state
from dashboard.access import password_pending, require_password
from dashboard.data_source import data_source_sidebar
from dashboard.keras_session import keep_keras_session
from dashboard.warm_up import warm_up_in_background

# An emoji favicon is drawn in the browser (an inline SVG); a ":material/...:" one is fetched from fonts.gstatic.com
# on every page load, and an offline tool contacts no one.
st.set_page_config(page_icon="🙂", layout="wide")
keep_keras_session()  # no keras.backend.clear_session() + full GC after every run (dashboard/keras_session.py)

# Pages that never read FER2013: no dataset picker in their sidebar, so that the
# dataset's upload box is not the first one a photo can be dropped on.
PAGES_WITHOUT_DATASET = {"predict", "live", "video"}

# Sections of the sidebar menu. Add a page by adding its st.Page to a section.
PAGES = {
    "": [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    ],
    "Data": [
        st.Page("pages/dataset.py", title="Dataset", icon=":material/photo_library:"),
        st.Page("pages/quality.py", title="Data quality", icon=":material/rule:"),
    ],
    "Models": [
        st.Page("pages/training.py", title="Training", icon=":material/model_training:"),
        st.Page("pages/evaluation.py", title="Evaluation", icon=":material/fact_check:"),
        st.Page("pages/compare.py", title="Compare runs", icon=":material/compare_arrows:"),
    ],
    "Use": [
        st.Page("pages/predict.py", title="Predict", icon=":material/sentiment_satisfied:"),
        st.Page("pages/live.py", title="Live", icon=":material/videocam:"),
        st.Page("pages/video.py", title="Video", icon=":material/movie:"),
    ],
}

# Before the password is given, the menu is hidden too: the password page shows the form and nothing else.
navigation = st.navigation({section: pages for section, pages in PAGES.items() if pages},
                           position="hidden" if password_pending() else "sidebar")
require_password()  # FER_STUDIO_PASSWORD set: nothing below draws until it is given (dashboard/access.py)
st.set_page_config(page_title=f"{navigation.title} · FER Studio")  # each page its own browser-tab title
url_state.start_page(navigation.url_path)
if navigation.url_path not in PAGES_WITHOUT_DATASET:
    data_source_sidebar()
navigation.run()
# Once a page is drawn: TensorFlow, the default model and detector load while the user reads it (dashboard/warm_up.py).
warm_up_in_background()
