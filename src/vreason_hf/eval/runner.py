# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Running a model over a Video-R1 evaluation file: one JSON line per (sample, mode), batched, resumable, shardable.

The results file (``RESULTS.jsonl``) gets one record per sample and mode as soon as its batch finishes (written,
flushed and ``fsync``-ed), so a crash or Ctrl-C loses at most the batch in flight; a rerun with the same output
skips every ``(dataset, id, mode)`` already there. A partially written last line (a crash mid-write) is ignored
when reading and cut off before appending, so that sample is simply run again. The results file is read and
checked before the first generation, so a malformed line stops the run at once, not after hours of answers.

Batching: ``batch_size=N`` decodes N samples in one left-padded `generate` call, each with its own V-Reason state;
a record's tokens equal those of the same sample decoded alone, so batch size does not change results (nor the
resume check).

Bad samples: a sample whose video or image cannot be read or prepared (a corrupt file, a GIF renamed ``.mp4``, ...)
is recorded as failed, with its ``error``, scored 0 as Video-R1's script scores it, counted in the summary's
``n_failed``, and the run goes on. A rerun does not retry failed samples unless ``retry_failed=True``; a successful
retry replaces the failed record.

Data-parallel sharding: under ``accelerate launch`` / ``torchrun`` (or with an explicit ``shard=(rank, world)``)
process ``rank`` takes the samples ``i`` with ``i % world == rank`` (and batches its own shard) and writes
``RESULTS.rank{rank}.jsonl``. The process that finishes last sees that every expected record is present and merges
all files into ``RESULTS.jsonl`` without duplicates, then writes the summary. There is deliberately no collective
barrier: ranks can finish hours apart, longer than a NCCL barrier's timeout. :func:`merge_results`
(``vreason eval --merge``) does the same merge by hand, e.g. after a rank crashed.

Next to the results, :func:`write_summary` writes ``RESULTS.summary.json`` (from
:func:`~vreason_hf.eval.summarize`) and ``RESULTS.summary.md`` (from :func:`~vreason_hf.eval.summary_to_markdown`),
and, with ``video_r1_json=True``, Video-R1's final JSON per dataset and mode (see
:func:`~vreason_hf.eval.records.write_video_r1_json`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..configuration_vreason import VReasonConfig
from ..generation import as_vreason_config
from .data import sample_id
from .generation import (
    DEFAULT_GENERATE_KWARGS,
    MODES,
    GenerationResult,
    Prompt,
    _mode_config,
    build_batch_inputs,
    build_inputs,
    frame_request,
    frame_sampling,
    generate_answer,
    generate_batch,
    is_multimodal,
    warm_up,
)
from .records import (
    _all_records,
    _cut_partial_tail,
    _rank_path,
    _record_key,
    check_output_path,
    failed_record,
    merge_results,
    read_records,
    results_paths,
    sample_fields,
    video_r1_fields,
    write_summary,
)
from .scoring import build_prompt, score_sample_detailed

logger = logging.getLogger(__name__)

# The generation and results-file helpers live in `.generation` and `.records`; they are re-exported here, where
# they were first defined.
__all__ = [
    "DEFAULT_GENERATE_KWARGS",
    "MODES",
    "SAMPLE_ERRORS",
    "GenerationResult",
    "build_inputs",
    "evaluate",
    "frame_sampling",
    "generate_answer",
    "generate_batch",
    "is_multimodal",
    "merge_results",
    "read_records",
    "resolve_shard",
    "results_paths",
    "warm_up",
    "write_summary",
]

SAMPLE_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, RuntimeError, EOFError)
"""Errors that, raised while a sample's video or image is read and prepared, fail that sample rather than the run
(decoding errors are `~vreason_hf.video.VideoDecodeError`, a `ValueError`; PIL's unreadable images are `OSError`)."""


# --------------------------------------------------------------------------------------------------
# Sharding
# --------------------------------------------------------------------------------------------------


