"""The frame pipeline (core.video) and video files (core.video_io): ids, smoothing, CSV, bad files."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.labels import CLASS_NAMES
from core.video import (
    CSV_COLUMNS,
    CsvRecorder,
    FrameAnalyzer,
    StreamSettings,
    SummaryBuilder,
    VideoProgress,
    analyze_frames,
    analyze_video,
    draw_frame,
)
from core.video_io import VideoReader, VideoWriter

SIZE = (320, 240)


def astronaut_head() -> np.ndarray:
    from skimage import data

    photo = data.astronaut()
    return photo[113 - 95:113 + 95, 224 - 95:224 + 95].copy()


def two_face_frames(count: int = 12, size: tuple[int, int] = SIZE) -> list[np.ndarray]:
    """Two astronaut heads (Haar finds both) drifting in opposite directions."""
    head = astronaut_head()
    width, height = size
    side = int(height * 0.45)
    frames = []
    for index in range(count):
        canvas = np.full((height, width, 3), 120, np.uint8)
        for x in (10 + 2 * index, width - side - 10 - 2 * index):
            y = (height - side) // 2 + (index % 3)
            canvas[y:y + side, x:x + side] = cv2.resize(head, (side, side), interpolation=cv2.INTER_AREA)
        frames.append(canvas)
    return frames


def write(path: Path, frames: list[np.ndarray], times: list[float] | None = None, fps: float = 25.0) -> Path:
    with VideoWriter(path, frames[0].shape[1], frames[0].shape[0], fps=fps, crf=18) as writer:
        for index, frame in enumerate(frames):
            writer.write(frame, None if times is None else times[index])
    return path


@pytest.fixture(scope="module")
def face_video(tmp_path_factory) -> Path:
    return write(tmp_path_factory.mktemp("video") / "two_faces.mp4", two_face_frames(20))


def test_speed_and_time_left_are_told_only_once_the_warm_up_frames_are_behind():
    first = VideoProgress(frames_done=1, frames_total=1500, elapsed_s=0.34)  # the first frame carries the warm-up
    assert not first.measured and first.eta_s is None
    later = VideoProgress(frames_done=100, frames_total=1500, elapsed_s=6.5)
    assert later.measured and later.fps == pytest.approx(15.38, abs=0.01) and later.eta_s == pytest.approx(91.0)
    assert VideoProgress(frames_done=100, frames_total=0, elapsed_s=6.5).eta_s is None  # the file gave no count


def test_two_faces_keep_two_ids_and_every_record_has_seven_probabilities(tiny_loaded_model):
    results = list(analyze_frames(two_face_frames(12), tiny_loaded_model, StreamSettings(detector="haar")))
    assert [result.index for result in results] == list(range(12))
    # A new face is shown once it is found on two detection rounds in a row (StreamSettings.confirm).
    assert results[0].faces == () and results[0].detected
    assert all(len(result.faces) == 2 and result.detected for result in results[1:])
    assert {face.face_id for result in results for face in result.faces} == {1, 2}
    first_left = min(results[1].faces, key=lambda face: face.box[0]).face_id
    assert all(min(result.faces, key=lambda face: face.box[0]).face_id == first_left for result in results[1:])
    for face in results[5].faces:
        assert face.probabilities.shape == (7,) and abs(float(face.probabilities.sum()) - 1) < 1e-4
        assert face.emotion in CLASS_NAMES and face.frame_emotion in CLASS_NAMES


def test_detect_every_third_frame_carries_the_boxes_in_between(tiny_loaded_model):
    results = list(analyze_frames(two_face_frames(9), tiny_loaded_model, StreamSettings(detector="haar", every=3, confirm=1)))
    assert [result.detected for result in results] == [True, False, False] * 3
    assert all(len(result.faces) == 2 for result in results)
    assert not any(face.detected for face in results[1].faces)
    assert {face.face_id for result in results for face in result.faces} == {1, 2}
    # Confirmed on the second detection round (frame 3), then carried as before.
    confirmed = list(analyze_frames(two_face_frames(9), tiny_loaded_model, StreamSettings(detector="haar", every=3)))
    assert [len(result.faces) for result in confirmed] == [0, 0, 0] + [2] * 6


def test_the_model_is_called_once_per_frame_with_all_faces(tiny_loaded_model, monkeypatch):
    import core.video as video

    calls = []
    real = video.predict_probabilities
    monkeypatch.setattr(video, "predict_probabilities", lambda loaded, faces, **kw: calls.append(len(faces)) or real(loaded, faces, **kw))
    analyzer = FrameAnalyzer(tiny_loaded_model, StreamSettings(detector="haar"))
    for frame in two_face_frames(3):
        analyzer.process(frame)
    assert calls == [2, 2]  # none on frame 0: its faces are not confirmed yet, and no face means no model call


def test_csv_has_exactly_the_documented_columns(tiny_loaded_model, tmp_path):
    assert CSV_COLUMNS == ("frame", "time_s", "face_id", "x", "y", "w", "h", "emotion",
                           "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    recorder = CsvRecorder(tmp_path / "out.csv")
    for result in analyze_frames(two_face_frames(4), tiny_loaded_model, StreamSettings(detector="haar"), fps=10):
        recorder.add(result)
    recorder.close()
    with open(tmp_path / "out.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert tuple(reader.fieldnames) == CSV_COLUMNS and len(rows) == 6  # faces are shown from frame 1 (confirm=2)
    assert [float(row["time_s"]) for row in rows[::2]] == [0.1, 0.2, 0.3]
    for row in rows:
        assert abs(sum(float(row[name]) for name in CLASS_NAMES) - 1) < 2e-3
        assert row["emotion"] in CLASS_NAMES and int(row["w"]) > 0


def test_analyze_video_writes_csv_annotated_mp4_and_summary_without_leftovers(tiny_loaded_model, face_video, tmp_path):
    seen = []
    report = analyze_video(face_video, tiny_loaded_model, StreamSettings(detector="haar", smoothing="ema"),
                           csv_path=tmp_path / "out" / "faces.csv", annotated_path=tmp_path / "out" / "faces.mp4",
                           progress=seen.append)
    assert report.frames == 20 and report.face_ids == 2 and report.frames_with_faces == 19 and not report.warnings
    assert [p.frames_done for p in seen] == list(range(1, 21)) and seen[-1].frames_total == 20
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["faces.csv", "faces.mp4"]
    with VideoReader(tmp_path / "out" / "faces.mp4") as reader:
        assert reader.info.codec == "h264" and (reader.info.width, reader.info.height) == SIZE
        assert len(list(reader)) == 20
    for face in report.faces:
        assert face.seconds == pytest.approx(19 / 25, abs=0.01)
        assert sum(face.shares.values()) == pytest.approx(1.0)
    assert report.to_dict()["faces"][0]["face_id"] == 1


def test_summary_counts_each_frame_until_the_next_one():
    from core.video import FaceRecord, FrameResult

    probabilities = np.eye(7, dtype=np.float32)
    builder = SummaryBuilder()
    for index, (time_s, emotion) in enumerate([(0.0, "happy"), (0.5, "happy"), (1.0, "sad"), (1.2, "sad")]):
        face = FaceRecord(1, (0, 0, 10, 10), probabilities[CLASS_NAMES.index(emotion)], emotion, True)
        builder.add(FrameResult(index, time_s, (face,), True, 0.0))
    (summary,) = builder.summaries()
    # happy 0-1.0 s, sad 1.0-1.2 s plus the last frame's 0.2 s
    assert summary.seconds == pytest.approx(1.4) and summary.frames == 4
    assert summary.shares["happy"] == pytest.approx(1.0 / 1.4) and summary.dominant == "happy"


def test_draw_frame_marks_each_face(tiny_loaded_model):
    frame = two_face_frames(1)[0]
    (result,) = analyze_frames([frame], tiny_loaded_model, StreamSettings(detector="haar", confirm=1))
    drawn = draw_frame(frame, result)
    assert drawn.shape == frame.shape and not np.shares_memory(drawn, frame)
    x, y, w, h = result.faces[0].box
    assert np.any(drawn[y + h // 2, x - 1:x + 3] != frame[y + h // 2, x - 1:x + 3])


# ---------------------------------------------------------------- bad input


def test_a_text_file_is_not_a_video(tmp_path, tiny_loaded_model):
    fake = tmp_path / "notes.mp4"
    fake.write_text("hello, not a video\n" * 50)
    with pytest.raises(ValueError, match="not a readable video"):
        analyze_video(fake, tiny_loaded_model, csv_path=tmp_path / "x.csv")
    assert not list(tmp_path.glob("*.csv")) and not list(tmp_path.glob(".x-*"))


@pytest.mark.parametrize("extension", [".jpg", ".png"])
def test_a_photo_named_like_a_video_is_refused_as_a_still_image(tmp_path, extension):
    # Before: a JPEG renamed .mp4 was "analysed" as a one-frame video without a word.
    photo = tmp_path / "holiday.mp4"
    photo.write_bytes(cv2.imencode(extension, np.full((64, 80, 3), 120, np.uint8))[1].tobytes())
    with pytest.raises(ValueError, match=r"holiday.mp4 is a still image \((jpeg|png)\), not a video: photos go to Predict"):
        VideoReader(photo)


def test_empty_and_zero_frame_files_are_refused(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        VideoReader(empty)
    import av

    zero = tmp_path / "zero.mp4"
    with av.open(str(zero), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()
    with pytest.raises(ValueError, match="no video"):
        with VideoReader(zero) as reader:
            list(reader)
    with pytest.raises(FileNotFoundError):
        VideoReader(tmp_path / "missing.mp4")


def test_a_truncated_mp4_gives_its_first_frames_and_a_warning(tmp_path, face_video, tiny_loaded_model):
    data = face_video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:len(data) * 17 // 20])  # the first (key) frame is most of this short file
    report = analyze_video(cut, tiny_loaded_model, StreamSettings(detector="haar"))
    assert 0 < report.frames < 20 and any("truncated" in warning for warning in report.warnings)
    stub = tmp_path / "stub.mp4"
    stub.write_bytes(data[:200])
    with pytest.raises(ValueError, match="truncated"):
        analyze_video(stub, tiny_loaded_model)


def test_a_huge_video_is_downscaled_while_decoding(tmp_path):
    big = write(tmp_path / "big.mp4", [np.full((2160, 3840, 3), 90, np.uint8)] * 2)
    with VideoReader(big) as reader:
        frames = list(reader)
        assert (reader.info.width, reader.info.height) == (3840, 2160)
        assert (reader.info.frame_width, reader.info.frame_height) == (1280, 720)
    assert [frame.image.shape for frame in frames] == [(720, 1280, 3)] * 2


def test_boxes_of_a_shrunk_video_are_given_in_the_files_pixels(tmp_path, tiny_loaded_model):
    # Probe s22: a 2560x1440 video's CSV boxes were in the 1280x720 frames analysed, and its summary gave 1280x720
    # as the video's size; photos' boxes were already in the original's pixels.
    small = two_face_frames(3, size=(640, 360))
    big = [cv2.resize(frame, (2560, 1440), interpolation=cv2.INTER_NEAREST) for frame in small]
    settings = StreamSettings(detector="haar", confirm=1)
    analysed = []
    report = analyze_video(write(tmp_path / "big.mp4", big), tiny_loaded_model, settings, csv_path=tmp_path / "big.csv",
                           on_frame=analysed.append)
    assert (report.width, report.height, report.analysed_width, report.analysed_height) == (2560, 1440, 1280, 720)
    assert report.size_text() == "2560x1440, analysed at 1280x720"
    with open(tmp_path / "big.csv") as handle:
        rows = list(csv.DictReader(handle))
    boxes = [face.box for result in analysed for face in result.faces]  # on the 1280x720 frames
    assert len(rows) == len(boxes) > 0
    assert [[int(row[key]) for key in "xywh"] for row in rows] == [[2 * value for value in box] for box in boxes]
    same = analyze_video(write(tmp_path / "small.mp4", small), tiny_loaded_model, settings)
    assert same.size_text() == "640x360" and same.analysed_width is None


def test_a_shrunk_phone_videos_boxes_are_in_its_upright_pixels(tmp_path, tiny_loaded_model):
    # Stored 2560x1440 on its side with a rotation flag, as phones store portrait video: shown 1440x2560.
    upright = [cv2.resize(frame, (1440, 2560), interpolation=cv2.INTER_NEAREST)
               for frame in two_face_frames(3, size=(360, 640))]
    stored = [np.ascontiguousarray(np.rot90(frame, k=-1)) for frame in upright]  # the reader turns it back
    path = write_with_pyav(tmp_path / "portrait.mp4", stored, "libx264", "yuv420p", rotation=90)
    analysed = []
    report = analyze_video(path, tiny_loaded_model, StreamSettings(detector="haar", confirm=1),
                           csv_path=tmp_path / "portrait.csv", on_frame=analysed.append)
    assert report.size_text() == "1440x2560, analysed at 720x1280"
    with open(tmp_path / "portrait.csv") as handle:
        rows = list(csv.DictReader(handle))
    boxes = [face.box for result in analysed for face in result.faces]
    assert len(rows) == len(boxes) > 0
    assert [[int(row[key]) for key in "xywh"] for row in rows] == [[2 * value for value in box] for box in boxes]


def test_an_odd_sized_video_keeps_its_size_and_boxes_inside_it(tmp_path, tiny_loaded_model):
    frames = [cv2.resize(frame, (321, 241)) for frame in two_face_frames(3)]
    report = analyze_video(write_with_pyav(tmp_path / "odd.mkv", frames), tiny_loaded_model,
                           StreamSettings(detector="haar", confirm=1), csv_path=tmp_path / "odd.csv")
    assert (report.width, report.height) == (321, 241) and report.size_text() == "321x241, analysed at 320x240"
    with open(tmp_path / "odd.csv") as handle:
        for row in csv.DictReader(handle):
            assert int(row["x"]) + int(row["w"]) <= 321 and int(row["y"]) + int(row["h"]) <= 241


def write_with_pyav(path: Path, frames: list[np.ndarray], codec: str = "ffv1", pix_fmt: str = "yuv444p",
                    rotation: int = 0) -> Path:
    """A video as the container stores it: any size (VideoWriter makes sizes even, as H.264 in yuv420p needs),
    optionally flagged to be shown turned ``rotation`` degrees counter-clockwise, as phones store portrait video."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], pix_fmt
        if rotation:
            stream.set_display_rotation(rotation)
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_variable_frame_rate_keeps_real_times(tmp_path):
    times = [0.0, 0.04, 0.08, 0.5, 0.54, 1.5]
    path = write(tmp_path / "vfr.mp4", two_face_frames(6), times)
    with VideoReader(path) as reader:
        assert [round(frame.time_s, 2) for frame in reader] == times


