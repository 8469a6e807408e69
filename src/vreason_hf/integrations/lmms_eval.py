# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""V-Reason as an lmms-eval model: ``--model vreason`` for any supported Hugging Face video LMM.

Run lmms-eval's own command line through this module, which registers the model first (lmms-eval itself needs
no change)::

    python -m vreason_hf.integrations.lmms_eval --model vreason \\
        --model_args pretrained=Qwen/Qwen2.5-VL-7B-Instruct,lr=0.05,update_every=2 \\
        --tasks videomme --batch_size 8 --log_samples --output_path results/

``model_args`` takes ``pretrained`` (a Hub id or local folder), every `VReasonConfig` knob (``lr=0.05``,
``lite=True``, ...), ``vreason=False`` for the plain base model, ``num_frames`` / ``fps`` / ``max_frames`` (default:
2 fps, at most 16 frames, like the rest of the library), ``video_backend``, ``max_new_tokens`` (used when the task
sets none; default 1024), ``device``, ``dtype``, ``device_map`` and ``trust_remote_code``. ``--batch_size N``
decodes N requests together (left-padded; one V-Reason state per request, so answers do not change). Under
``accelerate launch`` each process loads the model on its own GPU and lmms-eval gives it its share of requests.

Each request takes at most one video (a path) or one image. The output-token count, the prompt's token count
and the number of Adam steps go into lmms-eval's logged samples (``--log_samples``) under ``token_counts``, the one
per-sample field lmms-eval lets a model fill. ``loglikelihood`` requests are refused: V-Reason changes decoding,
not scoring.

Installed with the ``lmms-eval`` extra, the package also declares an ``lmms_eval.models`` entry point, so a plain
``lmms-eval --model vreason ...`` finds the model too.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

try:
    from lmms_eval.api.instance import GenerationResult as LmmsGenerationResult
    from lmms_eval.api.instance import Instance, TokenCounts
    from lmms_eval.api.model import lmms
    from lmms_eval.api.registry import register_model
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "`vreason_hf.integrations.lmms_eval` needs lmms-eval: `pip install 'vreason-hf[lmms-eval]'` "
        f"({error})."
    ) from error

from ..configuration_vreason import VReasonConfig
from ..eval.generation import generate_batch
from ..eval.samples import frame_request, pixel_budget_kwargs
from ..inputs import Prompt, build_batch_inputs, frame_sampling, is_multimodal

logger = logging.getLogger(__name__)

__all__ = ["VReasonLMM", "VReasonTokenCounts", "main", "register"]

MODEL_NAME = "vreason"
_VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".flv", ".mpeg", ".mpg", ".gif")
_PLACEHOLDERS = ("<image>", "<video>")
# lmms-eval generation kwargs this model understands; any other is ignored with a warning (once per key).
_KNOWN_GEN_KWARGS = {"until", "max_new_tokens", "temperature", "top_p", "top_k", "do_sample", "num_beams"}


@dataclass
class VReasonTokenCounts(TokenCounts):
    """lmms-eval's per-request token counts plus V-Reason's trace: what ``--log_samples`` records per sample.

    Attributes:
        optimizer_steps (`int`, *optional*):
            Adam steps taken on the request's controller (0 for the plain base model).
        mode (`str`, *optional*):
            ``"base"``, ``"vreason"`` or ``"lite"``.
    """

    optimizer_steps: int | None = None
    mode: str | None = None

    def to_dict(self) -> dict[str, Any]:
        counts = super().to_dict()
        if self.optimizer_steps is not None:
            counts["optimizer_steps"] = self.optimizer_steps
        if self.mode is not None:
            counts["vreason_mode"] = self.mode
        return counts


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, str) and value.isdigit())
    ):
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    number = int(value)
    if number < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    return number


