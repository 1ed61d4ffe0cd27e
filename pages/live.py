"""Live: emotions of the faces in the browser's camera stream, in real time.

The camera streams to the server over WebRTC (streamlit-webrtc); every frame is
analysed (faces tracked with stable ids, one model call per frame, emotions
smoothed per face) and sent back with boxes and labels drawn. Below the
stream a panel refreshes itself once a second: measured frames/s, the faces
now, a timeline of the most prominent face and the session's CSV.
"""

import streamlit as st

from dashboard import live_widgets as widgets
from dashboard import predict_widgets
from dashboard.router import require_router
from dashboard.video_widgets import stream_settings_sidebar_ui

require_router()

st.title("Live")
st.caption("Press **Start** and allow the camera. Boxes, face ids and smoothed emotions are drawn on the returned "
           "video; nothing leaves this machine (no STUN/TURN server unless you configure one, see docs/live.md). "
           "If the browser refuses the camera (NotAllowedError), allow it for this page in its site settings (the "
           "camera icon in the address bar), then press **Start** again. NotFoundError means this device has no "
           "camera the browser can use: analyse a photo on **Predict** or a recorded video on **Video** instead.")

chosen = stream_settings_sidebar_ui("live")
loaded = predict_widgets.load_model_ui(chosen[0]) if chosen is not None else None

if loaded is not None:
    model_paths, settings = chosen
    session = widgets.live_session(loaded, model_paths, settings)
    stream_column, panel_column = st.columns([3, 2])
    with stream_column:
        widgets.stream_ui(session)
        if st.button("Clear the session's data", key="live_reset", help="Forget faces, timeline and CSV rows"):
            session.reset()
            st.session_state.pop(widgets.EARLIER_PARTS_KEY, None)  # and the parts recorded under earlier settings
    with panel_column:
        widgets.live_panel_ui()
