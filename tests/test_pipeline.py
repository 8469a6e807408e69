"""Tests for the `video-text-to-text` pipeline on the real clip `bikes.mp4`, with tiny random video LMMs."""

from __future__ import annotations

import functools
import http.server
import importlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, pipeline
from transformers.pipelines import PIPELINE_REGISTRY

import vreason_hf
from vreason_hf import VReasonConfig, save_vreason_model, vreason_generate
from vreason_hf import inputs as inputs_module
from vreason_hf.inputs import build_inputs
from vreason_hf.pipelines import TASK, VideoTextToTextPipeline, register_video_text_to_text_pipeline
from vreason_hf.testing import (
    build_tiny_llava_onevision,
    build_tiny_qwen2_5_vl,
    build_tiny_qwen3_vl,
    real_clip_path,
)
from vreason_hf.video import VideoDecodeError, load_video

QUESTION = "What happens in the video?"
NEW_TOKENS = 8
# Strong enough to change the tiny models' tokens, so "equal to the direct call" is not "equal to greedy".
KNOBS = {"lr": 0.3, "update_every": 1}
BUILDERS = {
    "qwen2_5_vl": build_tiny_qwen2_5_vl,
    "qwen3_vl": build_tiny_qwen3_vl,
    "llava_onevision": build_tiny_llava_onevision,
}


@pytest.fixture(scope="module")
def pipes() -> dict[str, VideoTextToTextPipeline]:
    """One pipeline per architecture, over private models (the pipeline may move them to its device)."""
    out = {}
    for name, build in BUILDERS.items():
        model, processor = build()
        out[name] = pipeline(TASK, model=model, processor=processor)
    return out


@pytest.fixture(scope="module")
def clip_frames(real_clip) -> tuple[np.ndarray, Any]:
    """8 frames of `bikes.mp4` (25 fps) and their `VideoMetadata`."""
    return load_video(real_clip, num_frames=8)


@pytest.fixture
def generate_spy(
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[VideoTextToTextPipeline], list[dict[str, Any]]]:
    """`spy(pipe)` records the keyword arguments of every `pipe.model.generate` call in the returned list."""

    def install(pipe: VideoTextToTextPipeline) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = []
        real = pipe.model.generate

        # `wraps` keeps the signature, from which the pipeline tells whether `generate` runs V-Reason itself.
        @functools.wraps(real)
        def generate(*args: Any, **kwargs: Any) -> Any:
            calls.append(kwargs)
            return real(*args, **kwargs)

        monkeypatch.setattr(pipe.model, "generate", generate, raising=False)
        return calls

    return install


def _direct(pipe: VideoTextToTextPipeline, frames: np.ndarray, metadata: Any, **generate_kwargs: Any) -> Any:
    """`model.generate` on the inputs of `build_inputs`, as the pipeline's reference."""
    inputs = build_inputs(pipe.processor, QUESTION, video=frames, video_metadata=metadata).to(pipe.device)
    out = pipe.model.generate(
        **inputs, max_new_tokens=NEW_TOKENS, do_sample=False, return_dict_in_generate=True, **generate_kwargs
    )
    return out, out.sequences[0, inputs["input_ids"].shape[1] :]


