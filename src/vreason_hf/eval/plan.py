# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""What an evaluation run has to do, settled before its first generation: the arguments checked, the settings its
records must carry, and the samples and modes still missing from the results file (resume).

Used by :func:`~vreason_hf.eval.runner.evaluate`, which then runs the job's batches.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..configuration_vreason import VReasonConfig
from ..generation import as_vreason_config
from ..inputs import frame_sampling
from .data import sample_id
from .generation import DEFAULT_GENERATE_KWARGS, _mode_config
from .records import record_key
from .results import all_records
from .samples import check_samples, pixel_budget_kwargs

logger = logging.getLogger(__name__)

__all__ = ["Job", "check_arguments", "new_job", "plan_job"]


@dataclass
class Job:
    """One dataset's evaluation on this process: its settings, and the samples with the modes they still lack."""

    dataset: str
    modes: tuple[str, ...]
    configs: dict[str, VReasonConfig]
    # per mode: the `knobs`, `generation` and `model` fields of its records
    expected: dict[str, dict[str, Any]]
    ids: dict[int, str]
    root: Path | None
    frames: dict[str, Any]  # num_frames, fps, max_frames, video_backend
    generate_kwargs: dict[str, Any] | None
    # the processor's keyword arguments (the per-frame pixel budget), or None
    processor_kwargs: dict[str, Any] | None = None
    todo: list[tuple[int, Mapping, list[str]]] = field(default_factory=list)

    @property
    def model_name(self) -> str:
        return next(iter(self.expected.values()))["model"]


def check_arguments(
    modes: Sequence[str],
    vreason_config: VReasonConfig | dict[str, Any] | None,
    num_frames: int | None,
    fps: float | None,
    max_frames: int | None,
    video_backend: str,
    limit: int | None,
    batch_size: int,
) -> tuple[dict[str, VReasonConfig], dict[str, Any]]:
    """Check [`~vreason_hf.eval.runner.evaluate`]'s arguments before anything is read or run.

    Returns:
        `tuple`: the V-Reason config of each mode (in the order given), and the frame sampling
        (``num_frames``, ``fps``, ``max_frames``, ``video_backend``) with its defaults filled in.

    Raises:
        ValueError: If the modes are empty or repeated, a mode or the config is invalid, the frame sampling is
            invalid, or ``limit`` / ``batch_size`` is not a non-negative / positive integer.
    """
    config = as_vreason_config(vreason_config)
    modes = tuple(modes)
    if not modes or len(set(modes)) != len(modes):
        raise ValueError(f"`modes` must be a non-empty sequence of distinct modes, got {modes!r}.")
    configs = {mode: _mode_config(mode, config) for mode in modes}
    num_frames, fps, max_frames = frame_sampling(num_frames, fps, max_frames)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"`limit` must be a non-negative integer or None, got {limit!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
    frames = {"num_frames": num_frames, "fps": fps, "max_frames": max_frames, "video_backend": video_backend}
    return configs, frames


def new_job(
    model: Any,
    *,
    dataset: str,
    configs: dict[str, VReasonConfig],
    frames: dict[str, Any],
    generate_kwargs: dict[str, Any] | None,
    selected: Sequence[tuple[int, Mapping]],
    video_root: str | Path | None,
    processor: Any = None,
    max_pixels: int | None = None,
) -> Job:
    """The job of one dataset's run, its ``todo`` still empty (see [`plan_job`]); ``max_pixels`` is checked against
    the processor (see [`~vreason_hf.eval.samples.pixel_budget_kwargs`])."""
    processor_kwargs = pixel_budget_kwargs(processor, max_pixels)
    sampling = {**frames, "max_pixels": max_pixels}
    return Job(
        dataset=dataset,
        modes=tuple(configs),
        configs=configs,
        expected=_expected_fields(model, configs, generate_kwargs, sampling),
        ids={index: sample_id(sample, index) for index, sample in selected},
        root=Path(video_root).expanduser() if video_root is not None else None,
        frames=frames,
        generate_kwargs=generate_kwargs,
        processor_kwargs=processor_kwargs,
    )


def plan_job(
    job: Job, processor: Any, output_path: Path, mine: list[tuple[int, Mapping]], *, retry_failed: bool
) -> None:
    """Fill ``job.todo`` with this process's samples and the modes they still lack, checking all before any run.

    The results file is read and checked (a malformed line or records made with other settings raise), the
    ``(dataset, id, mode)`` already there are skipped (failed ones too, unless ``retry_failed``), and the samples
    left are checked against the processor and modes (see [`~vreason_hf.eval.samples.check_samples`]).
    """
    existing = all_records(output_path)  # read and checked: a malformed line stops here, before any answer
    _check_settings(existing, job, output_path)
    done = {record_key(r) for r in existing if not (retry_failed and r.get("error") is not None)}
    for index, sample in mine:
        missing = [m for m in job.modes if (job.dataset, job.ids[index], m) not in done]
        if missing:
            job.todo.append((index, sample, missing))
    # Everything the samples need, checked before the first (possibly hours-long) generation.
    check_samples(processor, [sample for _, sample, _ in job.todo], job.configs, job.dataset, job.root)
    skipped = len(mine) * len(job.modes) - sum(len(m) for _, _, m in job.todo)
    if skipped:
        logger.info("%s: %d record(s) already in the results, skipped.", job.dataset, skipped)


def _expected_fields(
    model: Any,
    configs: Mapping[str, VReasonConfig],
    generate_kwargs: dict[str, Any] | None,
    frames: Mapping[str, Any],
) -> dict[str, dict[str, Any]]:
    """Per mode, the fields that say how its records are made (checked on resume): knobs, generation, model.

    The ``generation`` field holds the decoding settings and the frame sampling (the video backend excluded), and
    ``max_pixels`` where one is set (so records made before that setting existed still resume).
    """
    sampling = {key: frames[key] for key in ("num_frames", "fps", "max_frames")}
    if frames.get("max_pixels") is not None:
        sampling["max_pixels"] = frames["max_pixels"]
    generation = _jsonable({**DEFAULT_GENERATE_KWARGS, **(generate_kwargs or {}), **sampling})
    model_name = str(getattr(model, "name_or_path", "") or type(model).__name__)
    return {
        mode: {
            "knobs": None if mode == "base" else _jsonable(config.knobs()),
            "generation": generation,
            "model": model_name,
        }
        for mode, config in configs.items()
    }


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _check_settings(existing: list[dict], job: Job, output_path: Path) -> None:
    """Refuse to resume into a file whose records for the same dataset and mode were made differently."""
    for record in existing:
        if record.get("dataset") != job.dataset or record.get("mode") not in job.expected:
            continue
        for key, value in job.expected[record["mode"]].items():
            if record.get(key) == value:
                continue
            if isinstance(value, dict) and isinstance(record.get(key), dict):
                old = record[key]
                keys = [*value, *(k for k in old if k not in value)]  # a setting dropped since counts too
                diffs = [
                    f"{k}: {old.get(k)!r} -> {value.get(k)!r}" for k in keys if old.get(k) != value.get(k)
                ]
                what = f"{key} ({'; '.join(diffs[:3])})"
            else:
                what = f"{key} ({record.get(key)!r} -> {value!r})"
            raise ValueError(
                f"'{output_path}' already holds {job.dataset!r} results in mode {record['mode']!r} made with a "
                f"different {what}. Use another output file, or delete it to start over."
            )
