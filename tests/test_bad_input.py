"""Bad input gets a clear, typed error naming it (or just works): knobs set by assignment, `torch.inference_mode()`,
a saved controller on another input or model, images passed as videos, empty prompts."""

from __future__ import annotations

import hashlib
import math

import av
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from vreason_hf import VReasonConfig, VReasonLogitsProcessor, vreason_generate
from vreason_hf.controller import WEIGHTS_NAME, VReasonControllerModel
from vreason_hf.testing import build_tiny_qwen2_vl
from vreason_hf.video import VideoDecodeError, load_video

NEW_TOKENS = 8
KNOBS = {"lr": 0.3, "update_every": 1}


def _vreason(model, inputs, knobs=KNOBS, **kwargs):
    return model.generate(
        **inputs,
        max_new_tokens=NEW_TOKENS,
        do_sample=False,
        custom_generate=vreason_generate,
        vreason_config=knobs,
        **kwargs,
    )


def _fingerprint(model):
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest(), [(n, p.requires_grad) for n, p in model.named_parameters()]


@pytest.fixture(scope="module")
def qwen(tiny_qwen2_5_vl, video_inputs, real_clip):
    model, processor = tiny_qwen2_5_vl
    return model, processor, video_inputs(processor, real_clip, "What is happening?")


# ------------------------------------------------------------------------------------------ knobs by assignment
@pytest.mark.parametrize(
    ("knob", "value", "why"),
    [
        ("lr", -1, "must be >= 0"),
        ("lr", math.nan, "must be a finite number"),
        ("num_steps", -2, r"must be >= 0 \(0 disables V-Reason\)"),
        ("update_every", 0, r"must be >= 1 \(1 = optimise at every generated token\)"),
        ("ema_beta", 1.0, r"must be in \[0, 1\)"),
        ("controller_scope", "audio", "must be one of 'video', 'visual', 'prompt'"),
        ("lite", 1, "must be True or False"),
    ],
)
def test_knobs_are_validated_on_assignment(knob, value, why):
    config = VReasonConfig()
    default = getattr(config, knob)
    with pytest.raises(ValueError, match=rf"`{knob}` {why}, got {value!r}"):
        setattr(config, knob, value)
    assert getattr(config, knob) == default  # the bad value never got in


def test_an_unknown_knob_on_assignment_says_did_you_mean(tmp_path):
    config = VReasonConfig()
    with pytest.raises(AttributeError, match=r"no knob `update_evry` \(did you mean `update_every`\?\)"):
        config.update_evry = 3
    config.save_pretrained(tmp_path)
    assert VReasonConfig.from_pretrained(tmp_path).knobs() == VReasonConfig().knobs()  # still loads


def test_transformers_attributes_and_private_names_still_assign_and_round_trip(tmp_path):
    config = VReasonConfig(lr=0.2)
    config._scratch = 1  # private: anything goes
    config.architectures = ["VReasonForConditionalGeneration"]
    config.name_or_path = "somewhere"
    config.use_cache = False  # set on model configs by transformers
    config.update_every = 3
    config.save_pretrained(tmp_path)
    loaded = VReasonConfig.from_pretrained(tmp_path)
    assert loaded.knobs() == config.knobs() and loaded.architectures == config.architectures
    assert VReasonConfig.from_dict(config.to_dict()).knobs() == config.knobs()


def test_a_sub_config_of_the_wrong_type_names_it():
    # Generic over `sub_configs_defaults` (today `base_config`): a bad value is a TypeError naming it.
    with pytest.raises(TypeError, match="`base_config`"):
        VReasonConfig(base_config=5)
    config = VReasonConfig()
    with pytest.raises((TypeError, AttributeError), match="`base_config`"):
        config.base_config = 5


def test_knobs_are_checked_again_when_a_generation_starts(tiny_llama):
    model, tokenizer = tiny_llama
    config = VReasonConfig(controller_scope="prompt")
    config.__dict__["update_every"] = 0  # got in around `__setattr__`
    with pytest.raises(ValueError, match="`update_every` must be >= 1"):
        _vreason(model, tokenizer(["hello"], return_tensors="pt"), config)


# ------------------------------------------------------------------------------------------ inference_mode
@pytest.mark.parametrize("knobs", [KNOBS, {**KNOBS, "lite": True}, {"num_steps": 0}])
def test_the_callable_works_under_inference_mode(qwen, knobs):
    model, _, inputs = qwen
    expected = _vreason(model, inputs, knobs)
    before = _fingerprint(model)
    with torch.inference_mode():
        got = _vreason(model, inputs, knobs)
    assert torch.equal(got, expected)
    assert _fingerprint(model) == before


