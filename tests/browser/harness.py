"""Helpers for real-browser tests: a Streamlit server in a subprocess, headless Chromium, page waits.

Used by ``tests/browser`` (through its conftest fixtures) and by the
browser-driven fault tests in ``tests/faults``. Playwright drives Debian's
Chromium (``/usr/bin/chromium``); nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_FER2013 = REPO_ROOT.parent / "shared" / "fer2013"
CHROMIUM = Path(os.environ.get("FER_STUDIO_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Chromium's fake camera: it plays a .y4m file and needs no permission prompt.
FAKE_CAMERA_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
# Generous: two shared CPU cores, TensorFlow start-up inside the server, a training job beside us.
APP_TIMEOUT_MS = int(os.environ.get("FER_STUDIO_BROWSER_TIMEOUT_MS", "180000"))
VIEWPORT = {"width": 1400, "height": 1000}
MAX_SHOT_HEIGHT = 12_000


def require_chromium() -> None:
    """Skip the calling test, saying why, when Chromium or Playwright is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"browser test: {CHROMIUM} is missing (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("browser test: the playwright package is not installed (requirements-dev.txt)")


def require_dataset() -> Path:
    """The shared FER2013 folder, or skip the calling test saying where it was looked for."""
    if not (SHARED_FER2013 / "train").is_dir():
        pytest.skip(f"needs the FER2013 image folders at {SHARED_FER2013} (integration test)")
    return SHARED_FER2013


# ---------------------------------------------------------------- Streamlit server


def free_port() -> int:
    """An unused local TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class StreamlitServer:
    """A ``streamlit run streamlit_app.py`` subprocess in its own process group."""

    process: subprocess.Popen
    url: str
    runs_dir: Path
    cache_dir: Path
    log_path: Path
    env: dict[str, str] = field(repr=False)

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's combined stdout/stderr (for failure messages)."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def stop(self) -> None:
        """Terminate the server's process group (SIGTERM, then SIGKILL) and any training worker it started."""
        _stop_group(self.process)
        _stop_run_workers(self.runs_dir)