@register_model(MODEL_NAME)
class VReasonLMM(lmms):
    """lmms-eval model that decodes a Hugging Face video LMM with V-Reason (or plainly, with ``vreason=False``).

    Args:
        pretrained (`str`):
            Hub id or local folder of the model (a vision-language model, or a text-only LM with
            ``controller_scope="prompt"``).
        vreason (`bool`, *optional*, defaults to `True`):
            `False` decodes with the plain base model (the knobs are then ignored, with a warning).
        num_frames, fps, max_frames (`int` / `float` / `int`, *optional*):
            Frame sampling, as in ``vreason eval``: by default 2 fps, at most 16 frames.
        max_pixels (`int`, *optional*):
            Per-frame pixel budget, as ``vreason eval --max-pixels`` (Video-R1: ``100352``; Qwen2-VL / Qwen2.5-VL).
        video_backend (`str`, *optional*, defaults to `"auto"`):
            Decoder for [`~vreason_hf.video.load_video`].
        max_new_tokens (`int`, *optional*, defaults to 1024):
            Used when the task's generation kwargs set none.
        batch_size (`int`, *optional*, defaults to 1):
            Requests decoded together (lmms-eval's ``--batch_size``).
        device, dtype, device_map, trust_remote_code:
            How the model is loaded (as in ``vreason eval``); ``device`` defaults to the launcher's GPU, else CUDA,
            else the CPU.
        knobs:
            Any `VReasonConfig` knob (``lr``, ``update_every``, ``lite``, ...).

    Raises:
        TypeError: For an argument that is neither one of the above nor a knob.
        ValueError: For a bad value (knobs are validated by `VReasonConfig`).
    """

    is_simple = True

    def __init__(
        self,
        pretrained: str,
        vreason: bool = True,
        num_frames: int | None = None,
        fps: float | None = None,
        max_frames: int | None = None,
        max_pixels: int | None = None,
        video_backend: str = "auto",
        max_new_tokens: int = 1024,
        batch_size: int | str = 1,
        max_batch_size: int | None = None,
        device: str | None = None,
        dtype: str = "auto",
        device_map: str | None = None,
        trust_remote_code: bool = False,
        **knobs: Any,
    ) -> None:
        super().__init__()
        unknown = sorted(set(knobs) - set(VReasonConfig.knob_names()))
        if unknown:
            raise TypeError(
                f"Unknown `model_args` for the `{MODEL_NAME}` model: {', '.join(unknown)}. Accepted: pretrained, "
                "vreason, num_frames, fps, max_frames, max_pixels, video_backend, max_new_tokens, device, dtype, device_map, "
                f"trust_remote_code and the V-Reason knobs {', '.join(VReasonConfig.knob_names())}."
            )
        fields = VReasonConfig.__dataclass_fields__
        knobs = {  # lmms-eval parses `lr=1` as an int: give float knobs floats
            k: float(v)
            if isinstance(fields[k].default, float) and isinstance(v, int) and not isinstance(v, bool)
            else v
            for k, v in knobs.items()
        }
        if not isinstance(vreason, bool):
            raise ValueError(f"`vreason` must be True or False, got {vreason!r}.")
        self.config = VReasonConfig(**{k: v for k, v in knobs.items() if k != "lite"})
        if vreason:
            self.mode = "lite" if knobs.get("lite") else "vreason"
        else:
            self.mode = "base"
            if knobs:
                logger.warning(
                    "`vreason=False` decodes with the plain base model: the knobs %s are ignored.",
                    ", ".join(sorted(knobs)),
                )
        self.frames = dict(
            zip(("num_frames", "fps", "max_frames"), frame_sampling(num_frames, fps, max_frames), strict=True)
        )
        self.video_backend = video_backend
        self.max_new_tokens = _as_int("max_new_tokens", max_new_tokens)
        if isinstance(batch_size, str) and batch_size.startswith("auto"):
            raise ValueError(
                f"`--batch_size {batch_size}` is not supported by `{MODEL_NAME}`: pass an integer."
            )
        self.batch_size_per_gpu = _as_int("batch_size", batch_size)
        if max_batch_size is not None:
            logger.warning(
                "`max_batch_size` only applies to `--batch_size auto`, which `%s` does not support.",
                MODEL_NAME,
            )

        world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        if world > 1:
            from accelerate import Accelerator

            self.accelerator = Accelerator()  # lmms-eval synchronises the processes through it
            self._rank, self._world_size = self.accelerator.process_index, self.accelerator.num_processes

        from ..loading import load_model

        self._model, self.processor = load_model(
            pretrained,
            device=device or "auto",
            dtype=dtype,
            device_map=device_map,
            trust_remote_code=trust_remote_code,
        )
        self.processor_kwargs = pixel_budget_kwargs(self.processor, max_pixels)
        self._warned_gen_kwargs: set[str] = set()

    # lmms-eval reads these -------------------------------------------------------------------------------
    @property
    def model(self) -> Any:
        return self._model

    @property
    def batch_size(self) -> int:
        return self.batch_size_per_gpu

    @property
    def device(self) -> Any:
        return self._model.device

    # requests ---------------------------------------------------------------------------------------------
    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        raise NotImplementedError(
            f"The `{MODEL_NAME}` model only generates: V-Reason changes decoding, not how a continuation is scored, "
            "so loglikelihood tasks would measure the base model. Use a generate_until task (or another model)."
        )

    def generate_until_multi_round(self, requests: list[Instance]) -> list[str]:
        raise NotImplementedError(
            f"The `{MODEL_NAME}` model answers single-turn generate_until requests; multi-round tasks are not "
            "supported."
        )

    def generate_until(self, requests: list[Instance]) -> list[LmmsGenerationResult]:
        """Answer generate_until requests, ``batch_size`` at a time (requests with equal generation kwargs only)."""
        from tqdm.auto import tqdm

        results: list[LmmsGenerationResult | None] = [None] * len(requests)
        groups: dict[str, list[int]] = {}
        for position, request in enumerate(requests):
            key = json.dumps(request.args[1], sort_keys=True, default=str)
            groups.setdefault(key, []).append(position)
        with tqdm(total=len(requests), disable=self.rank != 0, desc="V-Reason answering") as bar:
            for positions in groups.values():
                for start in range(0, len(positions), self.batch_size):
                    chunk = positions[start : start + self.batch_size]
                    for position, result in zip(
                        chunk, self._answer([requests[p] for p in chunk]), strict=True
                    ):
                        results[position] = result
                    bar.update(len(chunk))
        return results

    def _answer(self, requests: Sequence[Instance]) -> list[LmmsGenerationResult]:
        prompts = []
        for request in requests:
            context, _, doc_to_visual, doc_id, task, split = request.args
            doc = self.task_dict[task][split][doc_id]
            visuals = doc_to_visual(doc) if doc_to_visual is not None else None
            prompts.append(self._prompt(context, visuals, f"{task}/{split}/{doc_id}"))
        gen_kwargs = dict(requests[0].args[1])
        until = gen_kwargs.pop("until", None)
        until = [until] if isinstance(until, str) else list(until or [])
        inputs = build_batch_inputs(self.processor, prompts, processor_kwargs=self.processor_kwargs)
        answers = generate_batch(
            self._model,
            self.processor,
            inputs,
            mode=self.mode,
            vreason_config=self.config,
            generate_kwargs=self._generate_kwargs(gen_kwargs),
        )
        prompt_tokens = inputs["attention_mask"].sum(-1).tolist()
        results = []
        for answer, input_tokens in zip(answers, prompt_tokens, strict=True):
            text = answer.text
            for stop in until:
                if stop:
                    text = text.split(stop)[0]
            counts = VReasonTokenCounts(
                input_tokens=int(input_tokens),
                output_tokens=answer.output_tokens,
                optimizer_steps=answer.optimizer_steps,
                mode=self.mode,
            )
            results.append(LmmsGenerationResult(text=text, token_counts=counts))
        return results

    def _prompt(self, context: str, visuals: Any, where: str) -> Prompt:
        for placeholder in _PLACEHOLDERS:
            context = context.replace(placeholder, "")
        visuals = [] if visuals is None else list(visuals) if isinstance(visuals, list | tuple) else [visuals]
        if not visuals:
            return Prompt(context)
        if len(visuals) > 1:
            raise ValueError(
                f"{where}: the `{MODEL_NAME}` model takes at most one video or image per request, got "
                f"{len(visuals)} visuals."
            )
        (visual,) = visuals
        if not is_multimodal(self.processor):
            raise ValueError(f"{where}: a text-only model cannot take the request's video or image.")
        if isinstance(visual, str | os.PathLike):
            from ..video import load_video

            if not str(visual).lower().endswith(_VIDEO_SUFFIXES):
                logger.debug("%s: treating %s as a video file.", where, visual)
            frames, metadata = load_video(visual, backend=self.video_backend, **frame_request(**self.frames))
            return Prompt(context, video=frames, video_metadata=metadata)
        from PIL import Image

        if isinstance(visual, Image.Image):
            return Prompt(context, image=visual.convert("RGB"))
        raise ValueError(
            f"{where}: unsupported visual of type {type(visual).__name__}; the `{MODEL_NAME}` model takes a video "
            "path or a PIL image."
        )

    def _generate_kwargs(self, gen_kwargs: dict[str, Any]) -> dict[str, Any]:
        for key in sorted(set(gen_kwargs) - _KNOWN_GEN_KWARGS - self._warned_gen_kwargs):
            self._warned_gen_kwargs.add(key)
            logger.warning("The task's generation kwarg `%s` is not used by the `%s` model.", key, MODEL_NAME)
        kwargs: dict[str, Any] = {
            "max_new_tokens": int(gen_kwargs.get("max_new_tokens") or self.max_new_tokens)
        }
        temperature = float(gen_kwargs.get("temperature") or 0.0)
        if temperature > 0 or gen_kwargs.get("do_sample"):
            kwargs.update(do_sample=True, temperature=temperature or 1.0)
            for key in ("top_p", "top_k"):
                if gen_kwargs.get(key) is not None:
                    kwargs[key] = gen_kwargs[key]
        else:
            kwargs["do_sample"] = False
        if int(gen_kwargs.get("num_beams") or 1) > 1:
            kwargs["num_beams"] = int(gen_kwargs["num_beams"])
        return kwargs


