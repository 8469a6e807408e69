# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""The inputs of the `video-text-to-text` pipeline: normalising a call's videos, questions and chats into requests
(and each request's full text once answered), collecting its `generate` arguments, and fetching the videos chat items
name by `url`."""

from __future__ import annotations

import os
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers.video_utils import VideoMetadata

from ..inputs import DEFAULT_FPS, DEFAULT_MAX_FRAMES, _warn_once
from ..video import VideoDecodeError, load_video

__all__ = [
    "RENAMED_ARGUMENTS",
    "RemoteVideo",
    "VideoBatch",
    "VideoRequest",
    "collect_generate_kwargs",
    "collect_requests",
    "decode_requests",
    "decode_video",
]

UNSET: Any = object()
"""`max_frames` not passed (the default cap), which differs from `max_frames=None` (no cap)."""

RENAMED_ARGUMENTS = {
    "prompt": "The video-text-to-text pipeline takes the question as `text=` (as `image-text-to-text` does), not "
    "`prompt=`.",
    "vreason_config": "Pass the V-Reason knobs to the pipeline as `vreason=` (a VReasonConfig or a dict), not "
    "`vreason_config=`.",
    "return_tensors": "The video-text-to-text pipeline returns text; for token ids call `model.generate` on "
    "the processor's inputs.",
    "return_type": "Use `return_full_text=` (True: the input followed by the answer; False: the answer only).",
}
"""Names users reach for by analogy, and what the pipeline takes instead."""


@dataclass(frozen=True)
class RemoteVideo:
    """A video a chat item names by an `http(s)://` URL; fetched when the pipeline decodes it."""

    url: str


VideoSource = str | os.PathLike | np.ndarray | torch.Tensor | RemoteVideo


@dataclass
class VideoRequest:
    r"""
    One input, normalised.

    Args:
        input_text (`str` or `list[dict]`): what the caller gave as the text: the question, or the chat.
        messages (`list[dict]`): a template-ready chat whose video items are bare `{"type": "video"}`.
        videos, metadata: the video sources in order of appearance, and their metadata (`None` where not given).
    """

    input_text: str | list[dict[str, Any]]
    messages: list[dict[str, Any]]
    videos: list[VideoSource] = field(default_factory=list)
    metadata: list[VideoMetadata | None] = field(default_factory=list)

    @property
    def is_chat(self) -> bool:
        return not isinstance(self.input_text, str)

    def continues(self, continue_final_message: bool | None = None) -> bool:
        """Whether the answer continues the last message: by default exactly when it is an assistant's (a prefill)."""
        if continue_final_message is not None:
            return continue_final_message
        return self.messages[-1]["role"] == "assistant"

    def full_text(
        self, answer: str, continue_final_message: bool | None = None
    ) -> str | list[dict[str, Any]]:
        """The input followed by the answer, as `image-text-to-text` writes it: string in, string out; chat in, chat
        out (the answer as a new assistant message, or appended to the last message it continues)."""
        if not self.is_chat:
            return self.input_text + answer
        messages = list(self.input_text)
        if not self.continues(continue_final_message):
            return [*messages, {"role": "assistant", "content": answer}]
        last = messages[-1]
        content = last["content"]
        if isinstance(content, str):
            content = content + answer
        elif content and isinstance(content[-1], dict) and content[-1].get("type") == "text":
            content = [*content[:-1], {**content[-1], "text": content[-1]["text"] + answer}]
        else:
            content = [*content, {"type": "text", "text": answer}]
        return [*messages[:-1], {"role": last["role"], "content": content}]


@dataclass
class VideoBatch:
    """The inputs decoded by one `generate` call (not a list, so `Pipeline.__call__` runs it as a single input)."""

    requests: list[VideoRequest]


def _is_message(value: Any) -> bool:
    return isinstance(value, dict) and "role" in value and "content" in value


def _is_chat(value: Any) -> bool:
    return isinstance(value, list | tuple) and len(value) > 0 and all(_is_message(m) for m in value)


def _is_chat_list(value: Any) -> bool:
    return isinstance(value, list | tuple) and len(value) > 0 and all(_is_chat(chat) for chat in value)


def _check_video(video: Any, where: str) -> VideoSource:
    if isinstance(video, str | os.PathLike | RemoteVideo):
        return video
    if isinstance(video, np.ndarray | torch.Tensor):
        if video.ndim != 4:
            raise ValueError(
                f"{where}: a decoded video must be a 4D frame array `(num_frames, height, width, 3)`, got an array "
                f"of shape {tuple(video.shape)}. For a single image use the `image-text-to-text` pipeline."
            )
        return video
    raise TypeError(
        f"{where}: a video must be a file path or a `(num_frames, height, width, 3)` frame array, got "
        f"{type(video).__name__}."
    )


def _check_metadata(metadata: Any, where: str) -> VideoMetadata | None:
    if metadata is None or isinstance(metadata, VideoMetadata):
        return metadata
    if isinstance(metadata, dict):
        try:
            return VideoMetadata(**metadata)
        except TypeError as err:
            raise ValueError(f"{where}: invalid `video_metadata` {metadata!r}: {err}.") from None
    raise TypeError(
        f"{where}: `video_metadata` must be a `transformers.video_utils.VideoMetadata` or a dict, got "
        f"{type(metadata).__name__}."
    )


def _from_url(url: Any, where: str) -> str | RemoteVideo:
    """A chat item's `url`: an `http(s)://` URL (fetched later), a `file://` URL or a plain local path."""
    if not isinstance(url, str):
        raise TypeError(f"{where}: `url` must be a string, got {type(url).__name__}.")
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme in ("http", "https"):
        return RemoteVideo(url)
    if parsed.scheme == "file":
        return urllib.request.url2pathname(parsed.path)
    if parsed.scheme and len(parsed.scheme) > 1:  # one letter: a Windows drive, i.e. a local path
        raise ValueError(
            f"{where}: unsupported URL scheme {parsed.scheme!r} in {url!r}; give an http(s):// or file:// URL, or a "
            f"local path."
        )
    return url


def _video_item_source(item: dict[str, Any], where: str) -> VideoSource:
    given = [key for key in ("video", "path", "url") if item.get(key) is not None]
    if len(given) != 1:
        what = "none" if not given else " and ".join(f"`{key}`" for key in given)
        raise ValueError(
            f"{where}: a video item needs the video under exactly one of `video` (a file path or a frame array), "
            f"`path` or `url`; got {what} (keys {sorted(item)})."
        )
    key = given[0]
    source = _from_url(item[key], where) if key == "url" else item[key]
    return _check_video(source, where)


def _parse_chat(chat: Sequence[dict[str, Any]], where: str) -> VideoRequest:
    """Split a chat into a template-ready copy (video items reduced to their type) and its video sources."""
    request = VideoRequest(input_text=list(chat), messages=[])
    for m, message in enumerate(chat):
        content = message["content"]
        if isinstance(content, str):
            request.messages.append({**message})
            continue
        if not isinstance(content, list | tuple):
            raise TypeError(
                f"{where}, message {m}: `content` must be a string or a list of items, got {type(content).__name__}."
            )
        items = []
        for i, item in enumerate(content):
            kind = item.get("type") if isinstance(item, dict) else None
            item_where = f"{where}, message {m}, item {i}"
            if kind == "text":
                if not isinstance(item.get("text"), str):
                    raise ValueError(f"{item_where}: a text item needs a string under `text`.")
                items.append({**item})
            elif kind == "video":
                request.videos.append(_video_item_source(item, item_where))
                request.metadata.append(_check_metadata(item.get("video_metadata"), item_where))
                items.append({"type": "video"})
            else:
                raise ValueError(
                    f"{item_where}: unsupported item type {kind!r}; this pipeline accepts `video` and `text` items "
                    f"(e.g. `{{'type': 'video', 'path': 'clip.mp4'}}`)."
                )
        request.messages.append({**message, "content": items})
    if not request.videos:
        raise ValueError(
            f"{where}: no video given. Add a `{{'type': 'video', 'path': <file>}}` item (or `url`, or `video` with a "
            f"path or frames) to the chat."
        )
    return request


def _plain_request(video: Any, text: Any, metadata: Any, where: str) -> VideoRequest:
    if video is None:
        raise ValueError(f"{where}: no video given. Pass a video file path or a frame array as `videos`.")
    if text is None:
        raise ValueError(f"{where}: no question given. Pass it as `text=` (or use the chat format).")
    if not isinstance(text, str):
        raise TypeError(f"{where}: the question (`text`) must be a string, got {type(text).__name__}.")
    content = [{"type": "video"}, {"type": "text", "text": text}]
    return VideoRequest(
        input_text=text,
        messages=[{"role": "user", "content": content}],
        videos=[_check_video(video, where)],
        metadata=[_check_metadata(metadata, where)],
    )


def _dict_request(item: dict[str, Any], text: Any, metadata: Any, where: str) -> VideoRequest:
    unknown = sorted(set(item) - {"video", "text", "video_metadata"})
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {unknown} in the input dict; it takes `video`, `text` and `video_metadata`."
        )
    return _plain_request(
        item.get("video"), item.get("text", text), item.get("video_metadata", metadata), where
    )