def _assert_same_records(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    """Equal records: text and counts exactly, V-Reason's float traces with a tolerance."""
    assert actual.keys() == expected.keys()
    for name, value in expected.items():
        if name in ("entropies", "ema_entropies", "alphas"):
            np.testing.assert_allclose(actual[name], value, rtol=1e-4, atol=1e-4)
        else:
            assert actual[name] == value, name


# ------------------------------------------------------------------------------------------------ registration


def test_registration_is_idempotent(transformers_log, caplog: pytest.LogCaptureFixture) -> None:
    entry = PIPELINE_REGISTRY.supported_tasks[TASK]
    assert entry["impl"] is VideoTextToTextPipeline
    assert entry["pt"] == (AutoModelForImageTextToText,)
    assert entry["type"] == "multimodal"
    with transformers_log() as messages, caplog.at_level(logging.WARNING):
        register_video_text_to_text_pipeline()
        importlib.reload(vreason_hf)
    assert PIPELINE_REGISTRY.supported_tasks[TASK] is entry
    assert not messages and not caplog.records


def test_registration_leaves_a_foreign_pipeline(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    foreign = {"impl": type("OtherVideoPipeline", (), {}), "pt": (), "type": "multimodal"}
    monkeypatch.setitem(PIPELINE_REGISTRY.supported_tasks, TASK, foreign)
    with caplog.at_level(logging.WARNING):
        register_video_text_to_text_pipeline()
    assert PIPELINE_REGISTRY.supported_tasks[TASK] is foreign
    assert "pipeline_class=vreason_hf.pipelines.VideoTextToTextPipeline" in caplog.text


# ------------------------------------------------------------------------------------------------ V-Reason path


def test_vreason_equals_direct_generate(pipes, real_clip, clip_frames, generate_spy) -> None:
    pipe = pipes["qwen2_5_vl"]
    frames, metadata = clip_frames
    streamed: list[torch.Tensor] = []

    class Streamer:
        def put(self, value: torch.Tensor) -> None:
            streamed.append(value)

        def end(self) -> None:
            pass

    calls = generate_spy(pipe)
    (record,) = pipe(
        real_clip,
        text=QUESTION,
        num_frames=8,
        max_new_tokens=NEW_TOKENS,
        vreason=KNOBS,
        return_traces=True,
        return_full_text=False,
        streamer=Streamer(),
    )
    assert calls[0]["custom_generate"] is vreason_generate
    assert calls[0]["vreason_config"].knobs() == VReasonConfig(**KNOBS).knobs()
    assert "streamer" not in calls[0]  # rerouted: `generate` drops `streamer` for a callable custom_generate
    expected, tokens = _direct(pipe, frames, metadata, custom_generate=vreason_generate, vreason_config=KNOBS)
    answer = pipe.processor.tokenizer.decode(tokens, skip_special_tokens=True)
    _assert_same_records(
        record,
        {
            "input_text": QUESTION,
            "generated_text": answer,
            "num_generated_tokens": len(tokens),
            "entropies": expected.entropies[0].tolist(),
            "ema_entropies": expected.ema_entropies[0].tolist(),
            "alphas": expected.alphas[0].tolist(),
            "optimizer_steps": int(expected.optimizer_steps[0]),
        },
    )
    assert record["optimizer_steps"] == NEW_TOKENS  # update_every=1, one step per token: V-Reason really ran
    assert torch.equal(torch.cat(streamed[1:]), tokens.cpu())  # after the prompt, every generated token
    _, plain = _direct(pipe, frames, metadata)
    assert not torch.equal(tokens, plain)
    # By default, as in `image-text-to-text`, the text is the input followed by the answer.
    full = pipe(real_clip, text=QUESTION, num_frames=8, max_new_tokens=NEW_TOKENS, vreason=KNOBS)
    assert full == [
        {"input_text": QUESTION, "generated_text": QUESTION + answer, "num_generated_tokens": len(tokens)}
    ]


@pytest.mark.parametrize("name", list(BUILDERS))
def test_zero_steps_equals_plain_decoding(pipes, real_clip, clip_frames, name) -> None:
    pipe = pipes[name]
    kwargs = {"text": QUESTION, "num_frames": 8, "max_new_tokens": NEW_TOKENS, "return_full_text": False}
    (plain,) = pipe(real_clip, vreason=False, **kwargs)
    (zero,) = pipe(real_clip, vreason={"num_steps": 0}, return_traces=True, **kwargs)
    assert zero.pop("optimizer_steps") == 0
    assert all(
        len(zero.pop(trace)) == zero["num_generated_tokens"]
        for trace in ("entropies", "ema_entropies", "alphas")
    )
    assert zero == plain
    assert isinstance(plain["generated_text"], str) and 0 < plain["num_generated_tokens"] <= NEW_TOKENS
    _, tokens = _direct(pipe, *clip_frames)
    assert plain["generated_text"] == pipe.processor.tokenizer.decode(
        tokens[: plain["num_generated_tokens"]], skip_special_tokens=True
    )


@pytest.mark.parametrize("name", ["qwen2_5_vl", "qwen3_vl"])
def test_batched_equals_single(pipes, real_clip, name) -> None:
    pipe = pipes[name]
    inputs = [
        {"video": real_clip, "text": QUESTION},
        {"video": real_clip_path("carphone_pristine.mp4"), "text": "Who is talking?"},
    ]
    kwargs = {"num_frames": 8, "max_new_tokens": 8, "vreason": {"lr": 0.3}, "return_traces": True}
    batched = pipe(inputs, batch_size=2, **kwargs)  # one left-padded `generate` call
    singles = pipe(inputs, **kwargs)  # a list runs one input per call unless `batch_size` says otherwise
    assert [len(records) for records in batched] == [len(records) for records in singles] == [1, 1]
    for (actual,), (expected,) in zip(batched, singles, strict=True):
        _assert_same_records(actual, expected)


# ------------------------------------------------------------------------------------------------ transformers' conventions


def _shape(value: Any) -> Any:
    """The structure of a pipeline output: nesting, keys and value kinds (chat, text), without the values."""
    if isinstance(value, list) and value and all(isinstance(v, dict) and "role" in v for v in value):
        return ("chat", [message["role"] for message in value])
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return type(value).__name__


def test_outputs_follow_image_text_to_text(pipes) -> None:
    """Key for key, the structure `pipeline("image-text-to-text")` gives the same tiny model for an image input."""
    video_pipe = pipes["qwen2_5_vl"]
    image_pipe = pipeline("image-text-to-text", model=video_pipe.model, processor=video_pipe.processor)
    pixels = np.random.RandomState(0).randint(0, 255, (4, 56, 56, 3), dtype=np.uint8)
    image = Image.fromarray(pixels[0])
    metadata = {"total_num_frames": 4, "fps": 2.0, "frames_indices": [0, 1, 2, 3]}
    video = {"type": "video", "video": pixels, "video_metadata": metadata}
    question = {"type": "text", "text": "Why?"}
    image_chat = [{"role": "user", "content": [{"type": "image", "image": image}, question]}]
    video_chat = [{"role": "user", "content": [video, question]}]
    prefill = {"role": "assistant", "content": [{"type": "text", "text": "Because"}]}
    kwargs = {"max_new_tokens": 2}
    for options, image_input, video_input in (
        ({}, image_chat, video_chat),
        ({}, [image_chat, image_chat], [video_chat, video_chat]),
        ({}, [*image_chat, prefill], [*video_chat, prefill]),
        ({"return_full_text": False}, image_chat, video_chat),
    ):
        image_out = image_pipe(text=image_input, **kwargs, **options)
        video_out = video_pipe(text=video_input, vreason=False, **kwargs, **options)
        for records in video_out if isinstance(video_out[0], list) else [video_out]:
            for record in records:
                assert record.pop("num_generated_tokens") <= 2  # our extra
        assert _shape(video_out) == _shape(image_out), options
    # String in, string out: the input, then the answer (the video pipeline applies the chat template itself).
    (image_record,) = image_pipe(image, text="<|vision_start|><|image_pad|><|vision_end|>Why?", **kwargs)
    (video_record,) = video_pipe(pixels, text="Why?", video_metadata=metadata, vreason=False, **kwargs)
    assert video_record.keys() - {"num_generated_tokens"} == image_record.keys()
    assert video_record["generated_text"].startswith(video_record["input_text"])
    assert image_record["generated_text"].startswith(image_record["input_text"])
    # A prefill is continued in the chat's last message.
    (continued,) = video_pipe(text=[*video_chat, prefill], vreason=False, **kwargs)
    last = continued["generated_text"][-1]
    assert continued["generated_text"][:-1] == video_chat and last["role"] == "assistant"
    assert last["content"][0]["text"].startswith("Because") and continued["input_text"] == [
        *video_chat,
        prefill,
    ]


def test_any_to_any_with_the_callable(pipes, clip_frames) -> None:
    """`pipeline("any-to-any")` with `generate_kwargs={"custom_generate": vreason_generate, ...}`: the callable's tokens."""
    pipe = pipes["qwen2_5_vl"]
    any_pipe = pipeline("any-to-any", model=pipe.model, processor=pipe.processor)
    frames, _ = clip_frames
    chat = [
        {"role": "user", "content": [{"type": "video", "video": frames}, {"type": "text", "text": QUESTION}]}
    ]
    kwargs = {"max_new_tokens": NEW_TOKENS, "return_full_text": False}
    (record,) = any_pipe(
        text=chat, generate_kwargs={"custom_generate": vreason_generate, "vreason_config": KNOBS}, **kwargs
    )
    inputs = pipe.processor.apply_chat_template(
        chat, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    out = pipe.model.generate(
        **inputs,
        max_new_tokens=NEW_TOKENS,
        do_sample=False,
        custom_generate=vreason_generate,
        vreason_config=KNOBS,
    )
    tokens = out[0, inputs["input_ids"].shape[1] :]
    assert record["generated_text"] == pipe.processor.tokenizer.decode(tokens, skip_special_tokens=True)
    assert any_pipe(text=chat, **kwargs)[0]["generated_text"] != record["generated_text"]  # V-Reason acted


# ------------------------------------------------------------------------------------------------ video inputs


@pytest.fixture(scope="module")
def clip_server(real_clip):
    """An HTTP server on localhost serving the clips' folder (no network leaves the machine)."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

    handler = functools.partial(Handler, directory=str(Path(real_clip).parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


def test_video_items_by_path_url_and_video(pipes, real_clip, clip_server) -> None:
    pipe = pipes["qwen2_5_vl"]
    name = Path(real_clip).name
    sources = [
        {"path": str(real_clip)},
        {"video": str(real_clip)},
        {"url": str(real_clip)},
        {"url": Path(real_clip).as_uri()},
        {"url": f"{clip_server}/{name}"},
    ]
    answers = []
    for source in sources:
        chat = [
            {"role": "user", "content": [{"type": "video", **source}, {"type": "text", "text": QUESTION}]}
        ]
        (record,) = pipe(chat, num_frames=8, max_new_tokens=NEW_TOKENS, return_full_text=False)
        assert record["input_text"] == chat
        answers.append(record["generated_text"])
    assert answers == answers[:1] * len(sources)
    with pytest.raises(OSError, match=r"Could not fetch the video .*/missing\.mp4"):
        pipe([{"role": "user", "content": [{"type": "video", "url": f"{clip_server}/missing.mp4"}]}])
    with pytest.raises(ValueError, match=r"unsupported URL scheme 'ftp'"):
        pipe([{"role": "user", "content": [{"type": "video", "url": "ftp://host/clip.mp4"}]}])
    with pytest.raises(ValueError, match=r"exactly one of `video`.*got `path` and `url`"):
        pipe(
            [{"role": "user", "content": [{"type": "video", "path": str(real_clip), "url": str(real_clip)}]}]
        )


def test_clip_timing_reaches_the_processor(pipes, real_clip, clip_frames, generate_spy, caplog) -> None:
    frames, metadata = clip_frames
    pipe = pipes["qwen2_5_vl"]
    calls = generate_spy(pipe)
    options = {"max_new_tokens": 1, "vreason": False, "return_full_text": False}
    kwargs = {"text": QUESTION, **options}
    from_path = pipe(real_clip, num_frames=8, **kwargs)
    from_frames = pipe(frames, video_metadata=metadata, **kwargs)
    from_chat = pipe(
        [
            {
                "role": "user",
                "content": [
                    {"type": "video", "video": frames, "video_metadata": dict(metadata)},
                    {"type": "text", "text": QUESTION},
                ],
            }
        ],
        **options,
    )
    inputs_module._warn_once.cache_clear()
    with caplog.at_level(logging.WARNING, logger=inputs_module.__name__):
        (without_metadata,) = pipe(frames, **kwargs)
    assert "came without `video_metadata`" in caplog.text
    assert from_path == from_frames
    assert from_chat[0]["generated_text"] == from_path[0]["generated_text"]
    # 8 of 250 frames at 25 fps is 0.8 sampled frames per second; 2 frames per temporal patch -> 2.5 s per grid step.
    seconds = [call["second_per_grid_ts"].tolist() for call in calls]
    assert seconds[:3] == [[2.5]] * 3
    assert seconds[3] == pytest.approx([2 / 24])  # the processor's 24 fps fallback
    assert without_metadata["num_generated_tokens"] == 1

    # Qwen3-VL writes the frames' timestamps into the prompt and needs `do_sample_frames=False`.
    pipe = pipes["qwen3_vl"]
    calls = generate_spy(pipe)
    pipe(real_clip, num_frames=8, **kwargs)
    pipe(frames, **kwargs)
    reference = build_inputs(pipe.processor, QUESTION, video=frames, video_metadata=metadata)
    assert torch.equal(calls[0]["input_ids"].cpu(), reference["input_ids"])
    assert not torch.equal(calls[1]["input_ids"].cpu(), reference["input_ids"])


def test_default_sampling_and_chats(pipes, real_clip, generate_spy) -> None:
    pipe = pipes["llava_onevision"]
    calls = generate_spy(pipe)
    kwargs = {"max_new_tokens": 1, "vreason": False}
    chat = [
        {"role": "system", "content": "Answer briefly."},
        {
            "role": "user",
            "content": [{"type": "video", "path": str(real_clip)}, {"type": "text", "text": QUESTION}],
        },
    ]
    single = pipe(chat, **kwargs)
    assert pipe(text=chat, **kwargs) == single
    assert pipe([chat, chat], batch_size=2, **kwargs) == [single, single]
    prefill = [*chat, {"role": "assistant", "content": [{"type": "text", "text": "The answer is"}]}]
    pipe(prefill, **kwargs)
    # bikes.mp4 lasts 10 s: 2 fps would give 20 frames, capped at 16 (Video-R1's protocol).
    assert calls[0]["pixel_values_videos"].shape[:2] == (1, 16)
    assert pipe.processor.tokenizer.decode(calls[-1]["input_ids"][0]).endswith("The answer is")
    # `continue_final_message=False` starts a new turn after the assistant message instead.
    pipe(prefill, continue_final_message=False, **kwargs)
    assert not pipe.processor.tokenizer.decode(calls[-1]["input_ids"][0]).endswith("The answer is")
    pipe(real_clip, text=QUESTION, fps=0.5, **kwargs)
    pipe(real_clip, text=QUESTION, fps=4.0, max_frames=None, **kwargs)
    assert [call["pixel_values_videos"].shape[1] for call in calls[-2:]] == [5, 40]


def test_local_folder(pipes, real_clip, tmp_path) -> None:
    model, processor = build_tiny_qwen2_5_vl()
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    pipe = pipeline(TASK, model=str(tmp_path))
    assert isinstance(pipe, VideoTextToTextPipeline)
    kwargs = {"text": QUESTION, "num_frames": 8, "max_new_tokens": NEW_TOKENS, "return_traces": True}
    (record,) = pipe(real_clip, **kwargs)  # V-Reason with the default knobs
    assert record["optimizer_steps"] > 0
    # Two model instances agree up to the last bits: tokens exactly, traces with a tolerance.
    _assert_same_records(record, pipes["qwen2_5_vl"](real_clip, **kwargs)[0])


def test_vreason_model_repo(pipes, real_clip, tmp_path, generate_spy) -> None:
    """A repo of `save_vreason_model` decodes with its stored knobs unless told otherwise, with or without remote code."""
    model, processor = build_tiny_qwen2_5_vl()
    repo = save_vreason_model(model, tmp_path / "repo", {"update_every": 4}, processor=processor)
    base = pipes["qwen2_5_vl"]
    kwargs = {"text": QUESTION, "num_frames": 8, "max_new_tokens": NEW_TOKENS, "return_traces": True}
    expected = base(real_clip, vreason={"update_every": 4}, **kwargs)[0]
    for trust in (False, True):
        pipe = pipeline(TASK, model=str(repo), trust_remote_code=trust)
        loaded = pipe.model.state_dict()
        assert loaded.keys() == model.state_dict().keys()
        assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())  # the exact base weights
        calls = generate_spy(pipe)
        (stored,) = pipe(real_clip, **kwargs)
        assert stored["optimizer_steps"] == 2  # tokens 0 and 4
        _assert_same_records(stored, expected)
        # A dict overrides some of the stored knobs, a VReasonConfig replaces them, False decodes plainly.
        assert pipe(real_clip, vreason={"num_steps": 3}, **kwargs)[0]["optimizer_steps"] == 6
        assert pipe(real_clip, vreason=VReasonConfig(), **kwargs)[0]["optimizer_steps"] == 4
        plain_kwargs = {**kwargs, "return_traces": False}
        assert pipe(real_clip, vreason=False, **plain_kwargs) == base(
            real_clip, vreason=False, **plain_kwargs
        )
        knobs = [call.get("vreason_config") for call in calls]
        if (
            trust
        ):  # the repo's own `generate` runs V-Reason: it gets the knobs in full, and no custom_generate
            assert not any("custom_generate" in call for call in calls)
            assert knobs[:3] == [
                VReasonConfig(update_every=4).knobs(),
                VReasonConfig(update_every=4, num_steps=3).knobs(),
                VReasonConfig().knobs(),
            ]
            assert knobs[3] is None
        else:  # the base model's `generate`, with the callable and the stored knobs
            assert [call.get("custom_generate") for call in calls[:3]] == [vreason_generate] * 3
            assert knobs[0].knobs() == VReasonConfig(update_every=4).knobs()
            assert "custom_generate" not in calls[3]


# ------------------------------------------------------------------------------------------------ errors


def test_input_errors(pipes, real_clip, clip_frames, tmp_path) -> None:
    pipe = pipes["qwen2_5_vl"]
    frames, _ = clip_frames
    video_item = {"type": "video", "video": str(real_clip)}
    with pytest.raises(ValueError, match="no video given"):
        pipe(text=QUESTION)
    with pytest.raises(ValueError, match=r"The chat: no video given"):
        pipe([{"role": "user", "content": [{"type": "text", "text": QUESTION}]}])
    with pytest.raises(ValueError, match="no question given"):
        pipe(real_clip)
    with pytest.raises(ValueError, match=r"message 0, item 1: unsupported item type 'image'"):
        pipe([{"role": "user", "content": [video_item, {"type": "image", "image": "x.png"}]}])
    with pytest.raises(ValueError, match=r"Chat 1, message 0, item 0: a video item needs the video"):
        pipe(
            [[{"role": "user", "content": [video_item]}], [{"role": "user", "content": [{"type": "video"}]}]]
        )
    with pytest.raises(ValueError, match="put the question inside the chat"):
        pipe([{"role": "user", "content": [video_item]}], text=QUESTION)
    with pytest.raises(
        ValueError, match=r"Input 1: a decoded video must be a 4D frame array .* \(272, 640, 3\)"
    ):
        pipe([frames, frames[0]], text=QUESTION)
    with pytest.raises(TypeError, match=r"a video must be a file path or .* got int"):
        pipe(3, text=QUESTION)
    with pytest.raises(ValueError, match=r"Got 2 videos but 3 values of `text`"):
        pipe([real_clip, real_clip], text=["a", "b", "c"])
    with pytest.raises(ValueError, match="unknown key"):
        pipe({"video": real_clip, "question": QUESTION})
    with pytest.raises(TypeError, match="`video_metadata` must be"):
        pipe(frames, text=QUESTION, video_metadata=25.0)
    with pytest.raises(ValueError, match="`images`"):
        pipe(images=frames, text=QUESTION)
    with pytest.raises(ValueError, match=r"`text=`"):
        pipe(real_clip, prompt=QUESTION)
    with pytest.raises(FileNotFoundError, match=r"missing\.mp4"):
        pipe(tmp_path / "missing.mp4", text=QUESTION)
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(VideoDecodeError, match=r"notes\.mp4"):
        pipe(tmp_path / "notes.mp4", text=QUESTION)


def test_parameter_errors(pipes, real_clip, clip_frames, caplog) -> None:
    pipe = pipes["qwen2_5_vl"]
    frames, metadata = clip_frames
    with pytest.raises(ValueError, match=r"`num_frames` \(8\) and `fps` \(2.0\) are mutually exclusive"):
        pipe(real_clip, text=QUESTION, num_frames=8, fps=2.0)
    with pytest.raises(ValueError, match="`num_frames` must be a positive integer"):
        pipe(real_clip, text=QUESTION, num_frames=0)
    with pytest.raises(TypeError, match="`vreason` must be True"):
        pipe(real_clip, text=QUESTION, vreason="on")
    with pytest.raises(TypeError, match=r"unknown argument\(s\) `lrr` \(did you mean `lr`\?\)"):
        pipe(real_clip, text=QUESTION, vreason={"lrr": 0.1})
    with pytest.raises(ValueError, match="`vreason=`"):
        pipe(real_clip, text=QUESTION, vreason_config={"lr": 0.1})
    with pytest.raises(ValueError, match="`return_traces=True` needs V-Reason"):
        pipe(real_clip, text=QUESTION, num_frames=8, vreason=False, return_traces=True)
    with pytest.raises(ValueError, match="pass `vreason=False` to decode with another loop"):
        pipe(frames, text=QUESTION, video_metadata=metadata, custom_generate=vreason_generate)
    with pytest.raises(ValueError, match="one answer per input"):
        pipe(real_clip, text=QUESTION, num_return_sequences=2)
    with pytest.raises(ValueError, match="`max_new_tokens` is defined twice"):
        pipe(real_clip, text=QUESTION, max_new_tokens=4, generate_kwargs={"max_new_tokens": 4})
    with pytest.raises(ValueError, match="`batch_size` must be a positive integer"):
        pipe([real_clip], text=QUESTION, batch_size=0)
    with pytest.raises(ValueError, match=r"could not batch videos of \[8, 6\] frames"):
        pipes["llava_onevision"](
            [frames, frames[:6]], text=QUESTION, video_metadata=[metadata, None], batch_size=2
        )
    inputs_module._warn_once.cache_clear()
    with caplog.at_level(logging.WARNING, logger=inputs_module.__name__):
        pipe(frames, text=QUESTION, video_metadata=metadata, num_frames=4, max_new_tokens=1, vreason=False)
    assert "apply to video files only" in caplog.text


def test_processor_without_video_processor(pipes) -> None:
    pipe = pipes["qwen2_5_vl"]
    with pytest.raises(ValueError, match="needs a processor with a video processor"):
        VideoTextToTextPipeline(model=pipe.model, processor=pipe.processor.tokenizer, device=pipe.device)