def _stop_group(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(grace_s)


def _stop_run_workers(runs_dir: Path) -> None:
    """Kill training workers of runs under ``runs_dir`` that are still alive.

    Workers run in their own session (so that closing the app does not stop a
    run); the ones our test server started must not outlive the tests.
    """
    from core import runs

    if not runs_dir.is_dir():
        return
    for run_dir in runs_dir.iterdir():
        pid = (runs.read_json(run_dir / "status.json", {}) or {}).get("pid")
        if not pid:
            continue
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(run_dir) in command:  # our worker, not a recycled pid
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


def start_streamlit(
    workdir: Path,
    *,
    extra_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    timeout_s: float = 120.0,
) -> StreamlitServer:
    """Start the app on a free port with its runs and caches under ``workdir``; wait for ``/_stcore/health``.

    ``FER2013_DIR`` points at the shared data when it exists (else it is left
    unset, and the pages say there is no data). Raises ``RuntimeError`` with
    the server log if it does not come up within ``timeout_s``.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    runs_dir, cache_dir = workdir / "runs", workdir / "cache"
    runs_dir.mkdir(exist_ok=True)
    cache_dir.mkdir(exist_ok=True)
    port = free_port()
    server_env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    server_env.pop("FER2013_DIR", None)
    if (SHARED_FER2013 / "train").is_dir():
        server_env["FER2013_DIR"] = str(SHARED_FER2013)
    server_env.update({
        "FER_STUDIO_RUNS": str(runs_dir),
        "FER_STUDIO_CACHE": str(cache_dir),
        "FER_STUDIO_VIDEO_STANDBY": "1",  # as a user's server: the Video page keeps a worker warm
        "FER_STUDIO_WARM_UP": "1",  # as a user's server: TensorFlow and the default model load after the first page
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONUNBUFFERED": "1",
    })
    server_env.update(env or {})
    log_path = workdir / f"streamlit-{port}.log"
    command = [
        sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",  # other helpers edit pages while we test: no reruns on save
        *extra_args,
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=server_env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = StreamlitServer(process, f"http://127.0.0.1:{port}", runs_dir, cache_dir, log_path, server_env)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return server
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"streamlit did not answer /_stcore/health within {timeout_s:.0f}s:\n{server.log_tail()}")


# ---------------------------------------------------------------- browser


_playwright = None


def shared_playwright():
    """One Playwright driver per test process (the sync API cannot be started twice in one thread)."""
    global _playwright
    if _playwright is None:
        from playwright.sync_api import sync_playwright

        _playwright = sync_playwright().start()
    return _playwright


def stop_shared_playwright() -> None:
    """Stop the driver started by :func:`shared_playwright` (call once, at the end of the session)."""
    global _playwright
    if _playwright is not None:
        _playwright.stop()
        _playwright = None


def launch_chromium(extra_args: list[str] | tuple[str, ...] = ()):
    """Launch headless Debian Chromium with the flags that keep it offline and quiet."""
    require_chromium()
    return shared_playwright().chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=[*CHROMIUM_ARGS, *extra_args]
    )


# Counts finished script runs, so that a test can wait for the run its own click caused
# (an upload first goes over HTTP, so the rerun may start seconds after the click).
# It reads the server's own "script finished" message (ForwardMsg field 6, statuses
# FINISHED_SUCCESSFULLY = 0 and FINISHED_WITH_COMPILE_ERROR = 1; not a fragment run or a
# run cut short by a newer one) off the WebSocket. Watching the stApp element's
# script-state attribute instead misses runs: a page change does not pass through
# "rerunRequested", and when the "running" and "finished" messages arrive together,
# React may render once, so the attribute never leaves "notRunning" (the likely cause of a
# CI run waiting 180 s after a menu click).
# The count goes up a moment after the message, once the client has drawn that run.
_RUN_COUNTER_JS = """
(() => {
  window.__stRunsDone = 0;
  window.__stLoadId = Math.random();
  const SCRIPT_FINISHED = 6;
  function finishedStatus(buffer) {
    const bytes = new Uint8Array(buffer);
    let i = 0;
    const varint = () => {
      let value = 0, scale = 1, byte;
      do { byte = bytes[i++]; value += (byte & 0x7f) * scale; scale *= 128; } while (byte & 0x80 && i < bytes.length);
      return value;
    };
    while (i < bytes.length) {
      const tag = varint(), field = Math.floor(tag / 8), wire = tag & 7;
      if (wire === 0) { const value = varint(); if (field === SCRIPT_FINISHED) return value; }
      else if (wire === 2) { const length = varint(); i += length; }  // not `i += varint()`: that adds to the old i
      else if (wire === 1) i += 8;
      else if (wire === 5) i += 4;
      else return -1;
    }
    return -1;
  }
  const NativeWebSocket = window.WebSocket;
  window.WebSocket = class extends NativeWebSocket {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', event => {
        window.__stMessages = (window.__stMessages || 0) + 1;
        if (!(event.data instanceof ArrayBuffer)) return;
        const status = finishedStatus(event.data);
        if (status === 0 || status === 1) setTimeout(() => { window.__stRunsDone++; }, 100);
      });
    }
  };
})();
"""


# Set, e.g. to 700, to delay each of Streamlit's lazily loaded code chunks (images, charts, tables...): a test
# that reads elements as soon as a script run ends, without waiting for them, then fails at once, as it would
# now and then on a busy CI machine (session 16: 0 of 70 faces counted).
CHUNK_DELAY_MS = int(os.environ.get("FER_STUDIO_BROWSER_CHUNK_DELAY_MS", "0"))
_LAZY_CHUNK = re.compile(r".*/static/js/(?!index\.)[^/]+\.js(\?.*)?$")


def _delay_lazy_chunks(route, request=None) -> None:
    time.sleep(CHUNK_DELAY_MS / 1000)
    route.continue_()


def new_page(browser, **context_options):
    """A page in a fresh browser context (its own cookies, so its own Streamlit session); ``context_options`` go to
    ``browser.new_context`` (a phone's ``viewport``, ``is_mobile``...; the desktop :data:`VIEWPORT` by default)."""
    context = browser.new_context(**{"viewport": VIEWPORT, **context_options})
    context.set_default_timeout(APP_TIMEOUT_MS)
    context.add_init_script(_RUN_COUNTER_JS)
    if CHUNK_DELAY_MS > 0:
        context.route(_LAZY_CHUNK, _delay_lazy_chunks)
    return context.new_page()


@contextlib.contextmanager
def expect_rerun(page, timeout_ms: int = APP_TIMEOUT_MS):
    """Wait, after the ``with`` body, for a script run that finished after it began (then for the app to settle).

    Raises ``AssertionError``, with what the page shows of the app's state, when the action caused no rerun.
    """
    before = page.evaluate("() => [window.__stRunsDone || 0, window.__stLoadId, window.__stMessages || 0]")
    yield
    # A click on a link may also load the document afresh (the counter restarts): that is a new run too.
    try:
        page.wait_for_function("([runs, load]) => window.__stLoadId !== load || (window.__stRunsDone || 0) > runs",
                               arg=before[:2], timeout=timeout_ms)
    except Exception as error:
        raise AssertionError(f"no script run finished within {timeout_ms / 1000:.0f} s of the action; "
                             f"the page then: {_app_state(page, before)}") from error
    wait_for_app(page, timeout_ms)


def _app_state(page, before) -> str:
    """What the page shows of the app's state, for a timeout's message (never raises)."""
    try:
        state = page.evaluate("""() => {
          const app = document.querySelector("[data-testid='stApp']");
          return {url: location.href,
                  script: app && app.getAttribute('data-test-script-state'),
                  connection: app && app.getAttribute('data-test-connection-state'),
                  runs_done: window.__stRunsDone || 0, messages: window.__stMessages || 0,
                  status_widget: (document.querySelector("[data-testid='stStatusWidget']") || {}).innerText || ''};
        }""")
    except Exception as error:  # noqa: BLE001 - a closed page must not hide the timeout
        return f"(could not read it: {error})"
    state["messages_since_action"] = state.pop("messages") - before[2]
    state["runs_done_before"] = before[0]
    return ", ".join(f"{key}={value!r}" for key, value in state.items())


def wait_for_app(page, timeout_ms: int = APP_TIMEOUT_MS) -> None:
    """Wait until the app is connected and no script run is in progress.

    The same check Streamlit's own end-to-end tests use: the ``stApp``
    element's connection and script-run state attributes. A short pause first
    lets a just-triggered rerun start, so we do not see the state before it.
    """
    page.wait_for_timeout(250)
    page.wait_for_selector("[data-testid='stApp'][data-test-connection-state='CONNECTED']", timeout=timeout_ms)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout_ms)
    page.wait_for_timeout(150)


