# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Peak memory of one generation: CUDA's allocator peak on GPUs, the process's peak resident set size on the CPU.

See [`~vreason_hf.eval.GenerationResult.memory_source`] for what each source measures.
"""

from __future__ import annotations

import sys
from typing import Any

import torch

__all__ = ["PeakMemory"]


def _read_proc_status(key: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _maxrss_kb() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    scale = 1 if sys.platform != "darwin" else 1 / 1024  # macOS reports bytes
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale)


class PeakMemory:
    """Context manager measuring the peak memory of what runs inside it, for `model`'s devices.

    After the block, `mb` holds the peak in MiB (`None` when it cannot be measured) and `source` how it was measured:
    `"cuda_max_allocated"`, `"rss_peak"`, `"maxrss"` or `"none"`.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.cuda_devices = sorted(
            {p.device for p in model.parameters() if p.device.type == "cuda"}, key=lambda d: d.index or 0
        )
        self.mb: float | None = None
        self.source = "none"
        self._hwm_reset = False

    def __enter__(self) -> PeakMemory:
        if self.cuda_devices:
            for device in self.cuda_devices:
                torch.cuda.synchronize(device)
                torch.cuda.reset_peak_memory_stats(device)
            return self
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
                clear.write("5")  # Linux >= 4.0: reset the peak RSS (VmHWM) to the current RSS
            self._hwm_reset = True
        except OSError:
            pass
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.cuda_devices:
            total = 0
            for device in self.cuda_devices:
                torch.cuda.synchronize(device)
                total += torch.cuda.max_memory_allocated(device)
            self.mb, self.source = total / 2**20, "cuda_max_allocated"
            return
        peak = _read_proc_status("VmHWM") if self._hwm_reset else None
        if peak is not None:
            self.mb, self.source = peak / 1024, "rss_peak"
            return
        after = _maxrss_kb()
        if after is not None:
            self.mb, self.source = after / 1024, "maxrss"
