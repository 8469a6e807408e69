# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""The evaluation loop: a model over a Video-R1 evaluation file, one JSON line per (sample, mode), batched, resumable.

The results file (``RESULTS.jsonl``, see :mod:`~vreason_hf.eval.results`) gets one record per sample and mode (see
:mod:`~vreason_hf.eval.records`) as soon as its batch finishes (written, flushed and ``fsync``-ed), so a crash or
Ctrl-C loses at most the batch in flight; a rerun with the same output skips every ``(dataset, id, mode)`` already
there. The results file is read and checked before the first generation, so a malformed line stops the run at once,
not after hours of answers.

Batching: ``batch_size=N`` decodes N samples in one left-padded `generate` call, each with its own V-Reason state;
a record's tokens equal those of the same sample decoded alone, so batch size does not change results (nor the
resume check).

Bad samples: a sample whose video or image cannot be read or prepared (a corrupt file, a GIF renamed ``.mp4``, ...)
is recorded as failed, with its ``error``, scored 0 as Video-R1's script scores it, counted in the summary's
``n_failed``, and the run goes on. A rerun does not retry failed samples unless ``retry_failed=True``; a successful
retry replaces the failed record.

Data-parallel runs: each process runs its shard (see :mod:`~vreason_hf.eval.sharding`) into its own rank file; the
process that finishes last merges them (:func:`~vreason_hf.eval.results.merge_results`, also ``vreason eval
--merge``) and writes the summary.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..configuration_vreason import VReasonConfig
from ..inputs import Prompt, build_batch_inputs
from .generation import generate_batch, warm_up
from .plan import Job, check_arguments, new_job, plan_job
from .records import answer_record, failed_record, record_key, sample_fields
from .results import ResultsWriter, all_records, check_output_path, merge_results
from .samples import SAMPLE_ERRORS, batch_inputs, sample_prompt
from .sharding import rank_path, resolve_shard

logger = logging.getLogger(__name__)

__all__ = ["evaluate"]


@dataclass
class _Item:
    """A sample of the batch being run: its index, record, the modes it still lacks and its prepared prompt."""

    index: int
    sample: Mapping
    missing: list[str]
    prompt: Prompt