def resolve_shard(shard: tuple[int, int] | None = None) -> tuple[int, int]:
    """The ``(rank, world_size)`` of this process.

    Args:
        shard (`tuple[int, int]`, *optional*):
            An explicit ``(index, count)`` (e.g. for job arrays). Otherwise, when ``WORLD_SIZE`` > 1 in the
            environment (set by ``accelerate launch`` and ``torchrun``), accelerate's `PartialState` is asked
            if it is installed and sees several processes, else the ``RANK`` / ``WORLD_SIZE`` variables are used
            (accelerate reports a single process for CPU runs started by ``torchrun``).

    Returns:
        `tuple[int, int]`: ``(rank, world_size)``; ``(0, 1)`` for a single process.

    Raises:
        ValueError: If the shard is malformed.
    """
    if shard is None:
        world = _env_int("WORLD_SIZE", 1)
        if world <= 1:
            return 0, 1
        try:
            from accelerate import PartialState

            state = PartialState()
            if state.num_processes > 1:
                return state.process_index, state.num_processes
        except ImportError:
            pass
        shard = (_env_int("RANK", 0), world)
    rank, world = shard
    if (
        isinstance(rank, bool)
        or isinstance(world, bool)
        or not isinstance(rank, int)
        or not isinstance(world, int)
    ):
        raise ValueError(f"`shard` must be two integers (index, count), got {shard!r}.")
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"`shard` must satisfy 0 <= index < count, got index={rank}, count={world}.")
    return rank, world


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"Environment variable `{name}` must be an integer, got {value!r}.") from None


# --------------------------------------------------------------------------------------------------
# The evaluation loop
# --------------------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _check_settings(existing: list[dict], dataset: str, expected: dict[str, dict], output_path: Path) -> None:
    """Refuse to resume into a file whose records for the same dataset and mode were made differently."""
    for record in existing:
        if record.get("dataset") != dataset or record.get("mode") not in expected:
            continue
        want = expected[record["mode"]]
        for key, value in want.items():
            if record.get(key) != value:
                if isinstance(value, dict) and isinstance(record.get(key), dict):
                    old = record[key]
                    diffs = [
                        f"{k}: {old.get(k)!r} -> {value.get(k)!r}"
                        for k in value
                        if old.get(k) != value.get(k)
                    ]
                    what = f"{key} ({'; '.join(diffs[:3])})"
                else:
                    what = f"{key} ({record.get(key)!r} -> {value!r})"
                raise ValueError(
                    f"'{output_path}' already holds {dataset!r} results in mode {record['mode']!r} made with a "
                    f"different {what}. Use another output file, or delete it to start over."
                )


