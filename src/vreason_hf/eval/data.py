# Copyright 2025 vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Reading and validating Video-R1 evaluation files (``eval_<benchmark>.json`` or JSONL)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from .scoring import PROBLEM_TYPES, _has_answer_block, extract_answer, parse_number

__all__ = ["DATA_TYPES", "REQUIRED_FIELDS", "load_samples", "sample_id", "validate_sample"]

REQUIRED_FIELDS: tuple[str, ...] = ("problem", "problem_type", "solution", "path", "data_type")
"""Fields every record must have (``options`` is additionally required for multiple choice)."""

DATA_TYPES: tuple[str, ...] = ("video", "image")
"""Allowed ``data_type`` values (Video-R1 uses the value as the chat content type)."""

_STRING_FIELDS = ("problem", "solution", "path")


def validate_sample(sample: object, *, source: str = "<sample>", index: int = 0) -> dict:
    """Validate one Video-R1 evaluation record.

    Args:
        sample (`object`):
            The decoded record.
        source (`str`, *optional*, defaults to `"<sample>"`):
            File name used in error messages.
        index (`int`, *optional*, defaults to 0):
            Record index (0-based) used in error messages.

    Returns:
        `dict`: The record (as a `dict`).

    Raises:
        ValueError: If the record is not an object, a required field is missing, a field has the wrong
            type, ``problem_type`` / ``data_type`` has an unknown value, the gold ``solution`` has no
            ``<answer>...</answer>`` block, or a numerical / regression gold answer is not a number (either
            would score every prediction 0). The message names the file, the record index and the field.
    """
    where = f"{source}: record {index}"
    if not isinstance(sample, Mapping):
        raise ValueError(f"{where}: expected a JSON object, got {type(sample).__name__}.")
    for field in REQUIRED_FIELDS:
        if field not in sample:
            raise ValueError(f"{where}: missing required field `{field}`.")
    for field in _STRING_FIELDS:
        if not isinstance(sample[field], str):
            raise ValueError(
                f"{where}: field `{field}` must be a string, got {type(sample[field]).__name__}."
            )
    problem_type = sample["problem_type"]
    if problem_type not in PROBLEM_TYPES:
        allowed = ", ".join(repr(t) for t in PROBLEM_TYPES)
        raise ValueError(f"{where}: unknown `problem_type` {problem_type!r}; allowed values are: {allowed}.")
    if sample["data_type"] not in DATA_TYPES:
        allowed = ", ".join(repr(t) for t in DATA_TYPES)
        raise ValueError(
            f"{where}: unknown `data_type` {sample['data_type']!r}; allowed values are: {allowed}."
        )
    if problem_type == "multiple choice":
        if "options" not in sample:
            raise ValueError(f"{where}: missing field `options`, required for multiple choice.")
        options = sample["options"]
        if not isinstance(options, list) or not options or not all(isinstance(o, str) for o in options):
            raise ValueError(
                f"{where}: field `options` must be a non-empty list of strings, got {options!r}."
            )
    solution = sample["solution"]
    if not _has_answer_block(solution):
        raise ValueError(
            f"{where}: `solution` {_short(solution)} has no non-empty <answer>...</answer> block. Video-R1 files "
            "wrap the gold answer in these tags (e.g. `<answer>B</answer>`); the score compares against its content."
        )
    if problem_type in ("numerical", "regression") and parse_number(extract_answer(solution)) is None:
        raise ValueError(
            f"{where}: the {problem_type} gold answer {extract_answer(solution)!r} is not a number, so every "
            "prediction would score 0; fix the `solution` (e.g. `<answer>3.5</answer>`) or the `problem_type`."
        )
    return dict(sample)


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def read_text_file(path: str | os.PathLike, *, what: str) -> str:
    """Read a UTF-8 text file, naming it in the error when it is not UTF-8.

    Args:
        path (`str` or `os.PathLike`):
            The file.
        what (`str`):
            What the file should be, for the message (e.g. ``"a Video-R1 evaluation file"``).

    Returns:
        `str`: The text.

    Raises:
        ValueError: If the bytes are not UTF-8 (the message names the file, the first bad byte and its offset).
    """
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        bad = data[error.start : error.start + 1].hex()
        raise ValueError(
            f"'{path}' is not UTF-8 text (byte 0x{bad} at offset {error.start}); {what} must be UTF-8 encoded JSON."
        ) from None


def load_samples(path: str | os.PathLike) -> list[dict]:
    """Load and validate a Video-R1 evaluation file.

    Files ending in ``.jsonl`` are read as JSON Lines (one object per line; blank lines skipped). Any
    other file is read as JSON and must hold a list of objects (Video-R1's ``eval_*.json`` format).

    Args:
        path (`str` or `os.PathLike`):
            The file.

    Returns:
        `list[dict]`: The records, in file order (validated with :func:`validate_sample`).

    Raises:
        ValueError: If the file is not UTF-8, cannot be decoded, is not a list, or a record is invalid (see
            :func:`validate_sample`). Messages name the file, and the record index (and line for JSONL).
    """
    path = Path(path)
    source = str(path)
    text = read_text_file(path, what="a Video-R1 evaluation file")
    if path.suffix.lower() == ".jsonl":
        records: list[object] = []
        for line_number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{source}: line {line_number}: invalid JSON ({error.msg}).") from error
    else:
        try:
            decoded = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{source}: invalid JSON ({error.msg} at line {error.lineno}).") from error
        if not isinstance(decoded, list):
            raise ValueError(
                f"{source}: expected a JSON list of records, got {type(decoded).__name__} "
                "(use a .jsonl suffix for JSON Lines)."
            )
        records = decoded
    return [validate_sample(record, source=source, index=index) for index, record in enumerate(records)]


def sample_id(sample: Mapping, index: int) -> str:
    """Stable identifier of a record within its file, used to resume runs without duplicates.

    The id is ``f"{index:06d}-{digest}"``, where ``digest`` is 12 hex characters of a BLAKE2b hash of the
    record's ``problem_id`` (if any), ``path``, ``problem``, ``options``, ``solution`` and
    ``problem_type``. The index makes ids unique even when records repeat (``problem_id`` alone is not
    relied on: the format does not guarantee it is unique); the digest makes a stale result from an
    edited or reordered file fail to match, so it is recomputed rather than silently reused. Ids are
    only meaningful together with the dataset name.

    Args:
        sample (`Mapping`):
            The record.
        index (`int`):
            Its 0-based position in the file.

    Returns:
        `str`: The id, e.g. ``"000042-3f2a9c01d4e7"``.
    """
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"`index` must be a non-negative integer, got {index!r}.")
    key = {
        field: sample.get(field)
        for field in ("problem_id", "path", "problem", "options", "solution", "problem_type")
    }
    payload = json.dumps(key, sort_keys=True, ensure_ascii=False, default=str)
    digest = hashlib.blake2b(payload.encode("utf-8"), digest_size=6).hexdigest()
    return f"{index:06d}-{digest}"
