"""Video loading: decode a file into RGB frames plus the `VideoMetadata` that video processors expect.

transformers video processors only decode paths through `torchcodec`, so `vreason_hf` decodes videos
itself and passes `videos=[frames]` together with `video_metadata=[metadata]` (without the metadata,
Qwen2.5-VL assumes 24 fps and its temporal positions are wrong).

Two backends return bit-identical frames on the H.264 clips of the test-suite:

- `"decord"` (the default where it is installed): fast random access. decord only ships x86_64 Linux wheels.
- `"pyav"`: decodes sequentially and stops after the last requested frame. Always available.

Example:

```python
>>> from vreason_hf.video import load_video

>>> frames, metadata = load_video("clip.mp4", num_frames=16)
>>> frames.shape, frames.dtype  # (T, H, W, 3) RGB
((16, 272, 640, 3), dtype('uint8'))
>>> inputs = processor(text=prompt, videos=[frames], video_metadata=[metadata], return_tensors="pt")
```
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from transformers.video_utils import VideoMetadata

logger = logging.getLogger(__name__)

__all__ = ["VIDEO_BACKENDS", "VideoDecodeError", "load_video"]

VIDEO_BACKENDS = ("auto", "decord", "pyav")

_DECORD_INSTALL_HINT = (
    "Install it with `pip install decord` (wheels exist for x86_64 Linux only), or pass "
    '`backend="pyav"`, which works on every platform.'
)


class VideoDecodeError(ValueError):
    """Raised when a file is not a readable video: not a video at all, truncated, corrupt, or without frames."""


@dataclass
class _StreamInfo:
    num_frames: int  # decodable frame count, as far as the container tells without decoding
    fps: float | None


def _check_positive(name: str, value: Any, integer: bool) -> None:
    if value is None:
        return
    valid_type = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, valid_type) or not value > 0:
        kind = "a positive integer" if integer else "a positive number"
        raise ValueError(f"`{name}` must be {kind} or None, got {value!r}.")


def _sample_indices(
    total: int, native_fps: float | None, num_frames: int | None, fps: float | None, max_frames: int | None
) -> list[int]:
    """Sorted, unique frame indices in `[0, total - 1]` for the sampling request."""
    if num_frames is not None:
        if max_frames is not None:
            num_frames = min(num_frames, max_frames)
        if num_frames > total:
            raise ValueError(
                f"Asked for num_frames={num_frames} but the video only has {total} decodable frames. Pass a "
                "smaller `num_frames`, or `num_frames=None` (optionally with `max_frames`) to get every frame."
            )
        # Step >= 1, so rounding half up keeps the indices strictly increasing (no duplicates).
        return np.floor(np.linspace(0, total - 1, num_frames) + 0.5).astype(np.int64).tolist()
    if fps is not None:
        if not native_fps:
            raise ValueError(
                "The video does not report a frame rate, so it cannot be sampled by `fps`: pass `num_frames`."
            )
        step = max(native_fps / fps, 1.0)  # never repeat a frame when fps exceeds the native rate
        count = int(np.ceil(total / step - 1e-9))
        indices = np.minimum(np.floor(np.arange(count) * step + 1e-6).astype(np.int64), total - 1)
    else:
        indices = np.arange(total, dtype=np.int64)
    if max_frames is not None and len(indices) > max_frames:
        indices = indices[np.floor(np.linspace(0, len(indices) - 1, max_frames) + 0.5).astype(np.int64)]
    return indices.tolist()


# FFmpeg demuxers of image files (`container.format.name`): "image2", "gif", "apng", and the "<codec>_pipe" family
# (png_pipe, jpeg_pipe, webp_pipe, bmp_pipe, ...). Their names for the error message.
_IMAGE_DEMUXERS = {"gif": "a GIF image", "apng": "an animated PNG image", "image2": "an image"}
_VIDEO_SUFFIXES = {
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".webm",
    ".avi",
    ".mpg",
    ".mpeg",
    ".ts",
    ".flv",
    ".wmv",
    ".3gp",
}


def _image_kind(format_name: str) -> str | None:
    """What image file FFmpeg's demuxer `format_name` reads ("a PNG image", ...), or `None` for a video container."""
    if format_name in _IMAGE_DEMUXERS:
        return _IMAGE_DEMUXERS[format_name]
    if format_name.endswith("_pipe"):
        codec = format_name[: -len("_pipe")].upper()
        return f"a{'n' if codec[0] in 'AEFHILMNORSX' else ''} {codec} image"
    return None


def _not_a_video(path: Path, container: Any, kind: str) -> VideoDecodeError:
    suffix = path.suffix.lower()
    despite = f" despite its '{suffix}' extension" if suffix in _VIDEO_SUFFIXES else ""
    if container.format.name in ("gif", "apng"):
        fix = f"convert the animation first: `ffmpeg -i '{path.name}' -c:v libx264 -pix_fmt yuv420p out.mp4`"
    else:
        fix = "pass a still image to the processor as an image (`images=`), not as a video"
    return VideoDecodeError(
        f"'{path}' is not a video: it holds {kind}{despite} (FFmpeg reads it as '{container.format.name}', "
        f"{container.format.long_name}). load_video reads video files (mp4, mkv, webm, avi, mov, ...): {fix}."
    )