def register() -> None:
    """Make ``--model vreason`` resolvable by lmms-eval's evaluator (its model registry, not only the legacy one).

    lmms-eval 0.7 resolves model names through ``lmms_eval.models.MODEL_REGISTRY_V2``; ``register_model`` (applied
    above) only fills the older registry. Registering twice is harmless.
    """
    from lmms_eval.models import MODEL_REGISTRY_V2

    from . import lmms_eval_manifest

    MODEL_REGISTRY_V2.register_manifest(lmms_eval_manifest(), overwrite=True)


register()


def main(argv: Sequence[str] | None = None) -> None:
    """Run lmms-eval's command line with the ``vreason`` model registered.

    Args:
        argv (`Sequence[str]`, *optional*):
            lmms-eval's arguments (default: ``sys.argv[1:]``), e.g. ``--model vreason --model_args ... --tasks ...``.
    """
    from lmms_eval.cli.dispatch import main as lmms_eval_main

    register()
    sys.argv = ["lmms-eval", *(sys.argv[1:] if argv is None else argv)]
    lmms_eval_main()


if __name__ == "__main__":
    # Run the copy imported under the package's name, so lmms-eval's registry (which imports
    # `vreason_hf.integrations.lmms_eval.VReasonLMM`) and this entry point share one class.
    from vreason_hf.integrations.lmms_eval import main as _main

    _main()