def _broadcast(name: str, value: Any, count: int) -> list[Any]:
    if isinstance(value, list | tuple):
        if len(value) != count:
            raise ValueError(f"Got {count} videos but {len(value)} values of `{name}`: give one per video.")
        return list(value)
    return [value] * count


def collect_requests(videos: Any, text: Any, video_metadata: Any) -> tuple[list[VideoRequest], bool]:
    """Normalise a call's inputs into requests (no decoding yet); returns them and whether the input was single."""
    if _is_chat(videos) or _is_chat_list(videos):
        if text is not None:
            raise ValueError(
                "Got a chat and a separate `text`: put the question inside the chat, as a "
                "`{'type': 'text', 'text': ...}` item."
            )
        videos, text = None, videos
    if _is_chat(text) or _is_chat_list(text):
        if videos is not None:
            raise ValueError(
                "Got a chat and separate `videos`: put each video inside the chat, as a "
                "`{'type': 'video', 'path': <file>}` item."
            )
        if video_metadata is not None:
            raise ValueError(
                "`video_metadata` does not apply to chats: put it in the video item, "
                "`{'type': 'video', 'video': frames, 'video_metadata': metadata}`."
            )
        if _is_chat(text):
            return [_parse_chat(text, "The chat")], True
        return [_parse_chat(chat, f"Chat {i}") for i, chat in enumerate(text)], False

    if isinstance(videos, list | tuple):
        if not videos:
            raise ValueError("Got an empty list of videos.")
        count = len(videos)
        texts = _broadcast("text", text, count)
        metadata = _broadcast("video_metadata", video_metadata, count)
        requests = []
        for i, (video, question, meta) in enumerate(zip(videos, texts, metadata, strict=True)):
            where = f"Input {i}"
            if isinstance(video, dict):
                requests.append(_dict_request(video, question, meta, where))
            else:
                requests.append(_plain_request(video, question, meta, where))
        return requests, False
    if isinstance(text, list | tuple):
        raise ValueError(
            f"Got {len(text)} questions for a single video: pass a list of videos of the same length, or one "
            f"question string."
        )
    if isinstance(videos, dict):
        return [_dict_request(videos, text, video_metadata, "The input")], True
    return [_plain_request(videos, text, video_metadata, "The input")], True


