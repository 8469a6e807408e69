"""`vreason_hf.controller`: a finished generation's controller saved, loaded, replayed, continued and applied."""

from __future__ import annotations

import json
from pathlib import Path

import huggingface_hub
import pytest
import torch
from safetensors.torch import load, load_file, save_file

from vreason_hf import VReasonControllerModel, vreason_generate
from vreason_hf.controller import CONFIG_NAME, WEIGHTS_NAME
from vreason_hf.testing import build_tiny_qwen2_vl
from vreason_hf.video import load_video

KNOBS = {"lr": 0.2, "update_every": 1}
MAX_NEW = 12
QUESTION = "What is happening in this video?"


@pytest.fixture(scope="module")
def generation(tiny_qwen2_5_vl, video_inputs, real_clip):
    """`(model, inputs, output)`: a V-Reason generation that returned its controller."""
    model, processor = tiny_qwen2_5_vl
    inputs = video_inputs(processor, real_clip, QUESTION)
    out = model.generate(
        **inputs,
        max_new_tokens=MAX_NEW,
        do_sample=False,
        custom_generate=vreason_generate,
        vreason_config=KNOBS,
        return_dict_in_generate=True,
    )
    return model, inputs, out


def test_saved_controller_replays_the_generation_token_for_token(generation, tmp_path):
    model, inputs, out = generation
    kwargs = {"max_new_tokens": MAX_NEW, "do_sample": False}
    VReasonControllerModel.from_generation(model, out, KNOBS).save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]
    loaded = VReasonControllerModel.from_pretrained(model, tmp_path)
    assert torch.equal(loaded.state["theta"], out.controller_state["theta"])
    replay = loaded.generate(**inputs, mode="replay", return_dict_in_generate=True, **kwargs)
    assert torch.equal(replay.sequences, out.sequences)
    assert torch.allclose(replay.controller_state["theta"], out.controller_state["theta"], atol=1e-6)

    plain = model.generate(**inputs, **kwargs)
    with loaded.disable_adapter():
        assert torch.equal(loaded.generate(**inputs, **kwargs), plain)
    static = loaded.generate(
        **inputs, mode="static", return_dict_in_generate=True, output_logits=True, **kwargs
    )
    base_logits = model.generate(**inputs, return_dict_in_generate=True, output_logits=True, **kwargs).logits[
        0
    ]
    assert not torch.allclose(static.logits[0], base_logits)  # the saved ΔV acts from token 0
    assert static.optimizer_steps.tolist() == out.optimizer_steps.tolist()  # static takes no new step


def test_continue_starts_from_the_saved_state_and_keeps_optimising(generation):
    model, inputs, out = generation
    controller = VReasonControllerModel.from_generation(model, out, KNOBS)
    kwargs = {"max_new_tokens": MAX_NEW, "do_sample": False, "return_dict_in_generate": True}
    warm = controller.generate(**inputs, mode="continue", **kwargs)
    static = controller.generate(**inputs, mode="static", **kwargs)
    # Token 0 is scored over the saved ΔV in both (its entropy is taken before that token's update), not over
    # ΔV = 0 as in the original generation.
    torch.testing.assert_close(warm.entropies[:, 0], static.entropies[:, 0])
    assert not torch.allclose(warm.entropies[:, 0], out.entropies[:, 0])
    # Adam goes on from the saved step counts: one more step per generated token (update_every=1).
    generated = warm.sequences.shape[1] - inputs["input_ids"].shape[1]
    assert warm.optimizer_steps.tolist() == (out.optimizer_steps + generated).tolist()
    assert not torch.equal(warm.controller_state["theta"], out.controller_state["theta"])


def test_controller_errors(generation, tmp_path):
    model, inputs, out = generation
    with pytest.raises(FileNotFoundError, match=r"controller_config\.json"):
        VReasonControllerModel.from_pretrained(model, tmp_path)
    controller = VReasonControllerModel.from_generation(model, out, KNOBS)
    with pytest.raises(ValueError, match="`mode` must be one of"):
        controller.generate(**inputs, mode="train")
    controller.save_pretrained(tmp_path)
    data = json.loads((tmp_path / CONFIG_NAME).read_text())
    data["num_rows"] += 1
    (tmp_path / CONFIG_NAME).write_text(json.dumps(data))
    with pytest.raises(ValueError, match="do not belong together"):
        VReasonControllerModel.from_pretrained(model, tmp_path)