def test_a_video_without_faces_says_so(tmp_path, tiny_loaded_model):
    path = write(tmp_path / "wall.mp4", [np.full((120, 160, 3), 128, np.uint8)] * 5)
    report = analyze_video(path, tiny_loaded_model, StreamSettings(detector="haar"), csv_path=tmp_path / "wall.csv")
    assert report.frames == 5 and report.face_ids == 0
    assert any("no face was found" in warning for warning in report.warnings)
    assert (tmp_path / "wall.csv").read_text().strip() == ",".join(CSV_COLUMNS)


@pytest.mark.parametrize("settings, message", [
    (StreamSettings(every=0), "--every"),
    (StreamSettings(smoothing="median"), "unknown smoothing"),
    (StreamSettings(detector="yolo"), "unknown face detector"),
    (StreamSettings(min_confidence=2), "between 0 and 1"),
])
def test_bad_settings_are_refused_before_any_work(settings, message, tiny_loaded_model):
    with pytest.raises(ValueError, match=message):
        FrameAnalyzer(tiny_loaded_model, settings)


def test_annotated_output_must_be_mp4(face_video, tiny_loaded_model, tmp_path):
    with pytest.raises(ValueError, match=r"\.mp4"):
        analyze_video(face_video, tiny_loaded_model, annotated_path=tmp_path / "out.avi")