def test_the_logits_processor_works_under_inference_mode(qwen):
    model, _, inputs = qwen
    expected = _vreason(model, inputs)
    with VReasonLogitsProcessor(model, KNOBS) as processor, torch.inference_mode():
        got = model.generate(
            **inputs, max_new_tokens=NEW_TOKENS, do_sample=False, logits_processor=[processor]
        )
    assert torch.equal(got, expected)


# ------------------------------------------------------------------------------------------ saved controllers
@pytest.fixture(scope="module")
def saved_controller(qwen, tmp_path_factory):
    model, _, inputs = qwen
    out = _vreason(model, inputs, return_dict_in_generate=True)
    folder = tmp_path_factory.mktemp("controller")
    VReasonControllerModel.from_generation(model, out, KNOBS).save_pretrained(folder)
    return folder


def test_a_saved_controller_refuses_an_input_whose_video_sits_elsewhere(qwen, saved_controller, real_clip):
    model, processor, inputs = qwen
    # The same clip and question, with text before the video: as many video tokens, at other positions.
    content = [
        {"type": "text", "text": "Look:"},
        {"type": "video"},
        {"type": "text", "text": "What is happening?"},
    ]
    text = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
    frames, metadata = load_video(real_clip, num_frames=8)
    shifted = processor(
        text=[text], videos=[frames], video_metadata=[metadata], do_sample_frames=False, return_tensors="pt"
    )
    video = model.config.video_token_id
    assert (shifted["input_ids"] == video).sum() == (inputs["input_ids"] == video).sum()
    controller = VReasonControllerModel.from_pretrained(model, saved_controller)
    assert controller.generate(**inputs, max_new_tokens=NEW_TOKENS).shape[0] == 1  # its own input: fine
    for mode in ("replay", "continue", "static"):
        with pytest.raises(ValueError, match=r"controls the value rows \[\d+\.\.\d+ .*only fits the input"):
            controller.generate(**shifted, mode=mode, max_new_tokens=NEW_TOKENS)


def _tamper(folder, tmp_path, edit):
    tensors = load_file(str(folder / WEIGHTS_NAME))
    edit(tensors)
    target = tmp_path / "tampered"
    target.mkdir(parents=True)
    save_file(tensors, str(target / WEIGHTS_NAME))
    (target / "controller_config.json").write_text((folder / "controller_config.json").read_text())
    return target


def test_a_tampered_rows_tensor_is_a_clear_error(qwen, saved_controller, tmp_path):
    model, _, inputs = qwen
    shifted = _tamper(saved_controller, tmp_path, lambda t: t.update(rows=t["rows"] + 10_000))
    controller = VReasonControllerModel.from_pretrained(model, shifted)  # plausible positions, wrong ones
    with pytest.raises(ValueError, match="controls the value rows"):
        controller.generate(**inputs, mode="static", max_new_tokens=NEW_TOKENS)
    floats = _tamper(saved_controller, tmp_path / "f", lambda t: t.update(rows=t["rows"].float()))
    with pytest.raises(ValueError, match=r"`rows` must hold integer positions.*damaged"):
        VReasonControllerModel.from_pretrained(model, floats)


def test_a_saved_controller_refuses_another_model(saved_controller):
    other, _ = build_tiny_qwen2_vl()  # the same shapes (layers, KV heads, head dim, vocab), another model
    with pytest.raises(ValueError, match=r"model_type 'qwen2_5_vl_text' \(this model: 'qwen2_vl_text'\)"):
        VReasonControllerModel.from_pretrained(other, saved_controller)


# ------------------------------------------------------------------------------------------ videos that are not
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


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_an_image_renamed_to_mp4_says_what_it_is(tmp_path, backend):
    gif = _write(tmp_path / "animation.mp4", "gif", "gif", 5, "rgb8")
    with pytest.raises(VideoDecodeError, match=r"holds a GIF image despite its '\.mp4' extension.*convert"):
        load_video(gif, num_frames=2, backend=backend)
    png = _write(tmp_path / "still.mp4", "image2pipe", "png", 1, "rgb24")
    with pytest.raises(
        VideoDecodeError, match=r"holds a PNG image despite its '\.mp4' extension.*as an image"
    ):
        load_video(png, num_frames=1, backend=backend)


# ------------------------------------------------------------------------------------------ empty prompts
def test_an_empty_prompt_under_prompt_scope_does_not_suggest_prompt_scope(tiny_llama):
    model, tokenizer = tiny_llama
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        inputs = tokenizer(["", "hello there"], return_tensors="pt", padding=True)
    finally:
        tokenizer.padding_side = side
    assert not inputs["attention_mask"][0].any()
    with pytest.raises(
        ValueError, match=r"no prompt tokens in batch row\(s\) \[0\].*non-empty prompt"
    ) as error:
        _vreason(model, inputs, {"controller_scope": "prompt"})
    assert "use `controller_scope" not in str(error.value)
