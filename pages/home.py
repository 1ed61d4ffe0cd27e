"""Home: what FER Studio does, and the two ways to start: predict now, or load FER2013."""

import streamlit as st

from dashboard import home_widgets as widgets
from dashboard.data_source import current_source, get_dataset, source_refusal
from dashboard.examples import available_examples
from dashboard.router import require_router

require_router()

st.title("FER Studio")
st.markdown("Facial emotion recognition on **FER2013**: explore the dataset and its flaws, train Keras networks and "
            "watch them learn, judge them with a confusion matrix, and read the emotions on the faces in your own "
            "photos. Everything runs on this machine; nothing is sent anywhere.")

try_now, with_data = st.columns(2, gap="large")
with try_now:
    st.subheader(":material/sentiment_satisfied: Try it now")
    headline = widgets.bundled_model_headline()
    ensemble = widgets.bundled_ensemble_headline()
    st.markdown("A model trained by this project ships with it, so prediction needs no data"
                + (f": it scores {headline}" if headline else "")
                + (f", and {ensemble} (**Average with** in the sidebar: slower, more accurate)." if ensemble and headline
                   else ".") + " One click on a photo shows every face found, its emotion, and what the model looked at.")
    examples = available_examples()
    for column, photo in zip(st.columns(len(examples) or 1), examples.values()):
        with column:
            widgets.example_card_ui(photo, key=f"home_example_{photo.name}")
    st.page_link(widgets.PREDICT_PAGE, label="Upload your own photo, use the webcam, or a batch",
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
        st.success(f"FER2013 is loaded from `{widgets.source_name(current_source())}`: {widgets.dataset_summary(dataset)}.",
                   icon=":material/check_circle:")
        st.page_link("pages/dataset.py", label="Browse the faces and the class balance", icon=":material/arrow_forward:")
        st.page_link("pages/quality.py", label="Find duplicates, leaks between splits and bad labels",
                     icon=":material/arrow_forward:")
        st.page_link("pages/training.py", label="Train a network and watch it learn", icon=":material/arrow_forward:")
        with st.expander("Where FER2013 comes from, and other ways to load it"):
            st.markdown(widgets.where_to_get_fer2013())
    else:
        st.markdown(widgets.where_to_get_fer2013())
