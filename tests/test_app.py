"""The app's Gradio-free parts in-process: the side-by-side comparison, the model slot, the plot, the Space folder.

The served page (browser, `gradio_client`, the exported Space started for real) is tested in test_app_served.py.
"""

from __future__ import annotations

import ast
import logging
import threading

import numpy as np
import pytest
from huggingface_hub import SpaceCard

from vreason_hf import VReasonConfig, vreason_generate
from vreason_hf.app import DEFAULT_MODEL, ModelSlot, build_app, build_space_dir, compare_answers, plot_answers
from vreason_hf.testing import weights_digest
from vreason_hf.video import VideoDecodeError, load_video

pytest.importorskip("gradio", reason="the app needs the `app` extra: pip install 'vreason-hf[app]'")

QUESTION = "What are the people doing?"
FRAMES, TOKENS = 8, 12


def _generate(model, inputs, **kwargs):
    out = model.generate(
        **inputs, max_new_tokens=TOKENS, do_sample=False, return_dict_in_generate=True, **kwargs
    )
    return out, out.sequences[0, inputs["input_ids"].shape[1] :].tolist()


@pytest.fixture(scope="module")
def reference(tiny_qwen2_5_vl, real_clip):
    """What the library answers directly: plain greedy `generate`, and V-Reason with the default knobs."""
    from vreason_hf.inputs import build_inputs

    model, processor = tiny_qwen2_5_vl
    frames, metadata = load_video(real_clip, num_frames=FRAMES)
    inputs = build_inputs(processor, QUESTION, video=frames, video_metadata=metadata)
    _, greedy = _generate(model, inputs)
    out, vreason = _generate(model, inputs, custom_generate=vreason_generate, vreason_config=VReasonConfig())
    return {"greedy": greedy, "vreason": vreason, "out": out}


def _compare(model, processor, clip, config=None, **kwargs):
    snapshots = []
    for plain, vreason in compare_answers(
        model,
        processor,
        clip,
        QUESTION,
        vreason_config=config or VReasonConfig(),
        num_frames=FRAMES,
        max_new_tokens=TOKENS,
        **kwargs,
    ):
        snapshots.append((len(plain.token_ids), plain.done, len(vreason.token_ids), vreason.done))
    return plain, vreason, snapshots


# --------------------------------------------------------------------------------------------- comparison
def test_columns_equal_greedy_and_vreason_and_stream_token_by_token(tiny_qwen2_5_vl, real_clip, reference):
    model, processor = tiny_qwen2_5_vl
    before = weights_digest(model)
    plain, vreason, snapshots = _compare(model, processor, real_clip)

    assert plain.token_ids == reference["greedy"]  # the num_steps=0 column is plain greedy decoding
    assert vreason.token_ids == reference["vreason"]
    out = reference["out"]
    for name in ("entropies", "ema_entropies", "alphas"):
        np.testing.assert_allclose(getattr(vreason, name), getattr(out, name)[0].tolist(), rtol=1e-6)
    assert vreason.optimizer_steps == int(out.optimizer_steps[0]) > 0
    assert plain.optimizer_steps == 0
    assert plain.done and vreason.done and plain.seconds > 0 and vreason.seconds > 0
    tokenizer = processor.tokenizer
    assert plain.text == tokenizer.decode(reference["greedy"], skip_special_tokens=True).strip()
    # One snapshot per token, plain first: its column is complete before V-Reason's first token.
    n_plain, n_vreason = len(plain.token_ids), len(vreason.token_ids)
    assert [s[0] for s in snapshots[:n_plain]] == list(range(1, n_plain + 1))
    assert all(s[0] == n_plain and s[1] for s in snapshots[n_plain + 1 :])
    assert [s[2] for s in snapshots if s[2]] == sorted(s[2] for s in snapshots if s[2])
    assert snapshots[-1] == (n_plain, True, n_vreason, True)
    assert weights_digest(model) == before
    assert all(t.name != "vreason-app-decode" for t in threading.enumerate())  # the decoding thread has ended