def _resolve_media(sample: Mapping, video_root: Path | None) -> Path:
    path = Path(sample["path"]).expanduser()
    if not path.is_absolute() and video_root is not None:
        path = video_root / path
    return path


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

    Each record holds ``id`` (:func:`~vreason_hf.eval.sample_id`), ``index``, ``dataset``, ``mode``, ``model``;
    the sample's own fields (``problem``, ``options``, ``solution``, ``path``, ``data_type``, ``problem_type``,
    ...); Video-R1's output fields ``output`` (the generated text), ``prediction`` (the extracted answer),
    ``reward`` (the score), ``correct`` and, when the output reasons, ``process`` (see
    :mod:`~vreason_hf.eval.records`); then ``score`` (= ``reward``), ``target``, ``parsable``, ``secondary``
    (OCR / free-form metric), ``error`` (`None`, or why the sample failed), ``output_tokens``, ``seconds`` (the
    batch's time shared equally between its answers), ``batch_size``, ``peak_memory_mb`` and ``memory_source`` (see
    [`GenerationResult`]), ``optimizer_steps``, ``knobs`` (the V-Reason knobs; `None` for ``"base"``),
    ``generation`` (decoding and frame-sampling settings) and, unless ``save_traces=False``, the per-token
    ``output_ids``, ``entropies``, ``ema_entropies`` and ``alphas`` (for
    :func:`~vreason_hf.eval.plots.plot_entropy_traces`).

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
            The results JSONL (see [`results_paths`] for the files written next to it).
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
        video_backend (`str`, *optional*, defaults to `"auto"`):
            Decoder for [`~vreason_hf.video.load_video`].
        limit (`int`, *optional*):
            Only the first ``limit`` samples (before sharding).
        dataset_name (`str`, *optional*, defaults to `"dataset"`):
            The ``dataset`` field of the records (the summary groups by it).
        shard (`tuple[int, int]`, *optional*):
            ``(index, count)``; by default from the launcher's environment, see [`resolve_shard`].
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
            Before the first timed batch, run each mode once for two tokens (see [`warm_up`]).

    Returns:
        `dict | None`: The summary of the whole results file (every dataset in it), written as
        ``RESULTS.summary.json`` / ``.summary.md``; `None` on a rank that finished while other ranks still run
        (the last rank to finish merges and summarises).

    Raises:
        ValueError: For bad arguments, an unwritable output path, mismatching resume settings, samples the model
            cannot take, or a results file with a malformed line (all checked before any generation).
        FileNotFoundError: If a video or image of the selected samples is missing (checked before any generation).
    """
    from tqdm.auto import tqdm

    config = as_vreason_config(vreason_config)
    modes = tuple(modes)
    if not modes or len(set(modes)) != len(modes):
        raise ValueError(f"`modes` must be a non-empty sequence of distinct modes, got {modes!r}.")
    mode_configs = {mode: _mode_config(mode, config) for mode in modes}
    num_frames, fps, max_frames = frame_sampling(num_frames, fps, max_frames)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"`limit` must be a non-negative integer or None, got {limit!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
    rank, world = resolve_shard(shard)
    output_path = check_output_path(output_path)
    write_path = output_path if world == 1 else check_output_path(_rank_path(output_path, rank))
    root = Path(video_root).expanduser() if video_root is not None else None
    multimodal = is_multimodal(processor)

    selected = list(enumerate(samples))[: limit if limit is not None else None]
    ids = {index: sample_id(sample, index) for index, sample in selected}
    mine = [(index, sample) for index, sample in selected if index % world == rank]

    generation = _jsonable(
        {
            **DEFAULT_GENERATE_KWARGS,
            **(generate_kwargs or {}),
            "num_frames": num_frames,
            "fps": fps,
            "max_frames": max_frames,
        }
    )
    model_name = str(getattr(model, "name_or_path", "") or type(model).__name__)
    expected = {
        mode: {
            "knobs": None if mode == "base" else _jsonable(cfg.knobs()),
            "generation": generation,
            "model": model_name,
        }
        for mode, cfg in mode_configs.items()
    }
    existing = _all_records(output_path)  # read and checked: a malformed line stops here, before any answer
    _check_settings(existing, dataset_name, expected, output_path)
    done = {_record_key(r) for r in existing if not (retry_failed and r.get("error") is not None)}
    todo = []
    for index, sample in mine:
        missing = [m for m in modes if (dataset_name, ids[index], m) not in done]
        if missing:
            todo.append((index, sample, missing))

    # Check everything the selected samples need before the first (possibly hours-long) generation.
    if not multimodal:
        if any(sample.get("data_type") in ("video", "image") for _, sample, _ in todo):
            logger.warning(
                "`%s` is a text-only tokenizer: the videos and images of %r are ignored and only the question is "
                "asked (useful for smoke tests, not for benchmark numbers).",
                type(processor).__name__,
                dataset_name,
            )
        for mode, cfg in mode_configs.items():
            if mode != "base" and cfg.controller_scope != "prompt":
                raise ValueError(
                    f"A text-only model has no video tokens for `controller_scope={cfg.controller_scope!r}`: "
                    'use `controller_scope="prompt"` (CLI: `--controller-scope prompt`).'
                )
    else:
        n_images = sum(sample.get("data_type") == "image" for _, sample, _ in todo)
        if n_images:
            for mode, cfg in mode_configs.items():
                if mode != "base" and cfg.controller_scope == "video":
                    raise ValueError(
                        f"{dataset_name!r} has {n_images} image sample(s), which have no video tokens for "
                        '`controller_scope="video"`: use `controller_scope="visual"` (CLI: '
                        "`--controller-scope visual`), which covers video and image tokens."
                    )
        absent = [str(_resolve_media(s, root)) for _, s, _ in todo if not _resolve_media(s, root).is_file()]
        if absent:
            where = f"under '{root}'" if root is not None else "relative to the current directory"
            raise FileNotFoundError(
                f"{len(absent)} of the {len(todo)} samples to run have no media file ({where}); first: '{absent[0]}'. "
                "Pass the folder the `path` fields are relative to as `video_root` (CLI: `--video-root`)."
            )

    skipped = sum(len(modes) for _ in mine) - sum(len(m) for _, _, m in todo)
    if skipped:
        logger.info("%s: %d record(s) already in the results, skipped.", dataset_name, skipped)
    shard_note = f" [rank {rank}/{world}]" if world > 1 else ""
    frames = {"num_frames": num_frames, "fps": fps, "max_frames": max_frames, "video_backend": video_backend}
    warned: set[str] = set()
    _cut_partial_tail(write_path)
    with (
        open(write_path, "a", encoding="utf-8") as handle,
        tqdm(
            total=sum(len(m) for _, _, m in todo),
            desc=f"{dataset_name}{shard_note}",
            unit="answer",
            disable=not progress,
            dynamic_ncols=True,
        ) as bar,
    ):
        scores: dict[str, list[float]] = {mode: [] for mode in modes}

        def write(records: list[dict]) -> None:
            handle.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
            handle.flush()
            os.fsync(handle.fileno())
            for record in records:
                scores[record["mode"]].append(record["score"])
            bar.update(len(records))
            bar.set_postfix({m: f"{sum(s) / len(s):.2f}" for m, s in scores.items() if s}, refresh=False)

        def base_fields(index: int, sample: Mapping, mode: str) -> dict[str, Any]:
            return {
                "id": ids[index],
                "index": index,
                "dataset": dataset_name,
                "mode": mode,
                "model": model_name,
                **sample_fields(sample, dataset_name, warned),
                "problem_type": sample["problem_type"],
            }

        def fail(index: int, sample: Mapping, missing: Sequence[str], error: BaseException) -> None:
            logger.warning(
                "%s: sample %d (%s) failed and is recorded as failed: %s: %s",
                dataset_name,
                index,
                sample.get("path"),
                type(error).__name__,
                (str(error).strip().splitlines() or [""])[0],
            )
            write(
                [
                    {
                        **failed_record(base_fields(index, sample, mode), sample, error),
                        "knobs": expected[mode]["knobs"],
                        "generation": generation,
                    }
                    for mode in missing
                ]
            )

        for start in range(0, len(todo), batch_size):
            chunk = []
            for index, sample, missing in todo[start : start + batch_size]:
                try:
                    prompt = _sample_prompt(processor, sample, multimodal, root, **frames)
                except SAMPLE_ERRORS as error:
                    fail(index, sample, missing, error)
                    continue
                chunk.append(_Item(index, sample, missing, prompt))
            chunk_inputs, chunk = _collate(processor, chunk, fail)
            if not chunk:
                continue
            if warmup:
                for mode in modes:
                    warm_up(
                        model,
                        processor,
                        chunk_inputs,
                        modes=(mode,),
                        vreason_config=mode_configs[mode],
                        generate_kwargs=generate_kwargs,
                    )
                warmup = False
            for mode in modes:
                rows = [item for item in chunk if mode in item.missing]
                if not rows:
                    continue
                inputs = (
                    chunk_inputs
                    if len(rows) == len(chunk)
                    else build_batch_inputs(processor, [item.prompt for item in rows])
                )
                results = generate_batch(
                    model,
                    processor,
                    inputs,
                    mode=mode,
                    vreason_config=mode_configs[mode],
                    generate_kwargs=generate_kwargs,
                )
                write(
                    [
                        _record(
                            base_fields(item.index, item.sample, mode),
                            item.sample,
                            result,
                            expected[mode],
                            save_traces,
                        )
                        for item, result in zip(rows, results, strict=True)
                    ]
                )

    if world == 1:
        return merge_results(output_path, video_r1_json=video_r1_json)
    have = {_record_key(r) for r in _all_records(output_path)}
    wanted = {(dataset_name, ids[index], mode) for index, _ in selected for mode in modes}
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


@dataclass
class _Item:
    """A sample of the batch being run: its index, record, the modes it still lacks and its prepared prompt."""

    index: int
    sample: Mapping
    missing: list[str]
    prompt: Prompt


def _collate(
    processor: Any, items: list[_Item], fail: Callable[[int, Mapping, Sequence[str], BaseException], None]
) -> tuple[Any, list[_Item]]:
    """Batch the items' prompts; a sample the processor rejects is recorded as failed and left out."""
    if not items:
        return None, []
    try:
        return build_batch_inputs(processor, [item.prompt for item in items]), items
    except SAMPLE_ERRORS as error:
        if len(items) == 1:
            fail(items[0].index, items[0].sample, items[0].missing, error)
            return None, []
    good = []
    for item in items:  # find the culprit(s): only paid when a batch fails
        try:
            build_batch_inputs(processor, [item.prompt])
        except SAMPLE_ERRORS as error:
            fail(item.index, item.sample, item.missing, error)
            continue
        good.append(item)
    if not good:
        return None, []
    return build_batch_inputs(processor, [item.prompt for item in good]), good


