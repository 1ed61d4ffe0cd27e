"""FER Studio entry point: `streamlit run streamlit_app.py`. A router, nothing else."""

import streamlit as st

from dashboard.access import require_password
from dashboard.data_source import data_source_sidebar

st.set_page_config(page_title="FER Studio", page_icon=":material/mood:", layout="wide")

# Sections of the sidebar menu. Add a page by adding its st.Page to a section.
PAGES = {
    "Data": [
        st.Page("pages/dataset.py", title="Dataset", icon=":material/photo_library:", default=True),
        st.Page("pages/quality.py", title="Data quality", icon=":material/rule:"),
    ],
    "Models": [
        st.Page("pages/training.py", title="Training", icon=":material/model_training:"),
        st.Page("pages/evaluation.py", title="Evaluation", icon=":material/fact_check:"),
        st.Page("pages/compare.py", title="Compare runs", icon=":material/compare_arrows:"),
    ],
    "Use": [
        st.Page("pages/predict.py", title="Predict", icon=":material/sentiment_satisfied:"),
    ],
}

navigation = st.navigation({section: pages for section, pages in PAGES.items() if pages})
require_password()  # FER_STUDIO_PASSWORD set: nothing below draws until it is given (dashboard/access.py)
data_source_sidebar()
navigation.run()
