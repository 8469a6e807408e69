# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Running a model over a Video-R1 evaluation file: one JSON line per (sample, mode), resumable and shardable.

The results file (``RESULTS.jsonl``) gets one record per sample and mode as soon as that sample finishes
(written, flushed and ``fsync``-ed), so a crash or Ctrl-C loses at most the sample in flight; a rerun with the
same output skips every ``(dataset, id, mode)`` already there. A partially written last line (a crash mid-write)
is ignored when reading and cut off before appending, so that sample is simply run again.

Data-parallel sharding: under ``accelerate launch`` / ``torchrun`` (or with an explicit ``shard=(rank, world)``)
process ``rank`` takes the samples ``i`` with ``i % world == rank`` and writes ``RESULTS.rank{rank}.jsonl``. The
process that finishes last sees that every expected record is present and merges all files into ``RESULTS.jsonl``
without duplicates, then writes the summary. There is deliberately no collective barrier: ranks can finish hours
apart, longer than a NCCL barrier's timeout. :func:`merge_results` (``vreason eval --merge``) does the same merge
by hand, e.g. after a rank crashed.

Next to the results, :func:`write_summary` writes ``RESULTS.summary.json`` (from
:func:`~vreason_hf.eval.summarize`) and ``RESULTS.summary.md`` (from :func:`~vreason_hf.eval.summary_to_markdown`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..configuration_vreason import VReasonConfig
from ..generation import as_vreason_config, vreason_generate
from ..generation.objective import entropy, next_alpha, next_ema
from .data import sample_id
from .scoring import build_prompt, score_sample_detailed
from .summary import summarize, summary_to_markdown

logger = logging.getLogger(__name__)

__all__ = [
    "MODES",
    "GenerationResult",
    "build_inputs",
    "evaluate",
    "frame_sampling",
    "generate_answer",
    "is_multimodal",
    "merge_results",
    "read_records",
    "resolve_shard",
    "results_paths",
    "warm_up",
    "write_summary",
]

MODES: tuple[str, ...] = ("base", "vreason", "lite")
"""Evaluation modes: plain decoding, V-Reason, and V-Reason Lite (V-Reason with ``lite=True``)."""

DEFAULT_GENERATE_KWARGS: dict[str, Any] = {"max_new_tokens": 1024, "do_sample": False}
"""The paper's decoding: greedy, at most 1024 new tokens (``SPEC.md`` section 6)."""

_MODE_ORDER = {mode: index for index, mode in enumerate(MODES)}
_RANK_FILE = re.compile(r"\.rank(\d+)\.jsonl$")


# --------------------------------------------------------------------------------------------------
# One generation
# --------------------------------------------------------------------------------------------------


@dataclass
class GenerationResult:
    """What one generation produced and cost.

    Attributes:
        text (`str`):
            The generated text (special tokens removed).
        output_tokens (`int`):
            Number of generated tokens (the end-of-sequence token included).
        seconds (`float`):
            Wall-clock time of `generate` (inputs already prepared; CUDA synchronised).
        peak_memory_mb (`float | None`):
            Peak memory in MiB, see ``memory_source``.
        memory_source (`str`):
            ``"cuda_max_allocated"``: the sum over the model's GPUs of `torch.cuda.max_memory_allocated` during the
            generation (weights included, comparable to the paper's peak memory). ``"rss_peak"`` (CPU, Linux):
            the process's peak resident set size during the generation (the peak is reset through
            ``/proc/self/clear_refs`` just before; weights, libraries and everything else the process holds
            included). ``"maxrss"`` (CPU elsewhere): the process's lifetime peak RSS (`resource.getrusage`) at the
            end of the generation, which includes any earlier, higher peak. ``"none"``: not measured. CPU and GPU
            numbers are not comparable.
        entropies (`list[float]`):
            Per generated token, the entropy (nats) of the raw next-token distribution.
        ema_entropies (`list[float]`):
            Its EMA with the config's ``ema_beta`` / ``ema_init``.
        alphas (`list[float]`):
            The switching coefficient α (+1 explore, −1 exploit). For plain decoding these are the values the
            config's ``alpha_schedule`` *would* take on the base model's entropies (nothing is optimised).
        optimizer_steps (`int`):
            Adam steps taken (0 for plain decoding).
    """

    text: str
    output_tokens: int
    seconds: float
    peak_memory_mb: float | None
    memory_source: str
    entropies: list[float] = field(default_factory=list)
    ema_entropies: list[float] = field(default_factory=list)
    alphas: list[float] = field(default_factory=list)
    optimizer_steps: int = 0


def _read_proc_status(key: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


class _PeakMemory:
    """Measure peak memory around one generation (see `GenerationResult.memory_source`)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.cuda_devices = sorted(
            {p.device for p in model.parameters() if p.device.type == "cuda"}, key=lambda d: d.index or 0
        )
        self.mb: float | None = None
        self.source = "none"

    def __enter__(self) -> _PeakMemory:
        if self.cuda_devices:
            for device in self.cuda_devices:
                torch.cuda.synchronize(device)
                torch.cuda.reset_peak_memory_stats(device)
            return self
        self._hwm_reset = False
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
                clear.write("5")  # Linux >= 4.0: reset the peak RSS (VmHWM) to the current RSS
            self._hwm_reset = True
        except OSError:
            pass
        return self

    @staticmethod
    def _maxrss_kb() -> int | None:
        try:
            import resource
        except ImportError:  # Windows
            return None
        scale = 1 if sys.platform != "darwin" else 1 / 1024  # macOS reports bytes
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale)

    def __exit__(self, *exc: object) -> None:
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
        after = self._maxrss_kb()
        if after is not None:
            self.mb, self.source = after / 1024, "maxrss"


class _EntropyRecorder:
    """Forward hook on the LM head recording the entropy of the last position's raw logits (plain decoding)."""

    def __init__(self) -> None:
        self.values: list[torch.Tensor] = []

    def __call__(self, module: torch.nn.Module, args: Any, output: torch.Tensor) -> None:
        logits = output[:, -1] if output.dim() == 3 else output  # (batch, vocab)
        with torch.no_grad():
            self.values.append(entropy(logits.detach())[0])


def _schedule_traces(entropies: list[float], config: VReasonConfig) -> tuple[list[float], list[float]]:
    """EMA and α the config's schedule would give on a fixed entropy sequence (used for plain decoding)."""
    ema = torch.zeros(())
    peak = torch.tensor(float("-inf"))
    emas, alphas = [], []
    for index, value in enumerate(entropies):
        h = torch.tensor(value)
        ema = h if index == 0 and config.ema_init == "first" else next_ema(ema, h, config.ema_beta)
        peak = torch.maximum(peak, ema)
        emas.append(float(ema))
        alphas.append(float(next_alpha(ema, peak, config.alpha_schedule)))
    return emas, alphas


def _tokenizer(processor: Any) -> Any:
    return getattr(processor, "tokenizer", None) or processor


def is_multimodal(processor: Any) -> bool:
    """Whether ``processor`` handles images or videos (a multimodal processor, not a bare tokenizer)."""
    return (
        getattr(processor, "video_processor", None) is not None
        or getattr(processor, "image_processor", None) is not None
    )


def build_inputs(
    processor: Any,
    text: str,
    *,
    video: Any | None = None,
    video_metadata: Any | None = None,
    image: Any | None = None,
) -> Any:
    """Build model inputs for one user turn through the chat template.

    Args:
        processor (`ProcessorMixin` or `PreTrainedTokenizerBase`):
            A multimodal processor, or a tokenizer for a text-only model (then ``video`` and ``image`` must be
            `None`).
        text (`str`):
            The user's text, placed after the video / image.
        video (`np.ndarray`, *optional*):
            Pre-sampled frames, e.g. from [`~vreason_hf.video.load_video`]; passed with ``do_sample_frames=False``.
        video_metadata (`VideoMetadata`, *optional*):
            Their metadata (needed for correct temporal positions).
        image (`PIL.Image.Image`, *optional*):
            An image.

    Returns:
        `BatchFeature`: ``input_ids``, ``attention_mask`` and the vision inputs, batch size 1.

    Raises:
        ValueError: If a video or image is given to a text-only tokenizer, or the processor has no video
            (image) processor for a video (image).
    """
    if not is_multimodal(processor):
        if video is not None or image is not None:
            raise ValueError(
                f"`{type(processor).__name__}` is a text-only tokenizer: it cannot take a video or an image. "
                "Use a vision-language model, or leave the video out."
            )
        messages = [{"role": "user", "content": text}]
        if getattr(processor, "chat_template", None):
            return processor.apply_chat_template(
                messages, add_generation_prompt=True, return_dict=True, return_tensors="pt"
            )
        return processor(text, return_tensors="pt")
    content: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    if video is not None:
        if getattr(processor, "video_processor", None) is None:
            raise ValueError(
                f"`{type(processor).__name__}` has no video processor: this model cannot take videos."
            )
        content.append({"type": "video"})
        kwargs.update(videos=[video], do_sample_frames=False)
        if video_metadata is not None:
            kwargs["video_metadata"] = [video_metadata]
    if image is not None:
        if getattr(processor, "image_processor", None) is None:
            raise ValueError(
                f"`{type(processor).__name__}` has no image processor: this model cannot take images."
            )
        content.append({"type": "image"})
        kwargs["images"] = [image]
    content.append({"type": "text", "text": text})
    prompt = processor.apply_chat_template(
        [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
    )
    return processor(text=[prompt], return_tensors="pt", **kwargs)


def _to_model(inputs: Any, model: Any) -> Any:
    """Move inputs to the model's device, and floating-point ones (pixel values) to its dtype."""
    from transformers import BatchFeature

    if isinstance(inputs, BatchFeature):
        return inputs.to(model.device, dtype=model.dtype)
    if hasattr(inputs, "to"):
        return inputs.to(model.device)
    return {k: v.to(model.device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}


def _finite(values: Iterable[float]) -> list[float | None]:
    return [round(v, 5) if math.isfinite(v) else None for v in values]


def generate_answer(
    model: Any,
    processor: Any,
    inputs: Mapping[str, Any],
    *,
    mode: str = "vreason",
    vreason_config: VReasonConfig | dict[str, Any] | None = None,
    generate_kwargs: dict[str, Any] | None = None,
) -> GenerationResult:
    """Generate one answer with plain decoding or V-Reason and measure it.

    Args:
        model (`PreTrainedModel`):
            The model.
        processor (`ProcessorMixin` or `PreTrainedTokenizerBase`):
            Used to decode the output.
        inputs (`BatchFeature` or `dict`):
            Model inputs for one sample (e.g. from [`build_inputs`]); moved to ``model.device``.
        mode (`str`, *optional*, defaults to `"vreason"`):
            ``"base"`` (plain `generate`), ``"vreason"`` (`custom_generate=vreason_generate` with
            ``vreason_config``) or ``"lite"`` (the same with ``lite=True``).
        vreason_config (`VReasonConfig` or `dict`, *optional*):
            The knobs (defaults to `VReasonConfig()`). For ``"base"`` only ``ema_beta``, ``ema_init`` and
            ``alpha_schedule`` are used, to compute the traces.
        generate_kwargs (`dict`, *optional*):
            Extra `generate` arguments, over [`DEFAULT_GENERATE_KWARGS`] (greedy, 1024 new tokens).

    Returns:
        [`GenerationResult`]: the text, token count, time, peak memory and per-token traces.

    Raises:
        ValueError: If ``mode`` is unknown, or ``mode="vreason"`` with ``lite=True`` in the config (use ``"lite"``).
    """
    config = _mode_config(mode, as_vreason_config(vreason_config))
    kwargs = {**DEFAULT_GENERATE_KWARGS, **(generate_kwargs or {}), "return_dict_in_generate": True}
    inputs = _to_model(inputs, model)
    prompt_len = inputs["input_ids"].shape[1]
    recorder, handle = None, None
    if mode == "base":
        head = model.get_output_embeddings()
        if head is not None:
            recorder = _EntropyRecorder()
            handle = head.register_forward_hook(recorder)
    else:
        kwargs.update(custom_generate=vreason_generate, vreason_config=config)
    try:
        with _PeakMemory(model) as memory:
            start = time.perf_counter()
            out = model.generate(**inputs, **kwargs)
            if memory.cuda_devices:
                torch.cuda.synchronize(memory.cuda_devices[0])
            seconds = time.perf_counter() - start
    finally:
        if handle is not None:
            handle.remove()
    new_tokens = out.sequences[0, prompt_len:]
    text = _tokenizer(processor).decode(new_tokens, skip_special_tokens=True).strip()
    if mode == "base":
        entropies = [float(v) for v in recorder.values] if recorder is not None else []
        entropies = entropies[: new_tokens.numel()]
        emas, alphas = _schedule_traces(entropies, config)
        steps = 0
    else:
        entropies = out.entropies[0].tolist()
        emas = out.ema_entropies[0].tolist()
        alphas = out.alphas[0].tolist()
        steps = int(out.optimizer_steps[0])
    return GenerationResult(
        text=text,
        output_tokens=int(new_tokens.numel()),
        seconds=seconds,
        peak_memory_mb=memory.mb,
        memory_source=memory.source,
        entropies=_finite(entropies),
        ema_entropies=_finite(emas),
        alphas=[float(a) for a in alphas],
        optimizer_steps=steps,
    )


def warm_up(
    model: Any,
    processor: Any,
    inputs: Mapping[str, Any],
    *,
    modes: Sequence[str] = ("vreason",),
    vreason_config: VReasonConfig | dict[str, Any] | None = None,
    generate_kwargs: dict[str, Any] | None = None,
) -> None:
    """Generate two tokens in each mode, untimed, so one-time costs do not land on the first timed answer.

    The first `generate` of a process pays for lazy initialisation (kernel selection, allocator growth, the first
    backward pass of V-Reason); without a warm-up it makes whichever mode runs first look slower.

    Args:
        model, processor, inputs, vreason_config, generate_kwargs:
            As in [`generate_answer`] (``max_new_tokens`` is replaced by 2).
        modes (`Sequence[str]`, *optional*, defaults to `("vreason",)`):
            The modes to warm up.
    """
    kwargs = {**(generate_kwargs or {}), "max_new_tokens": 2}
    kwargs.pop("min_new_tokens", None)
    for mode in modes:
        generate_answer(
            model, processor, inputs, mode=mode, vreason_config=vreason_config, generate_kwargs=kwargs
        )


def _mode_config(mode: str, config: VReasonConfig) -> VReasonConfig:
    if mode not in MODES:
        raise ValueError(f"Unknown mode {mode!r}; the modes are: {', '.join(MODES)}.")
    if mode == "lite" and not config.lite:
        return VReasonConfig(**{**config.knobs(), "lite": True})
    if mode == "vreason" and config.lite:
        raise ValueError(
            "Mode 'vreason' was asked for with `lite=True` in the V-Reason config: use mode 'lite' for V-Reason Lite."
        )
    return config


def frame_sampling(
    num_frames: int | None = None, fps: float | None = None, max_frames: int | None = None
) -> tuple[int | None, float | None, int | None]:
    """Resolve the frame-sampling arguments: with neither ``num_frames`` nor ``fps``, Video-R1's 2 fps, at most 16 frames.

    Args:
        num_frames (`int`, *optional*):
            Frames sampled uniformly (exclusive with ``fps``).
        fps (`float`, *optional*):
            Sampling rate.
        max_frames (`int`, *optional*):
            Frame cap; defaults to 16 only with the default 2 fps sampling.

    Returns:
        `tuple[int | None, float | None, int | None]`: ``(num_frames, fps, max_frames)`` for
        [`~vreason_hf.video.load_video`].

    Raises:
        ValueError: If both ``num_frames`` and ``fps`` are given.
    """
    if num_frames is not None and fps is not None:
        raise ValueError("`num_frames` and `fps` are mutually exclusive: pass only one of them.")
    if num_frames is None and fps is None:
        return None, 2.0, 16 if max_frames is None else max_frames
    return num_frames, fps, max_frames


# --------------------------------------------------------------------------------------------------
# Results files
# --------------------------------------------------------------------------------------------------


def results_paths(output_path: str | os.PathLike) -> dict[str, Path]:
    """Where an evaluation writes its files, given its results path.

    Args:
        output_path (`str` or `os.PathLike`):
            The results file, e.g. ``results/mvbench.jsonl``.

    Returns:
        `dict[str, Path]`: ``results`` (the merged JSONL), ``summary_json`` and ``summary_md`` (``RESULTS.summary.json``
        / ``.summary.md``, the suffix of ``output_path`` replaced), and ``rank_glob``, the pattern of the per-rank
        files (``RESULTS.rank{r}.jsonl``).
    """
    path = Path(output_path)
    return {
        "results": path,
        "summary_json": path.with_suffix(".summary.json"),
        "summary_md": path.with_suffix(".summary.md"),
        "rank_glob": path.with_suffix(".rank*.jsonl"),
    }


def _rank_path(output_path: Path, rank: int) -> Path:
    return output_path.with_suffix(f".rank{rank}.jsonl")


def _rank_files(output_path: Path) -> list[Path]:
    pattern = output_path.with_suffix(".rank*.jsonl").name
    files = [p for p in output_path.parent.glob(pattern) if _RANK_FILE.search(p.name)]
    return sorted(files, key=lambda p: int(_RANK_FILE.search(p.name).group(1)))


def read_records(path: str | os.PathLike) -> list[dict]:
    """Read a results JSONL file, tolerating a partially written last line.

    A last line without its newline is what a crash in the middle of a write leaves behind: it is ignored (with a
    warning), and the sample is run again on resume. A missing file reads as no records.

    Args:
        path (`str` or `os.PathLike`):
            The file.

    Returns:
        `list[dict]`: The records, in file order.

    Raises:
        ValueError: If a complete (newline-terminated) line is not a JSON object; the message names the file and line.
    """
    path = Path(path)
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    tail = lines.pop()  # "" when the file ends with a newline
    if tail.strip():
        logger.warning("%s: ignoring a partially written last line (%d characters).", path, len(tail))
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: line {number} is not valid JSON ({error.msg}).") from error
        if not isinstance(record, dict):
            raise ValueError(f"{path}: line {number} is not a JSON object.")
        records.append(record)
    return records


def _cut_partial_tail(path: Path) -> None:
    """Remove a partially written last line so the next append starts on a fresh line."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as handle:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) == b"\n":
            return
        handle.seek(0)
        data = handle.read()
        keep = data.rfind(b"\n") + 1
        handle.truncate(keep)
        logger.warning("%s: cut a partially written last line (%d bytes).", path, len(data) - keep)


def _record_key(record: Mapping) -> tuple[str, str, str]:
    return (str(record.get("dataset")), str(record.get("id")), str(record.get("mode")))


def _all_records(output_path: Path) -> list[dict]:
    records = read_records(output_path)
    for path in _rank_files(output_path):
        records.extend(read_records(path))
    return records


def _dedupe(records: Iterable[dict]) -> list[dict]:
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for record in records:
        key = _record_key(record)
        if key not in seen:
            seen.add(key)
            unique.append(record)
    dataset_order: dict[str, int] = {}
    for record in unique:
        dataset_order.setdefault(str(record.get("dataset")), len(dataset_order))
    unique.sort(
        key=lambda r: (
            dataset_order[str(r.get("dataset"))],
            str(r.get("id")),
            _MODE_ORDER.get(str(r.get("mode")), len(MODES)),
            str(r.get("mode")),
        )
    )
    return unique


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_summary(records: Sequence[Mapping], output_path: str | os.PathLike) -> dict:
    """Summarise records with :func:`~vreason_hf.eval.summarize` and write ``.summary.json`` / ``.summary.md``.

    Args:
        records (`Sequence[Mapping]`):
            Results records (as written by [`evaluate`]).
        output_path (`str` or `os.PathLike`):
            The results file the summary belongs to (see [`results_paths`]).

    Returns:
        `dict`: The summary.
    """
    paths = results_paths(output_path)
    summary = summarize(records)
    _write_atomic(paths["summary_json"], json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    _write_atomic(paths["summary_md"], summary_to_markdown(summary))
    return summary


def merge_results(output_path: str | os.PathLike) -> dict:
    """Merge ``RESULTS.jsonl`` and every ``RESULTS.rank{r}.jsonl`` into ``RESULTS.jsonl`` and write the summary.

    Records are deduplicated on ``(dataset, id, mode)`` (the first one read wins: the merged file, then the rank
    files in rank order) and sorted by dataset (first appearance), sample id (file order) and mode. The merged
    file is replaced atomically; the rank files are kept (merging again is harmless).

    Args:
        output_path (`str` or `os.PathLike`):
            The results file.

    Returns:
        `dict`: The summary (see :func:`~vreason_hf.eval.summarize`).

    Raises:
        FileNotFoundError: If there is neither the results file nor any rank file.
    """
    output_path = Path(output_path)
    if not output_path.is_file() and not _rank_files(output_path):
        raise FileNotFoundError(
            f"Nothing to merge: neither '{output_path}' nor any '{output_path.with_suffix('.rank*.jsonl').name}' exists."
        )
    records = _dedupe(_all_records(output_path))
    _write_atomic(output_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    logger.info("Merged %d records into %s.", len(records), output_path)
    return write_summary(records, output_path)


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
    save_traces: bool = True,
    progress: bool = True,
    warmup: bool = True,
) -> dict | None:
    """Evaluate a model on Video-R1 records, writing one JSON line per sample and mode as soon as it finishes.

    Each record holds ``id`` (:func:`~vreason_hf.eval.sample_id`), ``index``, ``dataset``, ``mode``, ``model``,
    ``problem_type``, ``prediction`` (the generated text), ``extracted``, ``target``, ``score``, ``parsable``,
    ``secondary`` (OCR / free-form metric), ``output_tokens``, ``seconds``, ``peak_memory_mb`` and
    ``memory_source`` (see [`GenerationResult`]), ``optimizer_steps``, ``knobs`` (the V-Reason knobs; `None` for
    ``"base"``), ``generation`` (decoding and frame-sampling settings) and, unless ``save_traces=False``, the
    per-token ``entropies``, ``ema_entropies`` and ``alphas`` (for :func:`~vreason_hf.eval.plots.plot_entropy_traces`).

    Resuming: every ``(dataset, id, mode)`` already in the results file or a rank file is skipped. Records of the
    same dataset and mode made with other knobs, decoding settings or model raise instead of being mixed.

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
        save_traces (`bool`, *optional*, defaults to `True`):
            Store the per-token traces (about 30 kB per 1000-token record).
        progress (`bool`, *optional*, defaults to `True`):
            Show a tqdm progress bar.
        warmup (`bool`, *optional*, defaults to `True`):
            Before the first timed answer, run each mode once for two tokens (see [`warm_up`]).

    Returns:
        `dict | None`: The summary of the whole results file (every dataset in it), written as
        ``RESULTS.summary.json`` / ``.summary.md``; `None` on a rank that finished while other ranks still run
        (the last rank to finish merges and summarises).

    Raises:
        ValueError: For bad arguments, mismatching resume settings, samples the model cannot take, or a results
            file with a corrupt line.
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
    rank, world = resolve_shard(shard)
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    write_path = output_path if world == 1 else _rank_path(output_path, rank)
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
    existing = _all_records(output_path)
    _check_settings(existing, dataset_name, expected, output_path)
    done = {_record_key(r) for r in existing}
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
        for index, sample, missing in todo:
            inputs = _sample_inputs(
                processor, sample, multimodal, root, num_frames, fps, max_frames, video_backend
            )
            if warmup:
                for mode in modes:
                    warm_up(
                        model,
                        processor,
                        inputs,
                        modes=(mode,),
                        vreason_config=mode_configs[mode],
                        generate_kwargs=generate_kwargs,
                    )
                warmup = False
            for mode in missing:
                result = generate_answer(
                    model,
                    processor,
                    inputs,
                    mode=mode,
                    vreason_config=mode_configs[mode],
                    generate_kwargs=generate_kwargs,
                )
                detail = score_sample_detailed(sample, result.text)
                record = {
                    "id": ids[index],
                    "index": index,
                    "dataset": dataset_name,
                    "mode": mode,
                    "model": model_name,
                    "problem_type": sample["problem_type"],
                    "prediction": result.text,
                    "extracted": detail.extracted,
                    "target": detail.target,
                    "score": detail.score,
                    "parsable": detail.parsable,
                    "secondary": detail.secondary,
                    "output_tokens": result.output_tokens,
                    "seconds": round(result.seconds, 4),
                    "peak_memory_mb": None
                    if result.peak_memory_mb is None
                    else round(result.peak_memory_mb, 1),
                    "memory_source": result.memory_source,
                    "optimizer_steps": result.optimizer_steps,
                    "knobs": expected[mode]["knobs"],
                    "generation": generation,
                }
                if save_traces:
                    record.update(
                        entropies=result.entropies, ema_entropies=result.ema_entropies, alphas=result.alphas
                    )
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
                scores[mode].append(detail.score)
                bar.update(1)
                bar.set_postfix({m: f"{sum(s) / len(s):.2f}" for m, s in scores.items() if s}, refresh=False)

    if world == 1:
        return merge_results(output_path)
    have = {_record_key(r) for r in _all_records(output_path)}
    wanted = {(dataset_name, ids[index], mode) for index, _ in selected for mode in modes}
    if wanted <= have:
        logger.info("Rank %d finished last: merging the rank files into %s.", rank, output_path)
        return merge_results(output_path)
    logger.info(
        "Rank %d finished its shard; %d record(s) of other ranks are still missing (the last rank to finish merges, "
        "or run `vreason eval --merge --output %s`).",
        rank,
        len(wanted - have),
        output_path,
    )
    return None


def _sample_inputs(
    processor: Any,
    sample: Mapping,
    multimodal: bool,
    root: Path | None,
    num_frames: int | None,
    fps: float | None,
    max_frames: int | None,
    video_backend: str,
) -> Any:
    text = build_prompt(sample)
    if not multimodal:
        return build_inputs(processor, text)
    path = _resolve_media(sample, root)
    if sample["data_type"] == "image":
        from PIL import Image

        with Image.open(path) as image:
            return build_inputs(processor, text, image=image.convert("RGB"))
    from ..video import load_video

    if num_frames is not None:
        # Uniform sampling of `num_frames` is the same as taking every frame and capping at `num_frames` (the same
        # rounded linspace), except that a shorter clip gives all its frames instead of raising mid-run.
        cap = num_frames if max_frames is None else min(num_frames, max_frames)
        num_frames, max_frames = None, cap
    frames, metadata = load_video(
        path, num_frames=num_frames, fps=fps, max_frames=max_frames, backend=video_backend
    )
    return build_inputs(processor, text, video=frames, video_metadata=metadata)