def open_app(page, server: StreamlitServer, path: str = "") -> None:
    """Load ``server.url/path`` and wait for the first script run to finish."""
    page.goto(f"{server.url}/{path.lstrip('/')}", wait_until="domcontentloaded")
    wait_for_app(page)


def nav_link(page, title: str):
    """The sidebar navigation link of the page titled ``title``."""
    # The link's text also holds its icon's ligature name ("model_training"): match the label span.
    return page.locator("[data-testid='stSidebarNav'] a").filter(has=page.get_by_text(title, exact=True))


def goto_page(page, server: StreamlitServer, url_path: str, title: str) -> None:
    """Open the app's page ``url_path`` by its URL and wait until the router's menu, with ``title``, is drawn.

    A fresh server's first visit to a page URL reruns through the router
    (``dashboard.router``), so the first finished run may not be the last.
    """
    open_app(page, server, url_path)
    nav_link(page, title).first.wait_for()  # the router's menu (a bare page would list file names)
    wait_for_app(page)
    assert re.search(rf"/{re.escape(url_path)}(\?|$)", page.url), f"{url_path} is not a page of the app: {page.url}"


def exception_texts(page) -> list[str]:
    """Texts of every Streamlit exception box on the page."""
    return [box.inner_text() for box in page.locator("[data-testid='stException']").all()]


def assert_no_exception(page) -> None:
    """Fail with the traceback text if any Streamlit exception box is on the page."""
    found = exception_texts(page)
    assert not found, "Streamlit exception on the page:\n" + "\n---\n".join(found)


def alert_texts(page) -> list[str]:
    """Texts of every ``st.error``/``st.warning``/``st.info``/``st.success`` box on the page."""
    return [box.inner_text() for box in page.locator("[data-testid='stAlert']").all()]


