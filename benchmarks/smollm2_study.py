#!/usr/bin/env python
# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Effect and cost of V-Reason on a real text model (SmolLM2-135M-Instruct) and on a tiny video model.

Sections (choose with `--sections`, default all):

- `lr`:       greedy base vs V-Reason for every `--lrs` value (prompt scope, `--update-every`, `--num-steps`,
              `--lr-scale`), on `--num-prompts` short arithmetic/logic chat prompts.
- `minimize`: the same with `alpha_schedule="minimize"` at every `--minimize-lrs` value.
- `default`:  `VReasonConfig()` defaults (only `controller_scope="prompt"` changed) vs greedy.
- `video`:    the tiny random Qwen2.5-VL on a real clip (`--clip`, `--num-frames` frames sampled uniformly)
              and `--video-questions` questions, greedy vs `VReasonConfig()` defaults (video scope).

Metrics, per configuration:

- *changed*: outputs (generated token ids, cut after the first EOS) that differ from the greedy base.
- *tokens*: mean number of generated tokens (decode steps, the EOS included).
- *H after peak*: per prompt, the mean entropy (nats, raw logits) of the tokens strictly after the argmax of the
  entropy EMA (the row's `ema_beta` / `ema_init`: `--ema-beta` / `--ema-init` for the sweep and the greedy base),
  then averaged over the prompts that have such tokens. For V-Reason the entropy trace is the pre-update
  distribution of each position (`VReasonGenerateOutput.entropies`); for greedy it is computed from
  `output_logits`, with the EMA of the core's `schedule_traces` under the same knobs.
- *mean H*: mean over prompts of the mean entropy of all generated tokens.
- *peak at*: mean index of that argmax; *α=−1*: share of the decode steps with α = −1 (exploit).
- *tok/s*: decode tokens per second. A streamer timestamps every generated token (prefill and the first token are
  excluded). Every V-Reason generation is paired with a greedy generation of the same prompt, run just before it
  (alternating), after one warm-up of each. *(median)*: from the median duration of the non-overlapping windows
  of `update_every` tokens (each window holds exactly one optimiser step), pooled over the prompts; robust to
  other processes competing for the CPU. *time ratio* = V-Reason time per decode token / paired greedy time per
  decode token (>1 = V-Reason slower), from the medians and from the totals (sum of decode time / sum of decode
  tokens, sensitive to load bursts).
- *wall s / run*: mean wall time of one V-Reason generation of that row (prefill included).

Example:

```bash
python benchmarks/smollm2_study.py --sections lr,minimize --lrs 0.01,0.05 --minimize-lrs 0.05
```
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import torch
from transformers.generation.streamers import BaseStreamer

from vreason_hf import VReasonConfig, build_inputs
from vreason_hf.generation import as_vreason_config, schedule_traces, vreason_generate
from vreason_hf.generation import entropy as entropy_of

PROMPTS: list[str] = [
    "If I have 3 apples and buy 5 more, then eat 2, how many are left? Think step by step.",
    "A train travels 60 km in 1 hour. How far does it travel in 3 hours? Think step by step.",
    "Tom is taller than Anna, and Anna is taller than Ben. Who is the shortest? Explain your reasoning.",
    "What is 12 times 4, minus 8? Think step by step.",
    "A shop sells pens at 2 dollars each. How much do 7 pens cost? Think step by step.",
    "If today is Monday, what day will it be in 10 days? Think step by step.",
    "Sara has twice as many books as Mike. Mike has 6 books. How many books do they have together? "
    "Think step by step.",
    "Is 51 a prime number? Explain your reasoning.",
    "A rectangle is 5 cm wide and 8 cm long. What is its area and its perimeter? Think step by step.",
    "All cats are animals. Some animals are black. Can we conclude that some cats are black? Explain.",
    "I had 20 dollars, spent a quarter of it on lunch and 3 dollars on a bus ticket. How much is left? "
    "Think step by step.",
    "There are 4 boxes with 6 eggs each, and 5 eggs are broken. How many eggs are not broken? "
    "Think step by step.",
]

VIDEO_QUESTIONS: list[str] = [
    "What is happening in this video?",
    "How many people appear in the video?",
    "What are the people riding?",
    "Describe the background of the scene.",
    "Is the camera moving or static? Explain.",
    "What colours dominate the video?",
    "Where do you think this video was filmed?",
    "What happens at the end of the clip?",
    "Is it day or night in the video? Think step by step.",
    "Summarise the clip in one sentence.",
]


# --------------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------------


class TimingStreamer(BaseStreamer):
    """Records the time of every generated token (the first `put` is the prompt and is skipped)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


@dataclass
class Run:
    """One generation of one prompt."""

    tokens: list[int]
    entropies: list[float]
    ema: list[float]
    alphas: list[float] = field(default_factory=list)
    optimizer_steps: int = 0
    decode_tokens: int = 0
    decode_s: float = 0.0
    token_times: list[float] = field(
        default_factory=list
    )  # perf_counter() when each generated token came out
    total_s: float = 0.0
    trace_mismatch: bool = False  # the trace length differs from the number of generated tokens
    nonfinite: bool = False  # a NaN/inf in the traces before the sample finished

    @property
    def peak(self) -> int:
        return int(np.argmax(self.ema)) if self.ema else 0

    @property
    def post_peak_entropy(self) -> float:
        tail = self.entropies[self.peak + 1 :]
        return float(np.mean(tail)) if tail else math.nan


def _eos_ids(model: Any) -> set[int]:
    eos = model.generation_config.eos_token_id
    if eos is None:
        return set()
    return {int(e) for e in (eos if isinstance(eos, list | tuple) else [eos])}


def _cut(generated: torch.Tensor, eos: set[int]) -> list[int]:
    tokens = generated.tolist()
    for i, t in enumerate(tokens):
        if t in eos:
            return tokens[: i + 1]
    return tokens


def generate_once(
    model: Any,
    inputs: dict[str, torch.Tensor],
    vconfig: VReasonConfig | dict[str, Any] | None,
    max_new_tokens: int,
    schedule: VReasonConfig,
) -> Run:
    """
    Greedy generation (`vconfig=None`: plain `generate`) or V-Reason generation of one prompt (batch 1). A greedy
    run's EMA trace is the one `schedule` (its `ema_beta` and `ema_init`) gives on its entropies.
    """
    eos = _eos_ids(model)
    prompt_len = inputs["input_ids"].shape[1]
    streamer = TimingStreamer()
    kwargs: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "do_sample": False,
        "return_dict_in_generate": True,
    }
    start = time.perf_counter()
    if vconfig is None:
        out = model.generate(**inputs, streamer=streamer, output_logits=True, **kwargs)
    else:
        out = model.generate(
            **inputs,
            custom_generate=vreason_generate,
            vreason_config=vconfig,
            vreason_streamer=streamer,
            **kwargs,
        )
    total = time.perf_counter() - start
    tokens = _cut(out.sequences[0, prompt_len:], eos)
    n = len(tokens)
    run = Run(tokens=tokens, entropies=[], ema=[], total_s=total)
    run.token_times = [t - start for t in streamer.times[:n]]
    if len(streamer.times) >= 2:
        run.decode_tokens = min(n, len(streamer.times)) - 1
        run.decode_s = streamer.times[run.decode_tokens] - streamer.times[0]
    if vconfig is None:
        with torch.no_grad():
            h = torch.stack([entropy_of(step[0]) for step in out.logits[:n]])
        run.entropies = h.tolist()
        run.ema = schedule_traces(h, beta=schedule.ema_beta, ema_init=schedule.ema_init)[0].tolist()
        run.nonfinite = not bool(torch.isfinite(h).all())
    else:
        ent, ema, alpha = out.entropies[0], out.ema_entropies[0], out.alphas[0]
        valid = ~torch.isnan(ent)
        run.trace_mismatch = int(valid.sum()) != n or ent.shape[0] < n
        run.nonfinite = not bool(torch.isfinite(ent[:n]).all() and torch.isfinite(ema[:n]).all())
        run.entropies, run.ema, run.alphas = ent[:n].tolist(), ema[:n].tolist(), alpha[:n].tolist()
        run.optimizer_steps = int(out.optimizer_steps[0])
    return run


@dataclass
class Row:
    """A configuration evaluated on every prompt, with the paired greedy runs."""

    label: str
    runs: list[Run]
    greedy: list[Run]
    base: list[Run]  # the reference greedy outputs ("changed" is counted against these)
    window: int = 2  # timing window in tokens (update_every: one optimiser step per window)

    def _median_tps(self, runs: list[Run]) -> float:
        """Decode tokens/s from the median duration of non-overlapping `window`-token windows (robust to load)."""
        spans = []
        for r in runs:
            t = r.token_times
            spans += [t[i + self.window] - t[i] for i in range(0, len(t) - self.window, self.window)]
        return self.window / float(np.median(spans)) if spans else math.nan

    def summary(self) -> dict[str, Any]:
        n = len(self.runs)
        changed = sum(r.tokens != b.tokens for r, b in zip(self.runs, self.base, strict=True))
        pp = [r.post_peak_entropy for r in self.runs]
        pp_valid = [v for v in pp if not math.isnan(v)]
        vr_tok = sum(r.decode_tokens for r in self.runs)
        vr_s = sum(r.decode_s for r in self.runs)
        g_tok = sum(r.decode_tokens for r in self.greedy)
        g_s = sum(r.decode_s for r in self.greedy)
        steps = [len(r.alphas) for r in self.runs]
        minus = sum(sum(1 for a in r.alphas if a < 0) for r in self.runs)
        vr_tps = vr_tok / vr_s if vr_s > 0 else math.nan
        g_tps = g_tok / g_s if g_s > 0 else math.nan
        out = {
            "label": self.label,
            "prompts": n,
            "changed": changed,
            "mean_tokens": float(np.mean([len(r.tokens) for r in self.runs])),
            "post_peak_entropy": float(np.mean(pp_valid)) if pp_valid else math.nan,
            "post_peak_prompts": len(pp_valid),
            "mean_entropy": float(np.mean([np.mean(r.entropies) for r in self.runs if r.entropies])),
            "mean_peak_index": float(np.mean([r.peak for r in self.runs])),
            "alpha_minus_share": (minus / sum(steps)) if any(steps) else math.nan,
            "mean_optimizer_steps": float(np.mean([r.optimizer_steps for r in self.runs])),
            "decode_tps": vr_tps,
            "greedy_decode_tps": g_tps,
            "time_ratio": g_tps / vr_tps if vr_tps > 0 else math.nan,
            "decode_tps_median": self._median_tps(self.runs),
            "greedy_decode_tps_median": self._median_tps(self.greedy),
            "wall_s": sum(r.total_s for r in self.runs),
            "mean_wall_s": float(np.mean([r.total_s for r in self.runs])),
            "greedy_mean_wall_s": float(np.mean([r.total_s for r in self.greedy]))
            if self.greedy
            else math.nan,
            "trace_mismatches": sum(r.trace_mismatch for r in self.runs),
            "nonfinite": sum(r.nonfinite for r in self.runs),
            "greedy_nondeterministic": sum(
                g.tokens != b.tokens for g, b in zip(self.greedy, self.base, strict=False)
            ),
        }
        out["time_ratio_median"] = out["greedy_decode_tps_median"] / out["decode_tps_median"]
        return out


def evaluate(
    model: Any,
    prompts: list[dict[str, torch.Tensor]],
    vconfig: VReasonConfig | dict[str, Any] | None,
    label: str,
    base: list[Run] | None,
    max_new_tokens: int,
    schedule: VReasonConfig,
    on_row: Any = None,
) -> Row:
    """
    Alternate greedy / V-Reason on every prompt. With `vconfig=None` the row is the greedy base itself, with the
    EMA of `schedule`; greedy runs paired with a V-Reason configuration get that configuration's EMA.
    `on_row(row)` is called when the row is complete (progress output / checkpointing).
    """
    if vconfig is not None:
        schedule = as_vreason_config(vconfig)
    runs, greedy = [], []
    for i, inputs in enumerate(prompts):
        g = generate_once(model, inputs, None, max_new_tokens, schedule)
        greedy.append(g)
        runs.append(g if vconfig is None else generate_once(model, inputs, vconfig, max_new_tokens, schedule))
        print(f"  [{label}] prompt {i + 1}/{len(prompts)}: {len(runs[-1].tokens)} tokens", file=sys.stderr)
    window = as_vreason_config(vconfig).update_every if vconfig is not None else 2
    row = Row(label, runs, greedy, base if base is not None else greedy, window)
    if on_row is not None:
        on_row(row)
    return row


def warm_up(model: Any, inputs: dict[str, torch.Tensor], vconfig: VReasonConfig | dict[str, Any]) -> None:
    generate_once(model, inputs, None, 16, VReasonConfig())
    generate_once(model, inputs, vconfig, 16, VReasonConfig())


# --------------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------------


def _fmt(value: float, digits: int = 2) -> str:
    return (
        "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"
    )


def markdown_table(rows: list[dict[str, Any]]) -> str:
    header = (
        "| config | changed | mean tokens | mean H | H after peak | peak at | α=−1 share | Adam steps | "
        "tok/s (median) | greedy tok/s (median) | time ratio (median) | time ratio (totals) | wall s / run |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for s in rows:
        lines.append(
            f"| {s['label']} | {s['changed']}/{s['prompts']} | {_fmt(s['mean_tokens'], 1)} | {_fmt(s['mean_entropy'], 3)} | "
            f"{_fmt(s['post_peak_entropy'], 3)} ({s['post_peak_prompts']}) | {_fmt(s['mean_peak_index'], 1)} | "
            f"{_fmt(s['alpha_minus_share'])} | {_fmt(s['mean_optimizer_steps'], 1)} | "
            f"{_fmt(s['decode_tps_median'], 1)} | {_fmt(s['greedy_decode_tps_median'], 1)} | "
            f"{_fmt(s['time_ratio_median'])} | {_fmt(s['time_ratio'])} | {_fmt(s['mean_wall_s'])} |"
        )
    return "\n".join(lines)


def anomalies(rows: list[dict[str, Any]]) -> list[str]:
    notes = []
    for s in rows:
        for key, what in (
            ("trace_mismatches", "trace length != generated tokens"),
            ("nonfinite", "non-finite entropy/EMA before EOS"),
            ("greedy_nondeterministic", "paired greedy run differed from the base"),
        ):
            if s.get(key):
                notes.append(f"- {s['label']}: {s[key]} run(s) with {what}")
    return notes


# --------------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------------


def smollm2_prompts(tokenizer: Any, count: int) -> list[dict[str, torch.Tensor]]:
    out = []
    for text in PROMPTS[:count]:
        enc = build_inputs(tokenizer, text)
        out.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
    return out


def print_example(tokenizer: Any, prompts: list[str], base: Row | list[Run], row: Row) -> None:
    base_runs = base.runs if isinstance(base, Row) else base
    index = next(
        (i for i, (r, b) in enumerate(zip(row.runs, base_runs, strict=True)) if r.tokens != b.tokens), 0
    )
    print(f"\n### Example output ({row.label}, prompt {index + 1})\n")
    print(f"**Prompt:** {prompts[index]}\n")
    for name, run in (("greedy", base_runs[index]), (row.label, row.runs[index])):
        text = tokenizer.decode(run.tokens, skip_special_tokens=False)
        print(f"**{name}** ({len(run.tokens)} tokens):\n\n```text\n{text}\n```\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sections",
        default="lr,minimize,default,video",
        help="comma-separated subset of lr,minimize,default,video",
    )
    parser.add_argument("--lrs", default="0.01,0.03,0.05,0.1,0.2", help="V-Reason learning rates to sweep")
    parser.add_argument(
        "--minimize-lrs", default="0.05", help="lrs at which to run alpha_schedule='minimize'"
    )
    parser.add_argument("--update-every", type=int, default=2)
    parser.add_argument("--num-steps", type=int, default=1)
    parser.add_argument("--lr-scale", default="value_rms", choices=("value_rms", "absolute"))
    parser.add_argument(
        "--ema-beta", type=float, default=0.97, help="EMA used for the greedy traces and the sweep"
    )
    parser.add_argument(
        "--ema-init",
        default="zero",
        choices=("zero", "first"),
        help="EMA start for the greedy traces and the sweep",
    )
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--num-prompts", type=int, default=len(PROMPTS))
    parser.add_argument(
        "--example-lr", type=float, default=None, help="print a greedy vs V-Reason example for this swept lr"
    )
    parser.add_argument("--clip", default="bikes.mp4")
    parser.add_argument("--num-frames", type=int, default=8)
    parser.add_argument("--video-questions", type=int, default=len(VIDEO_QUESTIONS))
    parser.add_argument("--video-max-new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="write every summary (and per-run data) to this file")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    unknown = sections - {"lr", "minimize", "default", "video"}
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    results: dict[str, Any] = {"args": vars(args), "completed_rows": []}

    def checkpoint(row: Row) -> None:
        """Print the finished row at once and save what is done so far (long runs can be interrupted)."""
        summary = row.summary()
        print(markdown_table([summary]).splitlines()[-1], file=sys.stderr, flush=True)
        results["completed_rows"].append(summary)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1, default=float)

    def sweep_config(lr: float, schedule: str = "switch") -> dict[str, Any]:
        return {
            "lr": lr,
            "lr_scale": args.lr_scale,
            "update_every": args.update_every,
            "num_steps": args.num_steps,
            "ema_beta": args.ema_beta,
            "ema_init": args.ema_init,
            "alpha_schedule": schedule,
            "controller_scope": "prompt",
        }

    greedy_schedule = VReasonConfig(ema_beta=args.ema_beta, ema_init=args.ema_init)
    if sections & {"lr", "minimize", "default"}:
        from vreason_hf.testing import load_smollm2

        t0 = time.perf_counter()
        model, tokenizer = load_smollm2()
        print(f"Loaded SmolLM2-135M-Instruct in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        texts = PROMPTS[: args.num_prompts]
        prompts = smollm2_prompts(tokenizer, args.num_prompts)
        warm_up(model, prompts[0], sweep_config(0.05))

        base = evaluate(
            model, prompts, None, "greedy (lr=0)", None, args.max_new_tokens, greedy_schedule, checkpoint
        )
        rows: list[Row] = [base]
        if "lr" in sections:
            for lr in (float(x) for x in args.lrs.split(",") if x.strip()):
                rows.append(
                    evaluate(
                        model,
                        prompts,
                        sweep_config(lr),
                        f"lr={lr:g}",
                        base.runs,
                        args.max_new_tokens,
                        greedy_schedule,
                        checkpoint,
                    )
                )
        if "minimize" in sections:
            for lr in (float(x) for x in args.minimize_lrs.split(",") if x.strip()):
                rows.append(
                    evaluate(
                        model,
                        prompts,
                        sweep_config(lr, "minimize"),
                        f"lr={lr:g}, minimize",
                        base.runs,
                        args.max_new_tokens,
                        greedy_schedule,
                        checkpoint,
                    )
                )
        sweep = [r.summary() for r in rows]
        if sections & {"lr", "minimize"}:
            print(
                f"\n## SmolLM2-135M-Instruct: lr sweep ({len(prompts)} prompts, greedy, max_new_tokens="
                f"{args.max_new_tokens}, update_every={args.update_every}, num_steps={args.num_steps}, "
                f"lr_scale={args.lr_scale}, prompt scope)\n"
            )
            print(markdown_table(sweep))
        results["smollm2_sweep"] = sweep
        results["smollm2_runs"] = {r.label: [asdict(x) for x in r.runs] for r in rows}

        if args.example_lr is not None:
            match = [r for r in rows if r.label == f"lr={args.example_lr:g}"]
            if match:
                print_example(tokenizer, texts, base, match[0])

        if "default" in sections:
            defaults = VReasonConfig(controller_scope="prompt")
            warm_up(model, prompts[0], defaults)
            row = evaluate(
                model,
                prompts,
                defaults,
                "VReasonConfig() defaults",
                base.runs,
                args.max_new_tokens,
                greedy_schedule,
                checkpoint,
            )
            greedy_row = Row("greedy (paired)", row.greedy, row.greedy, base.runs, row.window)
            table = [greedy_row.summary(), row.summary()]
            knobs = {
                k: v
                for k, v in defaults.knobs().items()
                if k in ("lr", "lr_scale", "update_every", "num_steps", "ema_beta", "alpha_schedule")
            }
            print(f"\n## SmolLM2-135M-Instruct: VReasonConfig() defaults {knobs}, prompt scope\n")
            print(markdown_table(table))
            results["smollm2_default"] = table
            print_example(tokenizer, texts, base, row)
        notes = anomalies(sweep + results.get("smollm2_default", []))
        if notes:
            print("\n**Anomalies:**\n" + "\n".join(notes))
        del model

    if "video" in sections:
        from vreason_hf.testing import build_tiny_qwen2_5_vl, real_clip_path

        model, processor = build_tiny_qwen2_5_vl()
        clip = real_clip_path(args.clip)
        questions = VIDEO_QUESTIONS[: args.video_questions]
        inputs = [dict(build_inputs(processor, q, video=clip, num_frames=args.num_frames)) for q in questions]
        n_video = int((inputs[0]["input_ids"] == model.config.video_token_id).sum())
        defaults = VReasonConfig()
        warm_up(model, inputs[0], defaults)
        row = evaluate(
            model,
            inputs,
            defaults,
            "V-Reason defaults (video scope)",
            None,
            args.video_max_new_tokens,
            greedy_schedule,
            checkpoint,
        )
        base_row = Row("greedy (paired)", row.greedy, row.greedy, row.greedy, row.window)
        table = [base_row.summary(), row.summary()]
        print(
            f"\n## Tiny random Qwen2.5-VL, real clip {args.clip} ({args.num_frames} frames, {n_video} video "
            f"tokens), {len(questions)} questions, max_new_tokens={args.video_max_new_tokens}\n"
        )
        print(markdown_table(table))
        results["video"] = table
        notes = anomalies(table)
        if notes:
            print("\n**Anomalies:**\n" + "\n".join(notes))

    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=float)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
