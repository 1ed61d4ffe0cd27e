"""Face detection: every detector finds real faces, boxes are framed and clipped, bad input is refused."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from core import detect
from core.detect import FaceBox, crop_face, detect_faces, get_detector, list_detectors, non_max_suppression, square_box

DETECTORS = [spec.name for spec in list_detectors()]
# OpenCV's Haar box of the astronaut's face.
ASTRONAUT_FACE = (177, 66, 95, 95)


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    inter = max(0, min(ax + aw, bx + bw) - max(ax, bx)) * max(0, min(ay + ah, by + bh) - max(ay, by))
    return inter / (aw * ah + bw * bh - inter)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


def test_registry_lists_default_first_and_refuses_unknown_names():
    assert DETECTORS[0] == detect.DEFAULT_DETECTOR
    assert {"haar", "mtcnn"} <= set(DETECTORS)
    with pytest.raises(ValueError, match="known detectors: haar, mtcnn"):
        detect_faces(np.zeros((50, 50), np.uint8), "yolo")
    with pytest.raises(ValueError, match="unknown face detector"):
        get_detector("retinaface")


@pytest.mark.parametrize("name", DETECTORS)
def test_each_detector_finds_the_astronaut(astronaut, name):
    faces = detect_faces(astronaut, name)
    assert len(faces) == 1
    face = faces[0]
    assert face.detector == name and 0.5 <= face.score <= 1.0
    assert iou(face.xywh, ASTRONAUT_FACE) > 0.5


def test_default_detector_finds_three_faces_in_a_composed_photo(three_face_photo):
    photo, truth = three_face_photo
    faces = detect_faces(photo)
    assert len(faces) == 3
    for face, expected in zip(faces, truth):  # both sorted left to right
        assert iou(face.xywh, expected) > 0.3


@pytest.mark.parametrize("name", DETECTORS)
def test_boxes_are_in_original_pixels_when_the_image_is_downscaled(astronaut, name):
    big = cv2.resize(astronaut, (1536, 1536), interpolation=cv2.INTER_LINEAR)
    small_faces = detect_faces(astronaut, name, max_side=None)
    big_faces = detect_faces(big, name, max_side=512)
    assert len(small_faces) == len(big_faces) == 1
    scaled = tuple(v * 3 for v in small_faces[0].xywh)
    assert iou(big_faces[0].xywh, scaled) > 0.6


def test_gray_rgba_and_float_images_work_like_rgb(astronaut):
    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
    as_float = astronaut.astype(np.float32) / 255.0
    for image in (gray, rgba, as_float):
        faces = detect_faces(image, "haar")
        assert len(faces) == 1 and iou(faces[0].xywh, ASTRONAUT_FACE) > 0.5


def test_no_faces_in_blank_or_tiny_images():
    assert detect_faces(np.zeros((240, 320, 3), np.uint8)) == []
    assert detect_faces(np.full((5, 7), 128, np.uint8)) == []
    assert detect_faces(np.zeros((240, 320), np.uint8), "haar") == []


def test_min_confidence_filters(astronaut):
    assert detect_faces(astronaut, "haar", min_confidence=1.01) == []


@pytest.mark.parametrize("bad", [np.zeros((0, 10, 3), np.uint8), np.zeros((10, 10, 5), np.uint8), np.zeros(10, np.uint8)])
def test_arrays_that_are_not_images_raise_value_error(bad):
    with pytest.raises(ValueError, match="image"):
        detect_faces(bad, "haar")


def test_square_box_is_square_padded_and_inside_the_image():
    box = FaceBox(100, 50, 40, 60, 0.9, "haar")
    x0, y0, x1, y1 = square_box(box, (480, 640), padding=1.2)
    assert x1 - x0 == y1 - y0 == 72
    assert (x0 + x1) / 2 == pytest.approx(120, abs=1) and (y0 + y1) / 2 == pytest.approx(80, abs=1)
    # The detector's own framing applies when no padding is given.
    x0, y0, x1, y1 = square_box(box, (480, 640))
    assert x1 - x0 == round(60 * get_detector("haar").padding)


def test_square_box_near_an_edge_is_moved_not_cut():
    x0, y0, x1, y1 = square_box((0, 0, 50, 50), (100, 200), padding=1.5)
    assert (x0, y0) == (0, 0) and x1 - x0 == y1 - y0 == 75
    x0, y0, x1, y1 = square_box((170, 70, 30, 30), (100, 200), padding=1.2)
    assert (x1, y1) == (200, 100) and x1 - x0 == y1 - y0 == 36
    # Larger than the image: clipped to it.
    assert square_box((10, 10, 80, 80), (60, 200), padding=1.0) == (10, 0, 90, 60)


def test_crop_face_is_the_square_box(astronaut):
    box = FaceBox(*ASTRONAUT_FACE, 1.0, "haar")
    x0, y0, x1, y1 = square_box(box, astronaut.shape)
    assert np.array_equal(crop_face(astronaut, box), astronaut[y0:y1, x0:x1])


def test_non_max_suppression_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 10, 10]])
    assert non_max_suppression(boxes, [0.5, 0.9, 0.7]) == [1, 2]
    assert non_max_suppression(np.zeros((0, 4)), []) == []


def test_one_caller_at_a_time_reuses_one_detector_instance(astronaut):
    detect_faces(astronaut, "haar")
    pool = detect._detector_pool("haar")
    created = pool.created
    for _ in range(3):
        detect_faces(astronaut, "haar")
    assert detect._detector_pool("haar") is pool and pool.created == created


def test_a_detector_pool_runs_calls_side_by_side_up_to_its_limit_then_they_wait():
    import threading
    import time

    running, peak, lock = [0], [0], threading.Lock()

    def create():
        def find(image):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.05)
            with lock:
                running[0] -= 1
            return []
        return find

    for limit, expected in ((1, 1), (3, 3)):
        pool = detect.DetectorPool(create, limit)
        running[0] = peak[0] = 0

        def call():
            with pool.borrow() as find:
                find(None)

        threads = [threading.Thread(target=call) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert peak[0] == expected and pool.created == expected  # instances never shared by two calls


def test_importing_prediction_modules_loads_neither_tensorflow_nor_streamlit():
    code = (
        "import sys, core.detect, core.predict, core.explain, core.commands.predict\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'mtcnn', 'streamlit') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=detect.__file__.rsplit("/core/", 1)[0])