def collect_generate_kwargs(
    max_new_tokens: int | None, generate_kwargs: dict[str, Any] | None, kwargs: dict[str, Any]
) -> dict[str, Any]:
    """A call's `generate` arguments: `generate_kwargs`, `max_new_tokens` and the call's other keyword arguments."""
    for name, message in RENAMED_ARGUMENTS.items():
        if name in kwargs or (generate_kwargs and name in generate_kwargs):
            raise ValueError(message)
    collected = {**(generate_kwargs or {})}
    for name, value in {"max_new_tokens": max_new_tokens, **kwargs}.items():
        if value is None and name == "max_new_tokens":
            continue
        if name in collected:
            raise ValueError(
                f"`{name}` is defined twice, once in `generate_kwargs` and once as a direct parameter; use only one."
            )
        collected[name] = value
    if (collected.get("num_return_sequences") or 1) > 1:
        raise ValueError(
            f"The video-text-to-text pipeline returns one answer per input, got `num_return_sequences="
            f"{collected['num_return_sequences']}`. To sample several answers, repeat the input in a list and pass "
            f"`do_sample=True`."
        )
    return collected


def decode_video(
    source: str | os.PathLike | RemoteVideo, **sampling: Any
) -> tuple[np.ndarray, VideoMetadata]:
    r"""
    Decode a video file, or fetch an `http(s)://` video the way transformers' `load_video` does (`httpx.get`, following
    redirects) and decode it, with [`~vreason_hf.video.load_video`] and its `sampling` arguments.
    """
    if not isinstance(source, RemoteVideo):
        return load_video(source, **sampling)
    from huggingface_hub.utils import httpx

    try:
        response = httpx.get(source.url, follow_redirects=True)
        response.raise_for_status()
    except httpx.HTTPError as error:
        raise OSError(f"Could not fetch the video {source.url!r}: {error}") from error
    name = Path(urllib.parse.urlparse(source.url).path).name or "video"
    with tempfile.TemporaryDirectory(prefix="vreason-video-") as folder:
        path = Path(folder) / name
        path.write_bytes(response.content)
        try:
            return load_video(path, **sampling)
        except VideoDecodeError as error:
            raise VideoDecodeError(
                f"The video fetched from {source.url!r} could not be decoded: {error}"
            ) from error


def decode_requests(
    requests: Sequence[VideoRequest],
    *,
    num_frames: int | None = None,
    fps: float | None = None,
    max_frames: int | None = UNSET,
    video_backend: str = "auto",
) -> tuple[list[Any], list[VideoMetadata | None]]:
    r"""
    The videos of the requests in order, as frames and metadata: video files and URLs decoded (by default at 2 fps;
    `max_frames` defaults to 16 when sampling by `fps`, to no cap with `num_frames`, and `None` removes the cap),
    frame arrays as given.
    """
    sampling_given = num_frames is not None or fps is not None or max_frames is not UNSET
    if num_frames is None and fps is None:
        fps = DEFAULT_FPS
    if max_frames is UNSET:
        max_frames = DEFAULT_MAX_FRAMES if num_frames is None else None
    videos, metadata = [], []
    for request in requests:
        for source, meta in zip(request.videos, request.metadata, strict=True):
            if isinstance(source, str | os.PathLike | RemoteVideo):
                source, meta = decode_video(
                    source, num_frames=num_frames, fps=fps, max_frames=max_frames, backend=video_backend
                )
            elif sampling_given:
                _warn_once(
                    "`num_frames`, `fps` and `max_frames` apply to video files only: frame arrays are used as given."
                )
            videos.append(source)
            metadata.append(meta)
    return videos, metadata
