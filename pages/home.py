"""Home: what FER Studio does, and the two ways to start: predict now, or load FER2013."""

import streamlit as st

from dashboard import home_widgets as widgets
from dashboard import url_state
from dashboard.data_source import PATH_PARAM, current_source, get_dataset, source_refusal
from dashboard.examples import available_examples
from dashboard.router import require_router
from dashboard.text import code

require_router()
url_state.keep_only({PATH_PARAM})  # Home reads no other parameter than the sidebar's typed data path

st.title("FER Studio")
st.markdown("Facial emotion recognition on **FER2013**: explore the dataset and its flaws, train Keras networks and "
            "watch them learn, judge them with a confusion matrix, and read the emotions on the faces in your own "
            "photos. Everything runs on this machine; nothing is sent anywhere.")

try_now, with_data = st.columns(2, gap="large")
with try_now:
    st.subheader(":material/sentiment_satisfied: Try it now")
    scores = widgets.bundled_models_text()
    st.markdown("Models trained by this project ship with it, so prediction needs no data"
                + (f": {scores}" if scores else ".")
                + " One click on a photo shows every face found, its emotion, and what the model looked at.")
    if scores:
        st.caption("Choose them under **Model** and **Average with (ensemble)** in the sidebar of the **Predict**, "
                   "**Video** and **Live** pages; an ensemble is slower by the number of its models.")
    # Cards of a fixed width that wrap: side by side on a phone too, where columns would stack each photo at
    # the screen's full width (walk s10: a 2,600-pixel-tall page).
    with st.container(horizontal=True, wrap=True, gap="small"):
        for photo in available_examples().values():
            with st.container(width=widgets.EXAMPLE_CARD_WIDTH):
                widgets.example_card_ui(photo, key=f"home_example_{photo.name}")
    st.page_link(widgets.PREDICT_PAGE, label="Upload your own photo, use the webcam, or a batch",
                 icon=":material/arrow_forward:")
    # Under the photos, not over them (walk s18: read as what the photo buttons do, which use the default model).
    best_ensemble = widgets.best_ensemble_query_params()
    if best_ensemble:
        st.page_link(widgets.PREDICT_PAGE, label="See the best ensemble on an example photo", query_params=best_ensemble,
                     icon=":material/arrow_forward:")

with with_data:
    st.subheader(":material/photo_library: Work with FER2013")
    refusal = source_refusal()
    dataset = get_dataset() if current_source() is not None or refusal else None  # draws a refusal's reason
    if current_source() is None:
        if not refusal:
            st.info("**No FER2013 data yet.** The Dataset, Data quality, Training and Evaluation pages need it.")
        st.markdown(widgets.where_to_get_fer2013())
    elif dataset is not None:
        st.success(f"FER2013 is loaded from {code(widgets.source_name(current_source()))}: {widgets.dataset_summary(dataset)}.",
                   icon=":material/check_circle:")
        st.page_link("pages/dataset.py", label="Browse the faces and the class balance", icon=":material/arrow_forward:")
        st.page_link("pages/quality.py", label="Find duplicates, leaks between splits and bad labels",
                     icon=":material/arrow_forward:")
        st.page_link("pages/training.py", label="Train a network and watch it learn", icon=":material/arrow_forward:")
        with st.expander("Where FER2013 comes from, and other ways to load it"):
            st.markdown(widgets.where_to_get_fer2013())
    else:
        st.markdown(widgets.where_to_get_fer2013())
