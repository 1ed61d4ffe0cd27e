"""Shared pytest fixtures. Helpers append their own fixtures here, with unique names."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest

from core.labels import CLASS_NAMES

SHARED_FER2013 = Path(__file__).resolve().parent.parent.parent / "shared" / "fer2013"


# Files whose tests drive a real browser (marked ``browser``; tests/test_suite_layout.py checks the list).
BROWSER_FILES = ("tests/browser/", "tests/faults/test_two_sessions.py", "tests/faults/test_upload_limits.py")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadfile`` (pyproject.toml), with every browser test in one work unit.

    A file's tests stay in one process, so its module fixtures are built once.
    The browser tests go together: each drives a Streamlit server (TensorFlow
    and a model inside) and a Chromium, and two of them side by side on the
    two cores of the CI machine ran 2-5 times slower than alone (the menu walk
    100 s against 20 s, measured 2026-12-07), while the other worker could
    have been training; in one worker they also share one server. (xdist's
    own ``loadgroup`` does not group under pytest 9.2: it renames
    ``item._nodeid``, which pytest no longer reads.)
    """
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class BrowserTestsTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return "browser tests" if scope.startswith(BROWSER_FILES) else scope

    return BrowserTestsTogether(config, log)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for a whole session (monkeypatch is per test); put back what was there."""
    import os

    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session", autouse=True)
def no_background_warm_ups():
    """No standby video workers (``core.video_jobs.warm_standby``) and no server warm-up
    (``dashboard/warm_up.py``) unless a test asks for them.

    A standby would import TensorFlow in a process of its own (about 10 s of
    CPU) for every page test that renders the Video page, and the warm-up
    would load a model and MTCNN in a thread beside the page tests'. Their own
    tests turn them on with monkeypatch, and so does the browser tests'
    server, where the pages run as a user's do.
    """
    from core.video_jobs import STANDBY_VARIABLE
    from dashboard.warm_up import WARM_UP_VARIABLE

    with _environment({STANDBY_VARIABLE: "0", WARM_UP_VARIABLE: "0"}):
        yield


@pytest.fixture(scope="session", autouse=True)
def private_folders(tmp_path_factory: pytest.TempPathFactory):
    """The session's own cache and runs folders, inherited by every worker a test starts.

    Without them a test that forgot its own wrote into the user's ``~/.cache/fer-studio`` (280 files there
    after a few sessions of test runs) or the repository's ``runs/``. Tests that need a folder of their own
    still set one; those that check the defaults remove the variables with monkeypatch. Video analyses
    are not capped at the server's default of 2 at once: a test's analyses never wait for another test's
    (the cap's own test sets it).
    """
    with _environment({"FER_STUDIO_CACHE": str(tmp_path_factory.mktemp("fer-studio-cache")),
                       "FER_STUDIO_RUNS": str(tmp_path_factory.mktemp("fer-studio-runs")),
                       "FER_STUDIO_VIDEO_WORKERS": "16"}):
        yield


@pytest.fixture(scope="session", autouse=True)
def shared_jax_compilation_cache(tmp_path_factory: pytest.TempPathFactory):
    """One JAX compilation cache for the whole test session, inherited by every KERAS_BACKEND=jax subprocess.

    Each such test trains a tiny model in a fresh interpreter, and JAX compiles
    every program anew there (weight initializers included: about 40 s of a
    60 s run). With the cache, later tests reuse what earlier ones compiled
    (core.distribute.use_jax_compilation_cache does the same for users). It
    starts empty in each session, so a test never relies on a previous run.

    XLA also compiles without its backend optimisations here
    (``--xla_backend_optimization_level=0``): the same programs, the same
    results up to floating-point rounding, in half the CPU time (a tiny JAX
    run from a pack: 90 s of CPU with them, 39 s without, measured
    2026-12-07). The tests check what a run does, not how fast its compiled
    steps are; a user's runs keep XLA's defaults.
    """
    import os

    with _environment({
        "JAX_COMPILATION_CACHE_DIR": str(tmp_path_factory.mktemp("jax-compilation-cache")),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip(),
    }):
        yield


# ---------------------------------------------------------------- dataset loading (core.data)


@pytest.fixture(scope="session")
def shared_fer2013(tmp_path_factory: pytest.TempPathFactory):
    """The shared FER2013 image folders (``../shared/fer2013``) as a ``FerDataset``.

    Loaded once per test session, cached under a temporary folder (never
    ``~/.cache``). Skips, saying why, when the data is not there.
    """
    if not (SHARED_FER2013 / "train").is_dir():
        pytest.skip(f"the shared FER2013 data is not at {SHARED_FER2013} (integration test)")
    from core.data import load_fer2013

    return load_fer2013(SHARED_FER2013, cache_dir=tmp_path_factory.mktemp("fer2013-cache"))


TINY_TRAIN_PER_CLASS = 3
TINY_TEST_PER_CLASS = 2


def tiny_face(label: int, index: int) -> np.ndarray:
    """A deterministic 48x48 uint8 image whose brightness grows with the label."""
    rows, cols = np.mgrid[0:48, 0:48]
    base = 20 + 30 * label + 5 * index
    return np.clip(base + (rows + cols) // 4, 0, 255).astype(np.uint8)


@pytest.fixture
def tiny_fer_folder(tmp_path: Path) -> Path:
    """A miniature image-folder release in a temporary folder; returns its root.

    ``<root>/train/<class>/Training_<n>.jpg`` (3 per class, 21 in all) and
    ``<root>/test/<class>/PublicTest_<n>.jpg`` (2 per class, 14 in all),
    48x48 gray JPEGs written with ``cv2.imwrite`` (lossy: pixels differ a
    little from :func:`tiny_face`). Class folders use the FER2013 names.
    """
    root = tmp_path / "fer2013"
    for split_folder, prefix, count in (("train", "Training", TINY_TRAIN_PER_CLASS), ("test", "PublicTest", TINY_TEST_PER_CLASS)):
        for label, name in enumerate(CLASS_NAMES):
            folder = root / split_folder / name
            folder.mkdir(parents=True)
            for index in range(count):
                cv2.imwrite(str(folder / f"{prefix}_{1000 + 10 * label + index}.jpg"), tiny_face(label, index))
    return root


# ---------------------------------------------------------------- prediction (core.detect, core.predict)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained mini-Xception saved with ``export_model`` (FER2013 class names); built once per session."""
    import keras

    from core import model_io, models

    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("tiny-model") / "tiny.keras"
    return model_io.export_model(models.build("mini_xception"), path, meta={"model": "mini_xception"})


@pytest.fixture(scope="session")
def tiny_loaded_model(tiny_model_path: Path):
    """:func:`tiny_model_path` loaded with ``core.model_io.load_model`` (shared: do not mutate)."""
    from core.model_io import load_model

    return load_model(tiny_model_path)


def _astronaut_head() -> np.ndarray:
    """The face of ``skimage.data.astronaut()`` with as much context again around it (RGB uint8, square)."""
    from skimage import data

    photo = data.astronaut()
    # OpenCV's Haar box of the face is (177, 66, 95, 95); keep twice its size.
    center_x, center_y, side = 177 + 47, 66 + 47, 190
    return photo[center_y - side // 2:center_y + side // 2, center_x - side // 2:center_x + side // 2].copy()


def _write_two_face_video(path: Path, frames: int, fps: int, **writer_options) -> Path:
    """A 320x240 H.264 MP4 of two astronaut heads (112 px) drifting apart a pixel a frame; Haar finds both."""
    from core.video_io import VideoWriter

    head = cv2.resize(_astronaut_head(), (112, 112), interpolation=cv2.INTER_AREA)
    with VideoWriter(path, 320, 240, fps=fps, **writer_options) as writer:
        for index in range(frames):
            canvas = np.full((240, 320, 3), 110, np.uint8)
            for x in (12 + index, 196 - index):
                canvas[60:172, x:x + 112] = head
            writer.write(canvas)
    return path


@pytest.fixture(scope="session")
def two_face_video_writer():
    """``write(path, frames, fps, **VideoWriter options) -> path``: the two-face test video (CLI, page and browser tests)."""
    return _write_two_face_video


@pytest.fixture(scope="session")
def three_face_photo() -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """A 1280x720 RGB photo with three faces at 180, 120 and 75 px, and their true ``(x, y, w, h)`` boxes.

    Made of the astronaut's head pasted at three scales onto ``skimage.data.coffee()``.
    """
    from skimage import data

    canvas = cv2.resize(data.coffee(), (1280, 720), interpolation=cv2.INTER_LINEAR)
    head = _astronaut_head()
    boxes = []
    for x, y, side in ((80, 120, 360), (560, 200, 240), (980, 300, 150)):
        canvas[y:y + side, x:x + side] = cv2.resize(head, (side, side), interpolation=cv2.INTER_AREA)
        boxes.append((x + side // 4, y + side // 4, side // 2, side // 2))
    return canvas, boxes


# ---------------------------------------------------------------- evaluation (core.evaluate, evaluate CLI, Evaluation and Compare pages)


def _build_oracle_model(output_names: tuple[str, ...]):
    """A tiny Flatten->Dense model that is always right on "oracle faces".

    An oracle face of class k (FER2013 index) has bright pixels at row k in the
    first and last column (so mirroring keeps it); the model puts its mass on
    the output slot named ``CLASS_NAMES[k]`` in ``output_names``.
    """
    import keras

    inputs = keras.Input((48, 48, 1))
    outputs = keras.layers.Dense(len(output_names), activation="softmax")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    weights = np.zeros((48 * 48, len(output_names)), "float32")
    for index, name in enumerate(CLASS_NAMES):
        for column in (0, 47):
            weights[index * 48 + column, output_names.index(name)] = 0.1
    model.layers[-1].set_weights([weights, np.zeros(len(output_names), "float32")])
    return model


@pytest.fixture
def oracle_model_factory():
    """``make(path, output_names=CLASS_NAMES, saved_names=None) -> Path``: save an oracle model.

    ``output_names`` is the class order the weights really use; ``saved_names``
    (default the same) is what the file claims, to build a mislabeled model.
    """
    from core import model_io

    def make(path, output_names=CLASS_NAMES, saved_names=None):
        model = _build_oracle_model(tuple(output_names))
        return model_io.save_model(model, path, class_names=tuple(saved_names or output_names), meta={"model": "oracle"})

    return make


def _write_oracle_faces(folder, counts: dict[str, int], prefix: str = "") -> None:
    """Write oracle faces as PNG files ``folder/<class>/<prefix><class>_<n>.png`` (lossless)."""
    for name, count in counts.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        index = CLASS_NAMES.index(name)
        for number in range(count):
            face = np.zeros((48, 48), np.uint8)
            face[index, 0] = face[index, 47] = 200
            face[47, 20 + number % 8] = 1 + number  # distinct files, same class signal
            cv2.imwrite(str(folder / name / f"{prefix}{name}_{number}.png"), face)


@pytest.fixture
def oracle_faces_writer():
    """``write(folder, {class_name: count}, prefix="")``: oracle faces as class-folder PNGs."""
    return _write_oracle_faces


@pytest.fixture
def oracle_fer_folder(tmp_path):
    """An image-folder FER2013 copy of oracle faces with PublicTest and PrivateTest in test/."""
    root = tmp_path / "oracle_fer"
    _write_oracle_faces(root / "train", {"happy": 2, "sad": 2}, prefix="Training_")
    _write_oracle_faces(root / "test", {"angry": 3, "happy": 4, "neutral": 2}, prefix="PublicTest_")
    _write_oracle_faces(root / "test", {"sad": 2, "fear": 3, "happy": 1}, prefix="PrivateTest_")
    return root


@pytest.fixture
def fake_runs_dir(tmp_path, monkeypatch, oracle_model_factory):
    """``FER_STUDIO_RUNS`` pointing at two finished fake runs with an oracle ``best.keras``."""
    import json
    import time

    from core import runs

    root = tmp_path / "fake_runs"
    for number, (model, lr) in enumerate((("mini_xception", 0.001), ("fer_vgg", 0.01))):
        run_dir = root / f"2025010{number + 1}-120000-{model}-ab{number}d"
        run_dir.mkdir(parents=True)
        config = {"model": model, "optimizer": "adam", "learning_rate": lr, "batch_size": 64, "epochs": 3,
                  "augment": {"engine": "idg"}}
        (run_dir / "config.json").write_text(json.dumps({"config": config, "created": time.time()}))
        runs.write_metrics(run_dir, [
            {"epoch": epoch, "loss": 1.5 - 0.2 * epoch, "accuracy": 0.3 + 0.1 * epoch, "val_loss": 1.6 - 0.1 * epoch,
             "val_accuracy": 0.25 + 0.1 * epoch + 0.01 * number, "lr": lr, "epoch_time": 2.0}
            for epoch in (1, 2, 3)
        ])
        runs.write_status(run_dir, "finished")
        oracle_model_factory(run_dir / "best.keras")
    monkeypatch.setenv("FER_STUDIO_RUNS", str(root))
    return root


def _make_oracle_dataset(split_sizes: dict[str, int], *, wrong_every: int = 0, seed: int = 0):
    """A FerDataset of oracle faces (see ``_build_oracle_model``), ``{split: size}``.

    With ``wrong_every=k`` every k-th row gets a label that disagrees with its
    face, so an oracle model makes exactly those mistakes.
    """
    from core.dataset import FerDataset, LoadReport

    rng = np.random.default_rng(seed)
    faces, splits = [], []
    for split, size in split_sizes.items():
        faces += [int(v) for v in rng.integers(0, 7, size)]
        splits += [split] * size
    images = np.zeros((len(faces), 48, 48), np.uint8)
    for row, face in enumerate(faces):
        images[row, face, 0] = images[row, face, 47] = 200
    labels = np.array(faces, np.int64)
    if wrong_every:
        labels[::wrong_every] = (labels[::wrong_every] + 1) % 7
    ids = np.array([f"{split}_{row}.png" for row, split in enumerate(splits)])
    report = LoadReport(source="oracle", kind="image-folders", loaded=len(faces), content_hash=f"oracle-{seed}-{len(faces)}")
    return FerDataset(images, labels, np.array(splits), ids, report)


@pytest.fixture
def oracle_dataset_factory():
    """``make(split_sizes, wrong_every=0, seed=0) -> FerDataset`` of oracle faces."""
    return _make_oracle_dataset