def test_push_to_hub_uploads_what_save_pretrained_writes(generation, tmp_path, monkeypatch):
    model, _, out = generation
    calls = {}

    class FakeApi:  # records what would be uploaded; nothing leaves the machine
        def __init__(self, token=None):
            calls["token"] = token

        def create_repo(self, repo_id, private=None, exist_ok=False):
            calls["repo"] = (repo_id, private, exist_ok)

        def upload_folder(self, repo_id, folder_path, commit_message):
            calls["files"] = {p.name: p.read_bytes() for p in Path(folder_path).iterdir()}
            return f"{repo_id}: {commit_message}"

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    controller = VReasonControllerModel.from_generation(model, out, KNOBS)
    assert (
        controller.push_to_hub("me/controller", private=True) == "me/controller: Upload V-Reason controller"
    )
    assert calls["repo"] == ("me/controller", True, True)
    saved = controller.save_pretrained(tmp_path)
    assert sorted(calls["files"]) == sorted(p.name for p in saved.iterdir())
    assert calls["files"][CONFIG_NAME] == (saved / CONFIG_NAME).read_bytes()
    uploaded, written = load(calls["files"][WEIGHTS_NAME]), load((saved / WEIGHTS_NAME).read_bytes())
    assert uploaded.keys() == written.keys()  # (the file's bytes are not: its metadata order varies)
    assert all(torch.equal(uploaded[name], written[name]) for name in written)


# ---------------------------------------------------------------------------------------------------------------
# a saved controller refuses what it does not fit


@pytest.fixture(scope="module")
def saved_controller(generation, tmp_path_factory):
    model, _, out = generation
    folder = tmp_path_factory.mktemp("controller")
    VReasonControllerModel.from_generation(model, out, KNOBS).save_pretrained(folder)
    return folder


def test_a_saved_controller_refuses_an_input_whose_video_sits_elsewhere(
    generation, tiny_qwen2_5_vl, saved_controller, real_clip
):
    model, inputs, _ = generation  # the input the controller was saved from
    _, processor = tiny_qwen2_5_vl
    # The same clip and question, with text before the video: as many video tokens, at other positions.
    content = [
        {"type": "text", "text": "Look:"},
        {"type": "video"},
        {"type": "text", "text": QUESTION},
    ]
    text = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
    frames, metadata = load_video(real_clip, num_frames=8)
    shifted = processor(
        text=[text], videos=[frames], video_metadata=[metadata], do_sample_frames=False, return_tensors="pt"
    )
    video = model.config.video_token_id
    assert (shifted["input_ids"] == video).sum() == (inputs["input_ids"] == video).sum()
    controller = VReasonControllerModel.from_pretrained(model, saved_controller)
    assert controller.generate(**inputs, max_new_tokens=MAX_NEW).shape[0] == 1  # its own input: fine
    for mode in ("replay", "continue", "static"):
        with pytest.raises(ValueError, match=r"controls the value rows \[\d+\.\.\d+ .*only fits the input"):
            controller.generate(**shifted, mode=mode, max_new_tokens=MAX_NEW)


def _tamper(folder, tmp_path, edit):
    tensors = load_file(str(folder / WEIGHTS_NAME))
    edit(tensors)
    target = tmp_path / "tampered"
    target.mkdir(parents=True)
    save_file(tensors, str(target / WEIGHTS_NAME))
    (target / "controller_config.json").write_text((folder / "controller_config.json").read_text())
    return target


def test_a_tampered_rows_tensor_is_a_clear_error(generation, saved_controller, tmp_path):
    model, inputs, _ = generation
    shifted = _tamper(saved_controller, tmp_path, lambda t: t.update(rows=t["rows"] + 10_000))
    controller = VReasonControllerModel.from_pretrained(model, shifted)  # plausible positions, wrong ones
    with pytest.raises(ValueError, match="controls the value rows"):
        controller.generate(**inputs, mode="static", max_new_tokens=MAX_NEW)
    floats = _tamper(saved_controller, tmp_path / "f", lambda t: t.update(rows=t["rows"].float()))
    with pytest.raises(ValueError, match=r"`rows` must hold integer positions.*damaged"):
        VReasonControllerModel.from_pretrained(model, floats)


def test_a_saved_controller_refuses_another_model(saved_controller):
    other, _ = build_tiny_qwen2_vl()  # the same shapes (layers, KV heads, head dim, vocab), another model
    with pytest.raises(ValueError, match=r"model_type 'qwen2_5_vl_text' \(this model: 'qwen2_vl_text'\)"):
        VReasonControllerModel.from_pretrained(other, saved_controller)