def evaluate(
    model: Any,
    processor: Any,
    samples: Sequence[Mapping],
    *,
    output_path: str | os.PathLike,
    video_root: str | os.PathLike | None = None,
    modes: Sequence[str] = ("vreason",),
    vreason_config: VReasonConfig | dict[str, Any] | None = None,
    generate_kwargs: dict[str, Any] | None = None,
    num_frames: int | None = None,
    fps: float | None = None,
    max_frames: int | None = None,
    max_pixels: int | None = None,
    video_backend: str = "auto",
    limit: int | None = None,
    dataset_name: str = "dataset",
    shard: tuple[int, int] | None = None,
    batch_size: int = 1,
    retry_failed: bool = False,
    video_r1_json: bool = False,
    save_traces: bool = True,
    progress: bool = True,
    warmup: bool = True,
) -> dict | None:
    """Evaluate a model on Video-R1 records, writing one JSON line per sample and mode as soon as its batch finishes.

    Each record holds the sample's identity (``id``, see :func:`~vreason_hf.eval.sample_id`, ``index``,
    ``dataset``, ``mode``, ``model``), its own fields, Video-R1's output fields, the score, the measurements of
    [`GenerationResult`], the ``knobs`` and ``generation`` settings and, unless ``save_traces=False``, the
    per-token traces: see :mod:`~vreason_hf.eval.records`.

    Resuming: every ``(dataset, id, mode)`` already in the results file or a rank file is skipped (failed ones too,
    unless ``retry_failed``). Records of the same dataset and mode made with other knobs, decoding settings or
    model raise instead of being mixed; the batch size may change.

    Inputs: ``data_type="video"`` samples are decoded with [`~vreason_hf.video.load_video`]; ``"image"`` samples
    are opened with PIL and passed as an image (V-Reason then needs ``controller_scope="visual"``, since an image
    has no video tokens). With a text-only model (``processor`` is a tokenizer) the question is asked without the
    video (a warning says so) and V-Reason needs ``controller_scope="prompt"``.

    Args:
        model (`PreTrainedModel`):
            The model (a vision-language model, or a text-only LM for smoke tests).
        processor (`ProcessorMixin` or `PreTrainedTokenizerBase`):
            Its processor (or tokenizer).
        samples (`Sequence[Mapping]`):
            The records of one dataset in file order, e.g. from :func:`~vreason_hf.eval.load_samples`.
        output_path (`str` or `os.PathLike`):
            The results JSONL (see [`~vreason_hf.eval.results.results_paths`] for the files written next to it).
        video_root (`str` or `os.PathLike`, *optional*):
            Folder relative ``path`` fields are resolved against; defaults to the current directory, as Video-R1's
            script does.
        modes (`Sequence[str]`, *optional*, defaults to `("vreason",)`):
            Any of ``"base"``, ``"vreason"``, ``"lite"``; ``("base", "vreason")`` compares plain decoding with V-Reason.
        vreason_config (`VReasonConfig` or `dict`, *optional*):
            The V-Reason knobs.
        generate_kwargs (`dict`, *optional*):
            `generate` arguments over the defaults (greedy, ``max_new_tokens=1024``); must be JSON-serialisable.
        num_frames (`int`, *optional*):
            Frames sampled uniformly per video (exclusive with ``fps``).
        fps (`float`, *optional*):
            Frame sampling rate. When neither ``num_frames`` nor ``fps`` is given: 2 fps, at most 16 frames
            (Video-R1's setting).
        max_frames (`int`, *optional*):
            Frame cap. A clip shorter than ``num_frames`` gives all its frames (rather than the error
            [`~vreason_hf.video.load_video`] raises), so one short clip cannot stop a long run.
        max_pixels (`int`, *optional*):
            Resize each video frame to at most this many pixels, as Video-R1 does (``128 * 28 * 28``); Qwen2-VL /
            Qwen2.5-VL video processors only. Defaults to the video processor's own budget.
        video_backend (`str`, *optional*, defaults to `"auto"`):
            Decoder for [`~vreason_hf.video.load_video`].
        limit (`int`, *optional*):
            Only the first ``limit`` samples (before sharding).
        dataset_name (`str`, *optional*, defaults to `"dataset"`):
            The ``dataset`` field of the records (the summary groups by it).
        shard (`tuple[int, int]`, *optional*):
            ``(index, count)``; by default from the launcher's environment, see [`~vreason_hf.eval.sharding.resolve_shard`].
        batch_size (`int`, *optional*, defaults to 1):
            Samples decoded together in one `generate` call (left-padded). Larger batches use the accelerator
            better; the answers do not change.
        retry_failed (`bool`, *optional*, defaults to `False`):
            Run again the samples recorded as failed (e.g. after replacing a corrupt video).
        video_r1_json (`bool`, *optional*, defaults to `False`):
            Also write Video-R1's final JSON per dataset and mode next to the results.
        save_traces (`bool`, *optional*, defaults to `True`):
            Store the per-token traces (about 35 kB per 1000-token record).
        progress (`bool`, *optional*, defaults to `True`):
            Show a tqdm progress bar.
        warmup (`bool`, *optional*, defaults to `True`):
            Before the first timed batch, run each mode once for two tokens (see [`~vreason_hf.eval.generation.warm_up`]).

    Returns:
        `dict | None`: The summary of the whole results file (every dataset in it), written as
        ``RESULTS.summary.json`` / ``.summary.md``; `None` on a rank that finished while other ranks still run
        (the last rank to finish merges and summarises).

    Raises:
        ValueError: For bad arguments, an unwritable output path, mismatching resume settings, samples the model
            cannot take, or a results file with a malformed line (all checked before any generation).
        FileNotFoundError: If a video or image of the selected samples is missing (checked before any generation).
    """
    configs, frames = check_arguments(
        modes, vreason_config, num_frames, fps, max_frames, video_backend, limit, batch_size
    )
    rank, world = resolve_shard(shard)
    output_path = check_output_path(output_path)
    write_path = output_path if world == 1 else check_output_path(rank_path(output_path, rank))
    selected = list(enumerate(samples))[: limit if limit is not None else None]
    job = new_job(
        model,
        dataset=dataset_name,
        configs=configs,
        frames=frames,
        generate_kwargs=generate_kwargs,
        selected=selected,
        video_root=video_root,
        processor=processor,
        max_pixels=max_pixels,
    )
    mine = [(index, sample) for index, sample in selected if index % world == rank]
    plan_job(job, processor, output_path, mine, retry_failed=retry_failed)
    description = f"{dataset_name} [rank {rank}/{world}]" if world > 1 else dataset_name
    with _Writer(job, write_path, description, progress) as writer:
        _run_batches(
            model, processor, job, writer, batch_size=batch_size, save_traces=save_traces, warmup=warmup
        )
    if world == 1:
        return merge_results(output_path, video_r1_json=video_r1_json)
    return _merge_if_last(output_path, job, selected, rank, video_r1_json)


