"""Optional password gate for a dashboard opened to the network.

The dashboard listens on ``localhost`` by default (``.streamlit/config.toml``).
Whoever opens it to a LAN (``--server.address 0.0.0.0``) should set a password:
``FER_STUDIO_PASSWORD`` in the environment, or ``FER_STUDIO_PASSWORD = "..."``
in ``.streamlit/secrets.toml``. The router calls :func:`require_password`
before the sidebar or any page draws, and hides the page menu while
:func:`password_pending`; until the right password is given in this browser
session, the script stops there.

This is a shared secret, not user accounts: use it with HTTPS (a reverse
proxy) on networks you do not trust, since Streamlit serves plain HTTP.
"""

from __future__ import annotations

import hmac
import os

import streamlit as st

PASSWORD_VARIABLE = "FER_STUDIO_PASSWORD"
_UNLOCKED_KEY = "fer_access_unlocked"
_FORM_KEY = "fer_access_form"
_INPUT_KEY = "fer_access_password"


def configured_password() -> str | None:
    """The password from ``$FER_STUDIO_PASSWORD``, else from Streamlit secrets; ``None`` when neither is set."""
    from_environment = os.environ.get(PASSWORD_VARIABLE)
    if from_environment:
        return from_environment
    try:
        from_secrets = st.secrets.get(PASSWORD_VARIABLE)
    except (FileNotFoundError, KeyError, ValueError):  # no secrets.toml, or one Streamlit cannot parse
        return None
    return str(from_secrets) if from_secrets else None


def password_matches(given: str, expected: str) -> bool:
    """Compare in constant time, so the answer's timing does not reveal how much of the password was right."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def password_pending() -> bool:
    """True while a password is set and this browser session has not given it yet.

    The router hides the page menu then (``st.navigation(position="hidden")``),
    so the password page shows nothing but the form, not even the pages' names.
    """
    return configured_password() is not None and not st.session_state.get(_UNLOCKED_KEY)


def require_password() -> None:
    """Stop the script run with a password form unless no password is set or this session gave it."""
    expected = configured_password()
    if expected is None or st.session_state.get(_UNLOCKED_KEY):
        return
    st.title("FER Studio")
    with st.form(_FORM_KEY):
        given = st.text_input("Password", type="password", key=_INPUT_KEY)
        submitted = st.form_submit_button("Open")
    if submitted:
        if password_matches(given, expected):
            st.session_state[_UNLOCKED_KEY] = True
            st.session_state.pop(_INPUT_KEY, None)
            st.rerun()
        st.error("Wrong password.")
    st.stop()


LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def camera_blocked_reason(url: str | None) -> str | None:
    """Why a browser will not open the camera on the page at ``url``, or ``None`` when it will.

    Browsers give ``getUserMedia`` only to secure contexts: ``https://``
    pages, and ``http://`` pages on this machine (``localhost``, ``127.0.0.1``,
    ``[::1]``, ``*.localhost``). The dashboard opened to a LAN over plain
    http gets "navigator.mediaDevices is undefined" from the camera
    component (walk s9), so the page says why first.
    """
    from urllib.parse import urlsplit

    if not url:
        return None
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    if parts.scheme != "http" or host in LOCAL_HOSTS or host.endswith(".localhost"):
        return None
    from dashboard.text import literal

    return (f"This page is plain http on {literal(host, 60)}, and browsers open the camera only on https:// pages or on "
            "this machine's own address (http://localhost). Open the dashboard on the machine it runs on, or serve "
            "it over HTTPS: `streamlit run streamlit_app.py --server.sslCertFile cert.pem --server.sslKeyFile key.pem` "
            "(docs/live.md, \"Over a network\").")


def camera_blocked_ui() -> bool:
    """Warn when this page's address keeps the browser from opening the camera; True if it does."""
    reason = camera_blocked_reason(getattr(st.context, "url", None))
    if reason is not None:
        st.warning(reason, icon=":material/no_photography:")
    return reason is not None