def _probe(path: Path) -> _StreamInfo:
    """Open the container with PyAV (quietly) and check it is a video container with a video stream with frames."""
    import av

    try:
        with av.open(str(path)) as container:
            kind = _image_kind(container.format.name)
            if kind is not None:
                raise _not_a_video(path, container, kind)
            if not container.streams.video:
                kinds = sorted({stream.type for stream in container.streams}) or ["none"]
                raise VideoDecodeError(f"'{path}' has no video stream (streams found: {', '.join(kinds)}).")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            num_frames = stream.frames
            if num_frames <= 0:  # e.g. Matroska: the header has no frame count, count packets (no decoding)
                num_frames = sum(1 for packet in container.demux(stream) if packet.size)
    except av.error.FFmpegError as err:
        if isinstance(err, OSError):  # e.g. PermissionError: not a decoding problem, let it through
            raise
        raise VideoDecodeError(
            f"Could not read '{path}' as a video ({err.strerror or type(err).__name__}): the file is not a video, "
            "or it is truncated or corrupt. Check it with `ffprobe`, or re-encode it with `ffmpeg -i in -c:v libx264 out.mp4`."
        ) from None
    if num_frames <= 0:
        raise VideoDecodeError(f"'{path}' has a video stream but no decodable frames.")
    return _StreamInfo(num_frames=num_frames, fps=float(rate) if rate else None)


def _truncated_error(path: Path, reason: str) -> VideoDecodeError:
    return VideoDecodeError(
        f"Failed to decode '{path}' ({reason}): the file is probably truncated or corrupt. Check it with "
        "`ffprobe`, or re-encode it with `ffmpeg -i in -c:v libx264 out.mp4`."
    )


def _safe_decord_count(reader: Any) -> int:
    """Frame count that decord can reach without hanging.

    `len(reader)` is the container's frame count (or a duration * fps estimate); indices near the end of files
    that over-report it can make decord loop forever (dmlc/decord#373). The frame timestamp table is built from
    the packets actually demuxed at open, so cap the count by its length.
    """
    total = len(reader)
    try:
        reader.get_frame_timestamp(0)
        pts = getattr(reader, "_frame_pts", None)
        if pts is not None:
            total = min(total, len(pts))
    except Exception:  # defensive: an unexpected decord build without the timestamp table
        logger.debug("decord frame timestamps unavailable; trusting len(reader)", exc_info=True)
    return total


def _load_decord(
    path: Path, info: _StreamInfo, sampling: dict[str, Any]
) -> tuple[np.ndarray, int, list[int], float | None]:
    import decord

    decord.logging.set_level(decord.logging.QUIET)  # keep FFmpeg's C-level log lines out of stderr
    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
    except (decord.DECORDError, RuntimeError) as err:
        raise _truncated_error(path, f"decord could not open it: {_first_line(err)}") from None
    try:
        total = _safe_decord_count(reader)
        fps = float(reader.get_avg_fps()) or info.fps
        indices = _sample_indices(total, fps, **sampling)
        batch = reader.get_batch(indices)
    except decord.DECORDError as err:
        raise _truncated_error(path, f"decord: {_first_line(err)}") from None
    finally:
        del reader  # frees the native reader (and its decoder buffers) now
    # `decord.bridge.set_bridge("torch")` elsewhere makes `get_batch` return a tensor.
    frames = batch.asnumpy() if hasattr(batch, "asnumpy") else np.asarray(batch)
    return frames, total, indices, fps


def _decode_pyav(path: Path, indices: list[int]) -> tuple[list[np.ndarray], int]:
    """Decode sequentially, keep the requested frames; returns them and the number of frames decoded."""
    import av

    wanted, last, frames, decoded = set(indices), indices[-1], [], 0
    try:
        with av.open(str(path)) as container:
            # No frame threading: it hides decode errors of truncated files (and is only ~15% faster on 2 cores).
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                if decoded in wanted:
                    frames.append(frame.to_ndarray(format="rgb24"))
                decoded += 1
                if decoded > last:
                    break
    except av.error.FFmpegError as err:
        raise _truncated_error(path, f"PyAV stopped after {decoded} frames: {err.strerror or err}") from None
    return frames, decoded


def _load_pyav(
    path: Path, info: _StreamInfo, sampling: dict[str, Any]
) -> tuple[np.ndarray, int, list[int], float | None]:
    total = info.num_frames
    indices = _sample_indices(total, info.fps, **sampling)
    frames, decoded = _decode_pyav(path, indices)
    if len(frames) < len(indices):
        # The container over-reports its frame count: sample again within the frames that really decode.
        if decoded == 0:
            raise VideoDecodeError(f"'{path}' has a video stream but no decodable frames.")
        logger.warning(
            "'%s' reports %d frames but only %d decode; resampling within them.", path, total, decoded
        )
        total = decoded
        indices = _sample_indices(total, info.fps, **sampling)
        frames, _ = _decode_pyav(path, indices)
    return np.stack(frames), total, indices, info.fps


