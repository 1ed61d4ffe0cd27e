"""Predict: emotions of the faces in a photo, a webcam snapshot or a batch of photos.

Faces are found offline (MTCNN or OpenCV's Haar cascade), framed like FER2013
faces, classified by the chosen model and explained with Grad-CAM. The model
loads once per process (and again only when its file changes); TensorFlow is
imported on first use, not when the app starts. With no upload, one click on
an example photo (``examples/``, free licences) shows the whole pipeline.
"""

import streamlit as st

from dashboard import predict_widgets as widgets
from dashboard.access import camera_blocked_ui
from dashboard.examples import available_examples
from dashboard.router import require_router
from dashboard.url_state import remember_choice, url_choice

require_router()

st.title("Predict")
st.caption("Each face gets a box and its top emotion; below, the 48×48 face as the model saw it, "
           "a Grad-CAM map of what drove the prediction, and all seven probabilities.")

settings = widgets.settings_sidebar_ui()
loaded = widgets.load_model_ui(settings.model_paths) if settings is not None else None

if loaded is not None:
    photo_tab, webcam_tab, batch_tab = st.tabs(["Photo", "Webcam", "Batch"])
    with photo_tab:
        # The photo shown is the last one chosen: an upload unselects the example, and an example clears the
        # upload (a new uploader key), so the pills and the URL never name a photo that is not shown (walk s19).
        upload = st.file_uploader("Photo", type=widgets.PHOTO_TYPES, key=f"predict_photo_{widgets.upload_round()}",
                                  help=widgets.PHOTO_HELP, on_change=widgets.unselect_example)
        examples = available_examples()
        url_choice("predict_example", [None, *examples], None, param="example", noun="example photo")
        example = st.pills("No photo at hand? Try an example", list(examples), key="predict_example",
                           format_func=lambda name: examples[name].caption, on_change=widgets.clear_upload,
                           help="Photos shipped in examples/: " + "; ".join(
                               f"{photo.file} ({photo.licence})" for photo in examples.values()))
        remember_choice(example if upload is None else None, param="example")
        if upload is not None:
            widgets.photo_ui(upload.getvalue(), upload.name, loaded, settings, key="photo")
        elif example is not None:
            photo = examples[example]
            widgets.photo_ui(photo.read(), photo.file, loaded, settings, key="photo")
    with webcam_tab:
        camera_blocked_ui()
        snapshot = st.camera_input("Take a snapshot", key="predict_camera")
        if snapshot is not None:
            widgets.photo_ui(snapshot.getvalue(), "webcam snapshot", loaded, settings, key="webcam")
    with batch_tab:
        uploads = st.file_uploader("Photos, or zips of photos", type=[*widgets.PHOTO_TYPES, "zip"],
                                   accept_multiple_files=True, key="predict_batch",
                                   help="One row per face; files that cannot be read are listed with the reason")
        if uploads:
            widgets.batch_ui([(item.name, item.getvalue()) for item in uploads], loaded, settings)
        else:
            st.caption("The table lists file, face, box, top emotion and all seven probabilities, and downloads as CSV.")
