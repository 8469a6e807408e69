#!/usr/bin/env python
# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Where the time of a V-Reason generation goes: torch.profiler tables of greedy vs V-Reason on the same input.

Example: `python benchmarks/profile_step.py --layers 28 --device cuda --dtype bfloat16`
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cost import build, timed_generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="shapes")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="bfloat16" if torch.cuda.is_available() else "float32")
    parser.add_argument("--layers", type=int, default=28)
    parser.add_argument("--vocab", type=int, default=152064)
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--rows-shown", type=int, default=25)
    args = parser.parse_args()
    model, inputs, scope = build(args)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device.startswith("cuda") else [])
    for name, knobs in (("greedy", None), ("V-Reason k=2,s=1", {"update_every": 2, "num_steps": 1})):
        timed_generate(model, inputs, 4, args.device, knobs, scope)
        with profile(activities=activities) as prof:
            seconds = timed_generate(model, inputs, args.new_tokens, args.device, knobs, scope)
        print(f"\n## {name}: {1e3 * seconds / args.new_tokens:.2f} ms/token\n")
        print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=args.rows_shown))


if __name__ == "__main__":
    main()
