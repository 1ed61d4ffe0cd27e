"""Face tracking across video frames: stable face ids from IoU matching with a short memory.

Each detection round matches the detector's boxes to the known tracks
greedily, best overlap first. A track's box is first moved by its velocity
(frames since it was last seen times its smoothed per-frame displacement), so
a face that moves while the detector misses it for a few frames is still
recognised when it comes back. A track that is not matched for more than
``memory`` frames is forgotten; a new face gets the next unused id, so ids
are never reused within a stream.

Between detection rounds (``--every k``) :meth:`FaceTracker.carry` follows
each visible face by template matching: the face as last seen, shrunk to
:data:`TEMPLATE_SIDE` pixels, is searched for in a window around its
predicted position. That costs well under a millisecond per face, against
10-100 ms for a detector pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

Box = tuple[int, int, int, int]

DEFAULT_IOU_THRESHOLD: float = 0.3
DEFAULT_MEMORY: int = 15
# Detection rounds in a row before a new face is shown (1: at once).
DEFAULT_CONFIRM: int = 1
# A new detection covering this share of a known face's box, or covered by it in this share, is that face again.
DUPLICATE_OVERLAP: float = 0.5
# Faces are matched as templates of this side (pixels) between detection rounds.
TEMPLATE_SIDE: int = 32
# A carried box is kept when its template matches at least this well (normalised correlation). On the
# benchmark video, faces that were there matched at 0.87 or more (99.5%), and the background left behind
# when a face went away at most 0.69: 0.5 let such boxes through for a frame or two.
MIN_TEMPLATE_SCORE: float = 0.7
# Weight of the newest displacement in a track's velocity.
VELOCITY_WEIGHT: float = 0.5
# Weight of the newest detection in a track's typical size; a detection more
# than 1.5x off that size is not the face (Haar's boxes sometimes balloon to
# twice the face around it for a few frames).
SIDE_WEIGHT: float = 0.25


@dataclass(frozen=True)
class TrackedFace:
    """A face on one frame.

    Attributes:
        face_id: Stable id of the track, from 1.
        box: ``(x, y, w, h)`` in frame pixels.
        score: The detector's score when the face was last detected.
        detected: ``True`` when the detector found it on this frame, ``False``
            when the tracker carried the box (template match).
    """

    face_id: int
    box: Box
    score: float
    detected: bool


@dataclass
class _Track:
    face_id: int  # 0 while tentative
    box: np.ndarray  # float x, y, w, h
    velocity: np.ndarray  # dx, dy per frame
    last_frame: int
    score: float
    template: np.ndarray | None = None
    visible: bool = True
    hits: int = 1
    side: float = 0.0  # slow average of the detected box's longer side

    def __post_init__(self) -> None:
        self.side = self.side or float(max(self.box[2], self.box[3]))

    def note_size(self, box: np.ndarray) -> None:
        self.side = SIDE_WEIGHT * float(max(box[2], box[3])) + (1.0 - SIDE_WEIGHT) * self.side

    @property
    def confirmed(self) -> bool:
        return self.face_id > 0

    def predicted(self, frame_index: int) -> np.ndarray:
        gap = max(0, frame_index - self.last_frame)
        box = self.box.copy()
        box[:2] += self.velocity * gap
        return box

    def move_to(self, box: np.ndarray, frame_index: int) -> None:
        gap = frame_index - self.last_frame
        if gap > 0:
            step = (box[:2] - self.box[:2]) / gap
            self.velocity = VELOCITY_WEIGHT * step + (1.0 - VELOCITY_WEIGHT) * self.velocity
        self.box = box.astype(np.float64)
        self.last_frame = frame_index


def _areas_and_intersection(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    ax, ay, aw, ah = (float(v) for v in a[:4])
    bx, by, bw, bh = (float(v) for v in b[:4])
    inter_w = min(ax + aw, bx + bw) - max(ax, bx)
    inter_h = min(ay + ah, by + bh) - max(ay, by)
    inter = inter_w * inter_h if inter_w > 0 and inter_h > 0 else 0.0
    return aw * ah, bw * bh, inter


def box_overlap_of_smaller(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection of two ``(x, y, w, h)`` boxes over the smaller box's area, in [0, 1] (1: one inside the other)."""
    area_a, area_b, inter = _areas_and_intersection(a, b)
    return inter / max(min(area_a, area_b), 1e-9) if inter else 0.0


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes, in [0, 1]."""
    area_a, area_b, inter = _areas_and_intersection(a, b)
    return inter / max(area_a + area_b - inter, 1e-9) if inter else 0.0


class FaceTracker:
    """Give detected faces ids that stay the same from frame to frame.

    Args:
        iou_threshold: Least overlap between a track's predicted box and a
            detection for them to be the same face.
        memory: Frames a face may go undetected and still keep its id when it
            comes back.
        confirm: Detection rounds in a row a new face must be found on
            before it is shown (1: shown at once).

    Raises:
        ValueError: A threshold outside (0, 1], a negative memory or a
            ``confirm`` below 1.
    """

    def __init__(self, iou_threshold: float = DEFAULT_IOU_THRESHOLD, memory: int = DEFAULT_MEMORY,
                 confirm: int = DEFAULT_CONFIRM) -> None:
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"the IoU threshold must be in (0, 1], got {iou_threshold}")
        if memory < 0:
            raise ValueError(f"the tracker memory must be 0 frames or more, got {memory}")
        if confirm < 1:
            raise ValueError(f"a face must be confirmed on 1 detection round or more, got {confirm}")
        self.iou_threshold = float(iou_threshold)
        self.memory = int(memory)
        self.confirm = int(confirm)
        self._tracks: list[_Track] = []
        self._next_id = 1

    @property
    def active_ids(self) -> list[int]:
        """Ids of the faces still remembered (seen within ``memory`` frames)."""
        return [track.face_id for track in self._tracks if track.confirmed]

    def reset(self) -> None:
        """Forget every face; ids start again from 1."""
        self._tracks.clear()
        self._next_id = 1

    def update(self, frame_index: int, detections: Sequence, gray: np.ndarray | None = None) -> list[TrackedFace]:
        """Match one detection round to the tracks.

        Args:
            frame_index: The frame's number; must not go backwards.
            detections: ``FaceBox`` objects or ``(x, y, w, h[, score])`` tuples.
            gray: The frame as ``(H, W)`` uint8, to remember each face's
                template for :meth:`carry`; ``None`` skips templates.

        Returns:
            The faces on this frame (every detection, with its id), by id.
        """
        boxes = [_as_box(detection) for detection in detections]
        pairs = self._match([track.predicted(frame_index) for track in self._tracks], [box for box, _ in boxes],
                            [track.side for track in self._tracks])
        matched_tracks = {track_index for track_index, _ in pairs}
        matched_boxes = {box_index: self._tracks[track_index] for track_index, box_index in pairs}
        # Where the faces already shown are on this frame: their new box, or where they should be.
        known = [boxes[box_index][0] for box_index, track in matched_boxes.items() if track.confirmed]
        known += [track.predicted(frame_index) for track_index, track in enumerate(self._tracks)
                  if track.confirmed and track.visible and track_index not in matched_tracks]
        faces = []
        for box_index, (box, score) in enumerate(boxes):
            track = matched_boxes.get(box_index)
            if track is None:
                if any(box_overlap_of_smaller(box, other) >= DUPLICATE_OVERLAP for other in known):
                    continue  # a known face found again at another scale, or part of it
                track = _Track(0, box, np.zeros(2), frame_index, score)
                self._tracks.append(track)
            else:
                track.move_to(box, frame_index)
                track.note_size(box)
                track.score = score
                track.hits += 1
            if not track.confirmed and track.hits >= self.confirm:
                track.face_id = self._next_id
                self._next_id += 1
            track.visible = True
            if gray is not None:
                track.template = _template(gray, track.box)
            if track.confirmed:
                faces.append(TrackedFace(track.face_id, _int_box(track.box), score, True))
        for track_index, track in enumerate(self._tracks):
            if track_index not in matched_tracks and track.last_frame != frame_index:
                track.visible = False
        # A tentative face missed once was a detector's mistake.
        self._tracks = [track for track in self._tracks if track.confirmed or track.last_frame == frame_index]
        self._forget(frame_index)
        return sorted(faces, key=lambda face: face.face_id)

    def carry(self, frame_index: int, gray: np.ndarray | None = None) -> list[TrackedFace]:
        """Follow the faces seen on the last detection round onto a frame without detection.

        With ``gray`` each face is found again by template matching near its
        predicted position (and dropped from this frame if it no longer
        matches); without it, boxes move by their velocity.
        """
        faces = []
        for track in self._tracks:
            if not track.visible or not track.confirmed:
                continue
            predicted = track.predicted(frame_index)
            if gray is not None and track.template is not None:
                found = _match_template(gray, track.template, predicted)
                if found is None:
                    track.visible = False  # lost until a detection round finds it again
                    continue
                predicted = found
            track.move_to(predicted, frame_index)
            faces.append(TrackedFace(track.face_id, _int_box(track.box), track.score, False))
        return sorted(faces, key=lambda face: face.face_id)

    # ------------------------------------------------------------ internals

    def _match(self, predicted: list[np.ndarray], boxes: list[np.ndarray], sides: list[float]) -> list[tuple[int, int]]:
        candidates = []
        for track_index, (track_box, side) in enumerate(zip(predicted, sides)):
            for box_index, box in enumerate(boxes):
                if not 0.67 <= side / max(box[2], box[3], 1e-9) <= 1.5:
                    continue  # a face does not change size by half between two rounds; a detector's box does
                overlap = box_iou(track_box, box)
                if overlap >= self.iou_threshold:
                    candidates.append((overlap, track_index, box_index))
                elif _close(track_box, box):
                    # A fast move breaks the overlap but not the face's size
                    # or rough position: matched after every real overlap.
                    candidates.append((overlap - 1.0, track_index, box_index))
        pairs, used_tracks, used_boxes = [], set(), set()
        for _, track_index, box_index in sorted(candidates, reverse=True):
            if track_index not in used_tracks and box_index not in used_boxes:
                pairs.append((track_index, box_index))
                used_tracks.add(track_index)
                used_boxes.add(box_index)
        return pairs

    def _forget(self, frame_index: int) -> None:
        self._tracks = [track for track in self._tracks if frame_index - track.last_frame <= self.memory]


def _as_box(detection) -> tuple[np.ndarray, float]:
    if hasattr(detection, "xywh"):
        return np.array(detection.xywh, dtype=np.float64), float(getattr(detection, "score", 1.0))
    values = tuple(float(v) for v in detection)
    if len(values) not in (4, 5):
        raise ValueError(f"a detection is (x, y, w, h) or (x, y, w, h, score), got {detection!r}")
    return np.array(values[:4], dtype=np.float64), values[4] if len(values) == 5 else 1.0


def _int_box(box: np.ndarray) -> Box:
    x, y, w, h = (int(round(v)) for v in box)
    return x, y, max(1, w), max(1, h)


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    side_a, side_b = max(a[2], a[3]), max(b[2], b[3])
    center_a = a[:2] + a[2:] / 2.0
    center_b = b[:2] + b[2:] / 2.0
    return float(np.hypot(*(center_a - center_b))) <= 0.75 * (side_a + side_b) / 2.0


def _template(gray: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    x, y, w, h = _int_box(box)
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(gray.shape[1], x + w), min(gray.shape[0], y + h)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    return cv2.resize(gray[y0:y1, x0:x1], (TEMPLATE_SIDE, TEMPLATE_SIDE), interpolation=cv2.INTER_AREA)


def _match_template(gray: np.ndarray, template: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """The box (same size) whose content best matches ``template`` within half a face of ``box``; ``None`` if poor."""
    x, y, w, h = box
    if w < 8 or h < 8:
        return None
    scale_x, scale_y = TEMPLATE_SIDE / w, TEMPLATE_SIDE / h
    x0, y0 = int(max(0, x - w / 2)), int(max(0, y - h / 2))
    x1, y1 = int(min(gray.shape[1], x + 1.5 * w)), int(min(gray.shape[0], y + 1.5 * h))
    if x1 - x0 < w or y1 - y0 < h:
        return None
    size = (max(TEMPLATE_SIDE, round((x1 - x0) * scale_x)), max(TEMPLATE_SIDE, round((y1 - y0) * scale_y)))
    window = cv2.resize(gray[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)
    scores = cv2.matchTemplate(window, template, cv2.TM_CCOEFF_NORMED)
    _, best, _, (best_x, best_y) = cv2.minMaxLoc(scores)
    if not best >= MIN_TEMPLATE_SCORE:
        return None
    return np.array([x0 + best_x / scale_x, y0 + best_y / scale_y, w, h], dtype=np.float64)