def _first_line(err: Exception) -> str:
    """The useful part of a decord error, without its timestamp, C++ source location and stack trace."""
    line = next((part for part in str(err).splitlines() if part.strip()), type(err).__name__)
    return re.sub(r"^\s*(\[[^\]]*\]\s*)?(\S+\.(cc|cpp|h):\d+:\s*)?", "", line).strip() or type(err).__name__


def _decord_available() -> bool:
    try:
        import decord  # noqa: F401
    except (ImportError, OSError):  # OSError: a wheel whose bundled FFmpeg libraries fail to load
        return False
    return True


def _resolve_backend(backend: str) -> str:
    if backend not in VIDEO_BACKENDS:
        raise ValueError(
            f"Unknown video backend {backend!r}: choose one of {', '.join(map(repr, VIDEO_BACKENDS))}."
        )
    if backend == "auto":
        return "decord" if _decord_available() else "pyav"
    if backend == "decord" and not _decord_available():
        raise ImportError(
            f'backend="decord" needs the `decord` package, which could not be imported. {_DECORD_INSTALL_HINT}'
        )
    return backend


def load_video(
    path: str | os.PathLike,
    *,
    num_frames: int | None = None,
    fps: float | None = None,
    max_frames: int | None = None,
    backend: str = "auto",
) -> tuple[np.ndarray, VideoMetadata]:
    """
    Decode a video file into RGB frames and the matching [`~transformers.video_utils.VideoMetadata`].

    Frame indices are always sorted, unique, and within the frames that actually decode (decord can hang on
    indices past the end of files whose container over-reports the frame count, dmlc/decord#373).

    Args:
        path (`str` or `os.PathLike`):
            Path to a local video file (any container and codec FFmpeg reads: mp4, mkv, webm, avi, ...).
        num_frames (`int`, *optional*):
            Sample this many frames uniformly over the whole video, first and last frame included
            (`np.linspace(0, total - 1, num_frames)`, rounded). Asking for more frames than the video has raises a
            `ValueError`, as transformers' own `load_video` does: frames are never duplicated. Exclusive with `fps`.
        fps (`float`, *optional*):
            Sample one frame every `native_fps / fps` frames, starting at frame 0. An `fps` at or above the native
            frame rate returns every frame once. Exclusive with `num_frames`.
        max_frames (`int`, *optional*):
            Upper bound on the number of returned frames. When `fps` (or no sampling argument) yields more, that set is
            subsampled uniformly; `num_frames` is lowered to it.
        backend (`str`, *optional*, defaults to `"auto"`):
            `"decord"`, `"pyav"`, or `"auto"` (decord when it is installed, PyAV otherwise). Both return the same
            frames and metadata for the same request.

    Returns:
        `tuple[np.ndarray, VideoMetadata]`: the frames, a `uint8` array of shape `(num_sampled, height, width, 3)` in
        RGB order, and their metadata: `total_num_frames` (decodable frames), `fps` (native rate), `duration`
        (`total_num_frames / fps` seconds), `frames_indices`, `height`, `width` and `video_backend`. Pass both to a
        processor: `processor(videos=[frames], video_metadata=[metadata], ...)`. With neither `num_frames` nor `fps`,
        every frame is decoded (capped by `max_frames`).

    Raises:
        `FileNotFoundError`: `path` is not an existing file.
        `VideoDecodeError` (a `ValueError`): the file is not a video (e.g. a GIF or a still image, whatever its
            extension), is truncated or corrupt, or has no decodable frames.
        `ValueError`: invalid sampling arguments (both `num_frames` and `fps`, non-positive values, too many frames) or an
            unknown `backend`.
        `ImportError`: `backend="decord"` and decord is not installed.
    """
    if num_frames is not None and fps is not None:
        raise ValueError(
            "`num_frames` and `fps` are mutually exclusive: pass only one of them (or `max_frames`)."
        )
    _check_positive("num_frames", num_frames, integer=True)
    _check_positive("fps", fps, integer=False)
    _check_positive("max_frames", max_frames, integer=True)
    backend = _resolve_backend(backend)
    path = Path(path).expanduser()
    if not path.is_file():
        reason = "is a directory" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"Cannot load video '{path}': it {reason}. Pass the path to a video file.")

    info = _probe(path)
    sampling = {"num_frames": num_frames, "fps": fps, "max_frames": max_frames}
    loader = _load_decord if backend == "decord" else _load_pyav
    frames, total, indices, native_fps = loader(path, info, sampling)
    metadata = VideoMetadata(
        total_num_frames=int(total),
        fps=native_fps,
        duration=total / native_fps if native_fps else None,
        frames_indices=indices,
        height=int(frames.shape[1]),
        width=int(frames.shape[2]),
    )
    if "video_backend" in {field.name for field in fields(VideoMetadata)}:
        metadata.video_backend = backend
    logger.debug("Loaded %d/%d frames of '%s' with %s.", len(indices), total, path, backend)
    return np.ascontiguousarray(frames, dtype=np.uint8), metadata