def save_screenshot(page, name: str) -> Path:
    """Save a full-page screenshot as ``test-artifacts/screenshots/<name>.png``; return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    # Streamlit scrolls its main area inside a container, so "full page" alone
    # would stop at the window: grow the window to the content for the shot.
    viewport = page.viewport_size or VIEWPORT
    height = page.evaluate(
        "() => Math.max(document.body.scrollHeight,"
        " ...[...document.querySelectorAll('[data-testid=stMain], [data-testid=stAppViewContainer], section')]"
        ".map(el => el.scrollHeight))"
    )
    page.set_viewport_size({"width": viewport["width"], "height": int(min(max(height, viewport["height"]), MAX_SHOT_HEIGHT))})
    try:
        page.wait_for_timeout(300)  # let charts re-layout to the new size
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(viewport)
    return path


def error_texts(page) -> list[str]:
    """Texts of every ``st.error`` box on the page."""
    return [box.inner_text() for box in page.locator("[data-testid='stAlertContentError']").all()]


FRESH = "[data-testid='stElementContainer']:not([data-stale='true'])"


def fresh(page, selector: str = "*"):
    """Elements matching ``selector`` drawn by the latest run (Streamlit keeps stale ones, dimmed, until replaced)."""
    return page.locator(f"{FRESH} {selector}" if selector != "*" else FRESH)


def plotly_trace_lengths(chart, timeout_ms: int = 30_000) -> list[int]:
    """Number of x values of each trace of a plotly chart (its graph div keeps the figure data).

    ``chart`` is a locator, resolved again at each try: a chart that a rerun
    has just added or replaced has no data until Plotly has drawn it, which a
    busy machine can delay, so an empty answer is asked again until the timeout.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        lengths = chart.evaluate("el => (el.data || []).map(trace => (trace.x || []).length)")
        if lengths or time.monotonic() > deadline:
            return lengths
        time.sleep(0.2)


def wait_for_count(locator, at_least: int, timeout_ms: int = APP_TIMEOUT_MS) -> int:
    """How many elements ``locator`` matches, once at least ``at_least`` or after ``timeout_ms``.

    A finished script run does not mean its elements are in the page yet: the
    browser loads the code that draws images and charts on first use (lazy
    chunks), and CI once counted 0 of the Dataset page's 70 faces at once.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        count = locator.count()
        if count >= at_least or time.monotonic() > deadline:
            return count
        time.sleep(0.1)


def selectbox(page, label: str):
    """The input of the ``st.selectbox`` labelled ``label`` (its ``input_value()`` is the shown choice)."""
    return page.get_by_role("combobox", name=label, exact=True)


def select_option(page, label: str, option: str | re.Pattern) -> None:
    """Choose ``option`` in the ``st.selectbox`` labelled ``label`` and wait for the rerun."""
    selectbox(page, label).click()
    with expect_rerun(page):
        page.get_by_role("option", name=option, exact=isinstance(option, str)).click()


def fill_number(page, label: str, value) -> None:
    """Type ``value`` into the ``st.number_input`` labelled ``label`` and leave the field (commits it)."""
    field = page.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Tab")


class StepClock:
    """Prints how long each step of a slow test took (shown with ``-s`` or on failure)."""

    def __init__(self, name: str) -> None:
        self.name, self.start = name, time.monotonic()
        self.last = self.start

    def __call__(self, step: str) -> None:
        now = time.monotonic()
        print(f"[{self.name}] {step}: +{now - self.last:.1f}s (total {now - self.start:.1f}s)", flush=True)
        self.last = now


# ---------------------------------------------------------------- fixtures' building blocks


FAKE_RUN_ID = "20250101-000000-tiny_predict-0000"


def make_finished_run(runs_dir: Path, model_path: Path, run_id: str = FAKE_RUN_ID) -> Path:
    """A finished run folder (config, one epoch of metrics, status) whose ``best.keras`` is ``model_path``."""
    import json
    import shutil

    from core import runs

    run_dir = runs_dir / run_id
    if (run_dir / "best.keras").exists():
        return run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {"data": str(SHARED_FER2013), "model": "mini_xception", "epochs": 1, "batch_size": 32}
    (run_dir / "config.json").write_text(json.dumps({"config": config, "created": time.time()}))
    runs.write_metrics(run_dir, [{"epoch": 1, "loss": 1.9, "accuracy": 0.2, "val_loss": 1.9, "val_accuracy": 0.2,
                                  "lr": 1e-3, "epoch_time": 1.0}])
    shutil.copyfile(model_path, run_dir / "best.keras")
    runs.write_status(run_dir, "finished")
    # Older than any run a test starts, so pages that default to the newest run do not pick it.
    os.utime(run_dir / "config.json", (time.time() - 86400, time.time() - 86400))
    return run_dir


def file_uploader(page, label: str):
    """The ``<input type=file>`` of the ``st.file_uploader`` labelled ``label``."""
    box = page.locator("[data-testid='stFileUploader']").filter(has=page.get_by_text(label, exact=True))
    return box.locator("input[type='file']")