def test_lite_column_and_plain_column_without_lite(tiny_qwen2_5_vl, real_clip, reference):
    model, processor = tiny_qwen2_5_vl
    plain, lite, _ = _compare(model, processor, real_clip, VReasonConfig(lite=True))
    assert (plain.mode, lite.mode) == ("base", "lite")
    assert plain.token_ids == reference["greedy"]
    assert lite.optimizer_steps > 0


def test_leaving_early_stops_the_decoding_thread(tiny_qwen2_5_vl, real_clip, reference):
    model, processor = tiny_qwen2_5_vl
    stop = threading.Event()
    stream = compare_answers(
        model, processor, real_clip, QUESTION, vreason_config=VReasonConfig(), num_frames=FRAMES,
        max_new_tokens=TOKENS, stop=stop,
    )  # fmt: skip
    plain, _ = next(stream)
    assert len(plain.token_ids) == 1
    stream.close()  # what Gradio does when the visitor leaves
    assert stop.is_set()
    assert all(t.name != "vreason-app-decode" for t in threading.enumerate())
    # Nothing is left on the shared model: the next request answers exactly as before.
    again, _, _ = _compare(model, processor, real_clip)
    assert again.token_ids == reference["greedy"]


@pytest.mark.parametrize(
    ("video", "question", "error", "match"),
    [
        (None, QUESTION, ValueError, "No video: upload a clip"),
        ("clip", "   ", ValueError, "The question is empty"),
        ("corrupt", QUESTION, VideoDecodeError, "as a video"),
        ("missing", QUESTION, FileNotFoundError, "does not exist"),
    ],
)
def test_bad_requests_raise_one_clear_error(
    tiny_qwen2_5_vl, real_clip, tmp_path, video, question, error, match
):
    model, processor = tiny_qwen2_5_vl
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x01not a video" * 300)
    path = {"clip": real_clip, "corrupt": corrupt, "missing": tmp_path / "missing.mp4", None: None}[video]
    with pytest.raises(error, match=match):
        next(
            compare_answers(
                model, processor, path, question, vreason_config=VReasonConfig(), num_frames=FRAMES
            )
        )


# --------------------------------------------------------------------------------------------- model slot
def test_model_slot_loads_once_and_reports_a_failure_on_every_request():
    calls = []

    def broken():
        calls.append(1)
        raise OSError("no such repo: nobody/nothing\nmore details")

    slot = ModelSlot("nobody/nothing", broken)
    for _ in range(2):
        with pytest.raises(
            RuntimeError, match=r"^Cannot load the model 'nobody/nothing': no such repo: nobody/nothing$"
        ):
            slot.get()
    assert len(calls) == 1 and not slot.loaded


def test_model_slot_refuses_a_text_only_model(tiny_llama):
    slot = ModelSlot("tiny-llama", lambda: tiny_llama)
    slot.preload().join()
    with pytest.raises(RuntimeError, match="is text-only"):
        slot.get()


def test_model_slot_shares_one_load_between_concurrent_requests(tiny_qwen2_5_vl):
    calls = []

    def load():
        calls.append(1)
        return tiny_qwen2_5_vl

    slot = ModelSlot("tiny", load)
    results = []
    threads = [threading.Thread(target=lambda: results.append(slot.get())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(results) == 4 and all(r is results[0] for r in results)


# --------------------------------------------------------------------------------------------- plot
def test_plot_draws_both_columns_and_waits_for_a_first_token(tiny_qwen2_5_vl, real_clip):
    model, processor = tiny_qwen2_5_vl
    plain, vreason, _ = _compare(model, processor, real_clip)
    empty = type(plain)("base")
    assert plot_answers([empty]) is None
    image = plot_answers([plain, vreason])
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.std() > 10  # not blank
    only_plain = plot_answers([plain])
    assert not np.array_equal(only_plain, image)  # the V-Reason curves add pixels


# --------------------------------------------------------------------------------------------- build_app
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"concurrency_limit": 0}, ValueError, "`concurrency_limit` must be a positive integer"),
        ({"max_new_tokens": 0}, ValueError, "`max_new_tokens` must be a positive integer"),
        ({"num_frames": True}, ValueError, "`num_frames` must be a positive integer, got True"),
        ({"examples": ["missing.mp4"]}, FileNotFoundError, "Example clip.* not found: missing.mp4"),
        ({"vreason_config": {"lr": -1.0}}, ValueError, "`lr`"),
    ],
)
def test_build_app_rejects_bad_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        build_app("unused", preload=False, **kwargs)


