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
Guessing is slowed for the whole server, not per browser session (a new tab
is a new session): :class:`PasswordThrottle` lets each address make a few
wrong guesses, then makes it wait, twice as long after each further one, and
does the same for all addresses together, so many addresses do not multiply
the rate.
"""

from __future__ import annotations

import hmac
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0


class PasswordThrottle:
    """How long a client must wait before its next password guess; shared by every session of the server.

    Each client (an IP address) gets ``free_failures`` wrong guesses, then
    waits ``base_delay`` seconds after the next, twice that after the one
    after, and so on up to ``max_delay``. All clients together get
    ``free_failures_all`` before the same rule applies to everyone: a guesser
    with many addresses is slowed as well, at the cost of making others wait
    too while it goes on. A client's count is forgotten ``forget_after``
    seconds after its last wrong guess, and at once when it gives the right
    password. Thread-safe: Streamlit runs each session's script in its own
    thread.
    """

    EVERYONE = "*"
    # Addresses remembered at most: many addresses (an IPv6 block) must not grow the server's memory without bound.
    MAX_CLIENTS = 10_000

    def __init__(self, *, free_failures: int = 5, free_failures_all: int = 30, base_delay: float = 2.0,
                 max_delay: float = 300.0, forget_after: float = 900.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.free_failures = free_failures
        self.free_failures_all = free_failures_all
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self._clock = clock
        self._failures: dict[str, _Failures] = {}
        self._lock = threading.Lock()

    def _delay(self, failures: _Failures, free: int) -> float:
        over = failures.count - free
        if over <= 0:
            return 0.0
        return min(self.max_delay, self.base_delay * 2.0 ** min(over - 1, 30))

    def _current(self, key: str, now: float) -> _Failures:
        failures = self._failures.get(key)
        if failures is not None and now - failures.last >= self.forget_after:
            del self._failures[key]
            failures = None
        return failures or _Failures()

    def wait_seconds(self, client: str) -> float:
        """Seconds until ``client`` may guess again; 0.0 when it may guess now."""
        with self._lock:
            now = self._clock()
            waits = []
            for key, free in ((client, self.free_failures), (self.EVERYONE, self.free_failures_all)):
                failures = self._current(key, now)
                waits.append(failures.last + self._delay(failures, free) - now)
            return max(0.0, *waits)

    def record_failure(self, client: str) -> None:
        """Count a wrong guess from ``client`` (and from everyone)."""
        with self._lock:
            now = self._clock()
            for key in (client, self.EVERYONE):
                failures = self._current(key, now)
                self._failures[key] = _Failures(failures.count + 1, now)
            if len(self._failures) > self.MAX_CLIENTS:
                self._forget_oldest(now)

    def _forget_oldest(self, now: float) -> None:
        for key in [key for key, failures in self._failures.items() if now - failures.last >= self.forget_after]:
            del self._failures[key]
        if len(self._failures) > self.MAX_CLIENTS:  # still full: keep the most recent half (everyone's count stays)
            recent = sorted(self._failures, key=lambda key: self._failures[key].last)[-(self.MAX_CLIENTS // 2):]
            everyone = self._failures.get(self.EVERYONE)
            self._failures = {key: self._failures[key] for key in recent}
            if everyone is not None:
                self._failures[self.EVERYONE] = everyone

    def record_success(self, client: str) -> None:
        """Forget ``client``'s wrong guesses: it knows the password."""
        with self._lock:
            self._failures.pop(client, None)


_THROTTLE = PasswordThrottle()


def password_throttle() -> PasswordThrottle:
    """The server's one throttle, shared by every session and tab.

    A module global, not ``st.cache_resource``: any browser, signed in or
    not, can send Streamlit's "clear cache" message, which empties every
    resource cache, and that would give a guesser fresh guesses.
    """
    return _THROTTLE


def reset_password_throttle() -> None:
    """Forget every wrong guess (a restart of the server does the same; tests use it)."""
    global _THROTTLE
    _THROTTLE = PasswordThrottle()


def client_address() -> str:
    """This session's IP address; "localhost" for a browser on this machine (Streamlit gives None then)."""
    address = getattr(st.context, "ip_address", None)
    return address if isinstance(address, str) and address else "localhost"


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
        throttle, client = password_throttle(), client_address()
        wait = throttle.wait_seconds(client)
        if wait > 0:  # not even compared: a guess made while waiting tells the guesser nothing
            st.error(f"Too many wrong passwords. Try again in {math.ceil(wait)} s.")
        elif password_matches(given, expected):
            throttle.record_success(client)
            st.session_state[_UNLOCKED_KEY] = True
            st.session_state.pop(_INPUT_KEY, None)
            st.rerun()
        else:
            throttle.record_failure(client)
            wait = throttle.wait_seconds(client)
            st.error("Wrong password." + (f" Try again in {math.ceil(wait)} s." if wait > 0 else ""))
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