def _record(
    base: Mapping[str, Any],
    sample: Mapping,
    result: GenerationResult,
    expected: Mapping[str, Any],
    save_traces: bool,
) -> dict[str, Any]:
    """The results record of one answer (see :func:`evaluate` for the fields)."""
    detail = score_sample_detailed(sample, result.text)
    record = {
        **base,
        **video_r1_fields(sample, result.text, detail.extracted, detail.score),
        "score": detail.score,
        "target": detail.target,
        "parsable": detail.parsable,
        "secondary": detail.secondary,
        "error": None,
        "output_tokens": result.output_tokens,
        "seconds": round(result.seconds, 4),
        "batch_size": result.batch_size,
        "peak_memory_mb": None if result.peak_memory_mb is None else round(result.peak_memory_mb, 1),
        "memory_source": result.memory_source,
        "optimizer_steps": result.optimizer_steps,
        "knobs": expected["knobs"],
        "generation": expected["generation"],
    }
    if save_traces:
        record.update(
            output_ids=result.token_ids,
            entropies=result.entropies,
            ema_entropies=result.ema_entropies,
            alphas=result.alphas,
        )
    return record


def _sample_prompt(
    processor: Any,
    sample: Mapping,
    multimodal: bool,
    root: Path | None,
    *,
    num_frames: int | None,
    fps: float | None,
    max_frames: int | None,
    video_backend: str,
) -> Prompt:
    """The sample's prompt: Video-R1's question text and its decoded video (or image)."""
    text = build_prompt(sample)
    if not multimodal:
        return Prompt(text)
    path = _resolve_media(sample, root)
    if sample["data_type"] == "image":
        from PIL import Image

        with Image.open(path) as image:
            return Prompt(text, image=image.convert("RGB"))
    from ..video import load_video

    frames, metadata = load_video(path, backend=video_backend, **frame_request(num_frames, fps, max_frames))
    return Prompt(text, video=frames, video_metadata=metadata)