# --------------------------------------------------------------------------------------------- Space folder
def test_space_folder_has_the_space_header_a_pinned_requirement_and_a_package_only_app(
    tmp_path, real_clip, caplog
):
    import gradio

    from vreason_hf.app.space import MODEL_ENV_VAR

    with caplog.at_level(logging.WARNING, logger="vreason_hf.app.space"):
        folder = build_space_dir(
            tmp_path / "space", examples=[real_clip], vreason_config={"lr": 0.1, "lite": True}
        )
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "README.md", "app.py", f"examples/{real_clip.name}", "requirements.txt",
    ]  # fmt: skip
    assert (folder / "examples" / real_clip.name).read_bytes() == real_clip.read_bytes()

    card = SpaceCard.load(folder / "README.md").data
    assert (card.sdk, card.app_file, card.sdk_version) == ("gradio", "app.py", gradio.__version__)
    assert card.models == [DEFAULT_MODEL] and "vreason" in card.tags and card.title
    assert tuple(map(int, card.python_version.split("."))) >= (3, 11)
    assert len(card.short_description) <= 60  # the Hub's limit

    from importlib.metadata import version

    installed = version("vreason-hf")
    assert (folder / "requirements.txt").read_text() == f"vreason-hf[app]=={installed}\n"
    if ".dev" in installed:
        assert "development version" in caplog.text

    source = (folder / "app.py").read_text()
    tree = ast.parse(source)
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported == {"logging", "os", "pathlib", "vreason_hf"}  # only the published package
    assert f"os.environ.get({MODEL_ENV_VAR!r}, {DEFAULT_MODEL!r})" in source
    # Only the knobs that differ from the defaults.
    assert "vreason_config={'lr': 0.1, 'lite': True}" in source


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"model_id": "local"}, ValueError, "is a local folder, which a Space cannot read"),
        ({"model_id": "not a/valid id"}, ValueError, "must be a Hub model id"),
        ({"examples": ["nowhere.mp4"]}, FileNotFoundError, "Example clip.* not found"),
        (
            {"examples": ["a/clip.mp4", "b/clip.mp4"]},
            ValueError,
            "different file names, got \\['clip.mp4', 'clip.mp4'\\]",
        ),
        ({"num_frames": 0}, ValueError, "`num_frames` must be a positive integer, got 0"),
        ({"concurrency_limit": 0}, ValueError, "`concurrency_limit` must be a positive integer, got 0"),
        ({"vreason_config": {"update_evry": 3}}, TypeError, "did you mean `update_every`"),
    ],
)
def test_space_folder_rejects_bad_arguments_before_writing(tmp_path, monkeypatch, kwargs, error, match):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "local").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "clip.mp4").write_bytes(b"")  # only the names matter here
    with pytest.raises(error, match=match):
        build_space_dir(tmp_path / "space", **kwargs)
    assert not (tmp_path / "space").exists()


def test_space_folder_does_not_overwrite_without_asking(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="is not empty; pass `overwrite=True`"):
        build_space_dir(tmp_path)
    build_space_dir(
        tmp_path, overwrite=True, requirement="vreason-hf[app] @ git+https://example.org/vreason-hf"
    )
    assert (tmp_path / "keep.txt").read_text() == "mine"
    assert (
        tmp_path / "requirements.txt"
    ).read_text() == "vreason-hf[app] @ git+https://example.org/vreason-hf\n"


# --------------------------------------------------------------------------------------------- commands
def _call(argv, capsys):
    from vreason_hf.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return exit_info.value.code, capsys.readouterr().err


def test_export_space_errors_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "local-model").mkdir()
    code, err = _call(["export-space", "space", "--model", "local-model"], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith("Error: `model_id` (CLI: `--model`) 'local-model' is a local folder")


def test_app_on_a_taken_port_is_one_line(tmp_path, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["app", "--model", str(tmp_path), "--port", str(port), "--device", "cpu"]
        code, err = _call(argv, capsys)
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert code == 1 and "Traceback" not in err
    assert errors == [errors[0]] and f"Cannot serve on 127.0.0.1:{port}" in errors[0]
