"""Named models (`vreason_hf.assets`): built once into the cache, then plain model folders equal to their source."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

from vreason_hf import assets
from vreason_hf.assets import NAMED_MODELS, cache_dir, named_model_path, smollm2_gguf
from vreason_hf.testing import build_tiny_qwen2_5_vl


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(assets.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


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
    model, processor = build_tiny_qwen2_5_vl(seed=0)
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
