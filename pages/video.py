"""Video: upload a video file, track every face and follow its emotions over time.

Each face gets a stable id; its shown emotion is smoothed over the last frames
(vote or EMA). The analysis runs in a background worker, so a reload or a
closed tab does not lose it (its id stays in the URL). Results: an annotated
video (playable and downloadable), a summary per face, an emotion timeline per
face and the per-frame CSV. The same analysis runs from the command line:
``python -m core video FILE``.
"""

import streamlit as st

from dashboard import video_widgets as widgets
from dashboard.router import require_router

require_router()

st.title("Video")
st.caption("Upload a video: every face is tracked with a stable id, classified on every frame and its emotion smoothed "
           "over time. You get the annotated video, a summary per face, emotion timelines and the CSV.")

chosen = widgets.stream_settings_sidebar_ui("video")

if chosen is not None:
    model_paths, settings = chosen
    widgets.keep_worker_warm(model_paths, settings)
    upload = st.file_uploader("Video", type=widgets.VIDEO_TYPES, key="video_upload", max_upload_size=widgets.MAX_VIDEO_MB,
                              help=widgets.UPLOAD_HELP)
    if upload is not None:
        job = widgets.start_job_ui(upload.getvalue(), upload.name, settings, model_paths, upload_id=upload.file_id)
    else:
        job = widgets.linked_job_ui()
        if job is None:
            st.caption("One CSV row per face per frame: frame, time, face id, box, shown emotion and the seven probabilities.")
    if job is not None:
        widgets.video_job_ui(job, can_restart=upload is not None, current=(model_paths, settings))