def test_importing_the_video_modules_loads_neither_streamlit_nor_tensorflow_nor_av():
    import subprocess
    import sys

    code = ("import sys, core.video, core.video_io, core.tracking, core.smoothing; "
            "print([m for m in ('streamlit', 'tensorflow', 'keras', 'av') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.stdout.strip() == "[]"


def test_detecting_ahead_in_threads_gives_the_same_results_as_frame_by_frame(tiny_loaded_model):
    import random
    import time

    from core.video import process_ahead
    from core.video_io import VideoFrame

    frames = [VideoFrame(index, index / 25, image) for index, image in enumerate(two_face_frames(8))]
    jitter = random.Random(0)
    for every, workers in ((1, 1), (1, 2), (3, 2), (1, 3)):
        settings = StreamSettings(detector="haar", every=every, smoothing="vote", window=3)
        sequential = FrameAnalyzer(tiny_loaded_model, settings)
        expected = [sequential.process(frame.image, frame.time_s, frame.index) for frame in frames]
        analyzer = FrameAnalyzer(tiny_loaded_model, settings)
        real_detect = analyzer.detect

        def slow_detect(image, real_detect=real_detect):
            time.sleep(jitter.uniform(0, 0.03))  # detection threads finish out of order
            return real_detect(image)

        analyzer.detect = slow_detect
        ahead = list(process_ahead(analyzer, iter(frames), workers=workers))
        assert [frame.index for frame, _ in ahead] == list(range(8))
        for (_, got), want in zip(ahead, expected):
            assert [(f.face_id, f.box, f.emotion, f.detected) for f in got.faces] == \
                   [(f.face_id, f.box, f.emotion, f.detected) for f in want.faces]
            assert all(np.allclose(a.probabilities, b.probabilities, atol=1e-5) for a, b in zip(got.faces, want.faces))


def test_a_phone_video_with_a_rotation_flag_is_turned_upright(tmp_path):
    stored = np.zeros((32, 64, 3), np.uint8)
    stored[:, :8] = 255  # a white stripe on the left of the stored picture
    path = write_with_pyav(tmp_path / "portrait.mp4", [stored] * 2, "libx264", "yuv420p", rotation=90)
    with VideoReader(path) as reader:
        image = next(iter(reader)).image
    assert image.shape == (64, 32, 3)
    assert image[60, :, 0].mean() > 200 and image[:40, :, 0].mean() < 30  # the stripe is now at the bottom


def test_the_drawn_label_gives_the_probability_of_the_emotion_it_names():
    # Walk s9: vote smoothing showed "surprise" on a frame that was fear 61%, surprise 10%, drawn "#6 surprise 61%".
    from core.video import FaceRecord, face_label

    probabilities = np.zeros(len(CLASS_NAMES), np.float32)
    probabilities[CLASS_NAMES.index("fear")], probabilities[CLASS_NAMES.index("surprise")] = 0.611, 0.104
    smoothed = FaceRecord(6, (0, 0, 10, 10), probabilities, "surprise", True)
    assert face_label(smoothed) == "#6 surprise 10%"
    assert face_label(FaceRecord(6, (0, 0, 10, 10), probabilities, "fear", True)) == "#6 fear 61%"


def test_a_smoothed_label_says_what_backs_it():
    """Walk s21: the vote winner drawn with this frame's probability of it read "surprise 13%" on a frame the
    model called fear 52%. Vote shows its votes, EMA its average, none the frame's own probability."""
    from core.smoothing import EmotionSmoother
    from core.video import FaceRecord, face_label

    def frame(emotion, p=0.6):
        row = np.full(len(CLASS_NAMES), (1 - p) / (len(CLASS_NAMES) - 1), np.float32)
        row[CLASS_NAMES.index(emotion)] = p
        return row

    stream = [frame("surprise")] * 7 + [frame("fear", 0.52)] * 3
    shown = {}
    for mode in ("vote", "ema", "none"):
        smoother = EmotionSmoother(mode, window=10)
        for row in stream:
            emotion = smoother.update(row)
        shown[mode] = face_label(FaceRecord(2, (0, 0, 10, 10), row, emotion, True, smoother.support_text(row, emotion)))
    assert shown["vote"] == "#2 surprise 7/10"
    average = EmotionSmoother("ema", window=10)
    for row in stream:
        average.update(row)
    assert shown["ema"] == f"#2 surprise {average.average[CLASS_NAMES.index('surprise')]:.0%}"
    assert shown["none"] == "#2 fear 52%"
    first = EmotionSmoother("vote", window=10)
    assert first.support_text(stream[0], first.update(stream[0])) == "1/1"  # before the window fills


def test_the_command_line_names_every_format_the_page_accepts(tmp_path):
    # Walk s9: the reader's error listed four formats while the uploader accepted six.
    from core.video_io import VIDEO_EXTENSIONS, VIDEO_FORMATS, VideoReader

    path = tmp_path / "notes.mkv"
    path.write_text("not a video")
    with pytest.raises(ValueError) as refused:
        VideoReader(path).__enter__()
    assert f"expected a video file ({VIDEO_FORMATS}) that is not truncated" in str(refused.value)
    assert all(extension.lstrip(".").upper() in VIDEO_FORMATS for extension in VIDEO_EXTENSIONS)


def test_faces_shown_on_one_or_two_frames_are_counted_apart():
    # Walk s9: three one-frame "neutral 48%" boxes on a background were counted as faces, with no word about them.
    from core.video import BRIEF_FACE_FRAMES, FaceSummary, VideoReport

    def face(face_id: int, frames: int) -> FaceSummary:
        return FaceSummary(face_id, 0.0, 0.0, frames / 30, frames, {name: 0.0 for name in CLASS_NAMES}, "neutral")

    report = VideoReport("clip.mp4", 640, 480, 30.0, 12.0, 360, 300, 4, 10.0, 36.0,
                         (face(1, 200), face(2, 1), face(3, BRIEF_FACE_FRAMES - 1), face(4, BRIEF_FACE_FRAMES)), {})
    assert report.brief_face_ids == (2, 3)
    assert report.describe_face_ids() == "4 face ids, 2 of them on fewer than 3 frames (likely not faces)"
    assert report.to_dict()["brief_face_ids"] == [2, 3] and VideoReport.from_dict(report.to_dict()) == report


@pytest.mark.parametrize("width", [640, 1280])
def test_a_frames_labels_are_sized_as_a_photos_and_stay_inside_it(width):
    # Walk s19: a 640-pixel webcam frame's labels were drawn at side / 1400, 5 px letters once shown on a phone.
    from core.predict import EMOTION_COLORS
    from core.video import FaceRecord, FrameResult

    frame = np.full((width * 3 // 4, width, 3), 40, np.uint8)
    small = width // 16
    probabilities = np.eye(7, dtype=np.float32)[3]
    faces = (FaceRecord(1, (width // 4, width // 4, small, small), probabilities, "happy", True),
             FaceRecord(2, (width - small - 1, width // 4, small, small), probabilities, "happy", True))
    drawn = draw_frame(frame, FrameResult(index=0, time_s=0.0, faces=faces, detected=True, seconds=0.01))
    band = np.all(drawn[: width // 4] == np.array(EMOTION_COLORS["happy"], np.uint8), axis=2)
    rows = np.flatnonzero(band.sum(axis=1) >= 20)
    assert len(rows) >= 0.03 * width  # the band that holds the letters: 3% of the width, as on a photo
    text_row = band[rows[len(rows) // 2]]
    assert text_row[width - 5] and np.flatnonzero(text_row)[-1] < width  # the right-hand label ends inside the frame
    assert np.flatnonzero(text_row[width // 2:])[0] + width // 2 < width - small - 1  # moved left, not cut at the edge


def test_an_analysis_with_a_frame_limit_ends_there_and_says_so(face_video, tiny_loaded_model, tmp_path):
    # Probe s22: nothing bounded a dashboard job's length (a 200 MB upload of still frames: hours of a worker).
    settings = StreamSettings(detector="haar")
    whole = analyze_video(face_video, tiny_loaded_model, settings)
    cut = analyze_video(face_video, tiny_loaded_model, settings, max_frames=8, csv_path=tmp_path / "cut.csv")
    assert (whole.frames, cut.frames) == (20, 8) and not whole.warnings
    assert cut.warnings == ("only the first 8 frames (0.3 s) were analysed: that is the most one analysis here takes; "
                            "`python -m core video` has no such limit",)
    with open(tmp_path / "cut.csv") as handle:
        assert max(int(row["frame"]) for row in csv.DictReader(handle)) == 7
    exact = analyze_video(face_video, tiny_loaded_model, settings, max_frames=20)
    assert exact.frames == 20 and not exact.warnings  # a video of exactly the limit is whole


def test_a_stream_that_changes_size_and_back_is_decoded_at_each_frames_own_size(tmp_path):
    # Review s22: after a smaller stretch, frames of the first size stayed decoded at the smaller size.
    import io

    import av

    def segment(width: int, height: int, start: int) -> bytes:
        buffer = io.BytesIO()
        with av.open(buffer, "w", format="mpegts") as container:
            stream = container.add_stream("libx264", rate=10)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for index in range(2):
                frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 120, np.uint8), format="rgb24")
                frame.pts = start + index
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        return buffer.getvalue()

    path = tmp_path / "joined.ts"
    path.write_bytes(segment(640, 360, 0) + segment(160, 90, 2) + segment(640, 360, 4))
    with VideoReader(path, max_side=320) as reader:
        sizes = [(frame.image.shape[1], frame.image.shape[0], frame.source_size) for frame in reader]
    assert sizes == [(320, 180, (640, 360))] * 2 + [(160, 90, (160, 90))] * 2 + [(320, 180, (640, 360))] * 2