class _Writer(ResultsWriter):
    """Writes a job's records: a results writer that also builds each record's identifying fields and failures."""

    def __init__(self, job: Job, path: Path, description: str, progress: bool) -> None:
        total = sum(len(missing) for _, _, missing in job.todo)
        super().__init__(path, modes=job.modes, total=total, description=description, progress=progress)
        self.job = job
        self.warned: set[str] = set()

    def base_fields(self, index: int, sample: Mapping, mode: str) -> dict[str, Any]:
        """The identifying fields a record starts with."""
        return {
            "id": self.job.ids[index],
            "index": index,
            "dataset": self.job.dataset,
            "mode": mode,
            "model": self.job.model_name,
            **sample_fields(sample, self.job.dataset, self.warned),
            "problem_type": sample["problem_type"],
        }

    def fail(self, index: int, sample: Mapping, missing: Sequence[str], error: BaseException) -> None:
        """Record the sample as failed in every mode it lacks, and say so."""
        logger.warning(
            "%s: sample %d (%s) failed and is recorded as failed: %s: %s",
            self.job.dataset,
            index,
            sample.get("path"),
            type(error).__name__,
            (str(error).strip().splitlines() or [""])[0],
        )
        records = []
        for mode in missing:
            expected = self.job.expected[mode]
            record = failed_record(self.base_fields(index, sample, mode), sample, error)
            records.append({**record, "knobs": expected["knobs"], "generation": expected["generation"]})
        self.write(records)


def _run_batches(
    model: Any,
    processor: Any,
    job: Job,
    writer: _Writer,
    *,
    batch_size: int,
    save_traces: bool,
    warmup: bool,
) -> None:
    """Prepare, decode and record the job's samples, `batch_size` at a time, one `generate` call per mode."""
    for start in range(0, len(job.todo), batch_size):
        chunk_inputs, chunk = _prepare_chunk(processor, job, writer, job.todo[start : start + batch_size])
        if not chunk:
            continue
        if warmup:
            for mode in job.modes:
                warm_up(
                    model,
                    processor,
                    chunk_inputs,
                    modes=(mode,),
                    vreason_config=job.configs[mode],
                    generate_kwargs=job.generate_kwargs,
                )
            warmup = False
        for mode in job.modes:
            rows = [item for item in chunk if mode in item.missing]
            if rows:
                inputs = (
                    chunk_inputs
                    if len(rows) == len(chunk)
                    else build_batch_inputs(
                        processor, [i.prompt for i in rows], processor_kwargs=job.processor_kwargs
                    )
                )
                _decode_rows(model, processor, job, writer, rows, inputs, mode=mode, save_traces=save_traces)


def _prepare_chunk(
    processor: Any, job: Job, writer: _Writer, todo: Sequence[tuple[int, Mapping, list[str]]]
) -> tuple[Any, list[_Item]]:
    """Prompts and model inputs of a batch's samples; a sample that cannot be prepared is recorded as failed.

    Returns:
        `tuple`: the batch's model inputs (left-padded) and its items still in it, in order.
    """
    chunk = []
    for index, sample, missing in todo:
        try:
            prompt = sample_prompt(sample, processor, video_root=job.root, **job.frames)
        except SAMPLE_ERRORS as error:
            writer.fail(index, sample, missing, error)
            continue
        chunk.append(_Item(index, sample, missing, prompt))
    chunk_inputs, kept, errors = batch_inputs(
        processor, [item.prompt for item in chunk], job.processor_kwargs
    )
    for position, error in errors.items():
        writer.fail(chunk[position].index, chunk[position].sample, chunk[position].missing, error)
    return chunk_inputs, [chunk[position] for position in kept]


def _decode_rows(
    model: Any,
    processor: Any,
    job: Job,
    writer: _Writer,
    rows: list[_Item],
    inputs: Any,
    *,
    mode: str,
    save_traces: bool,
) -> None:
    """Decode the batch's rows that lack ``mode`` in one `generate` call, and write their records."""
    results = generate_batch(
        model,
        processor,
        inputs,
        mode=mode,
        vreason_config=job.configs[mode],
        generate_kwargs=job.generate_kwargs,
    )
    expected = job.expected[mode]
    writer.write(
        [
            answer_record(
                writer.base_fields(item.index, item.sample, mode),
                item.sample,
                result,
                expected,
                save_traces,
            )
            for item, result in zip(rows, results, strict=True)
        ]
    )


def _merge_if_last(
    output_path: Path, job: Job, selected: list[tuple[int, Mapping]], rank: int, video_r1_json: bool
) -> dict | None:
    """On a rank of a sharded run: merge and summarise if every rank's records are in, else say what is missing."""
    have = {record_key(r) for r in all_records(output_path)}
    wanted = {(job.dataset, job.ids[index], mode) for index, _ in selected for mode in job.modes}
    if wanted <= have:
        logger.info("Rank %d finished last: merging the rank files into %s.", rank, output_path)
        return merge_results(output_path, video_r1_json=video_r1_json)
    logger.info(
        "Rank %d finished its shard; %d record(s) of other ranks are still missing (the last rank to finish merges, "
        "or run `vreason eval --merge --output %s`).",
        rank,
        len(wanted - have),
        output_path,
    )
    return None
