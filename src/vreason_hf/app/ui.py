# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""The Gradio page: a video and a question in, plain and V-Reason answers side by side (streamed), their stats
and a live entropy plot out; plus the `/compare` API endpoint for `gradio_client`."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..configuration_vreason import VReasonConfig
from ..generation.engine import as_vreason_config
from ..loading import load_model
from ..video import VideoDecodeError
from . import DEFAULT_MODEL, check_app_args
from .compare import Answer, ModelSlot, compare_answers, plot_answers

logger = logging.getLogger(__name__)

__all__ = ["build_app"]

PLOT_EVERY_S = 0.5
"""Redraw the live plot at most this often (drawing costs more than a token of a small model)."""

# Errors in what a visitor sent: reported as one line, logged without a traceback.
_VISITOR_ERRORS = (ValueError, TypeError, FileNotFoundError, VideoDecodeError)

_INTRO = """\
# V-Reason: plain decoding vs. V-Reason, side by side

[V-Reason](https://arxiv.org/abs/2510.17045) tunes a small controller on the last layer's video value cache
while the model decodes, pushing the entropy of its next-token distribution up while its moving average still
climbs (explore, α = +1) and down once it has peaked (exploit, α = −1). No training, no weight change.
Upload a clip (or pick an example), ask a question and watch both answers decode.
"""

_FOOTNOTE = """\
Both columns come from the same decoding loop: plain decoding is V-Reason with `num_steps=0`, which is token for
token greedy decoding, so both are traced the same way (its α is the value the switching rule *would* take; nothing
is optimised). The plain answer decodes first, then V-Reason, each alone; seconds include the prefill and are
shared with other visitors' requests when several run at once. Thin lines: per-token entropy; thick lines: its EMA
(star: its peak); bottom: α.
"""


def _stats(answer: Answer) -> str:
    state = "" if answer.done else " (decoding)"
    return (
        f"**{len(answer.token_ids)}** output tokens · **{answer.seconds:.2f}** s · "
        f"**{answer.optimizer_steps}** Adam steps{state}"
    )


def _error_line(error: BaseException, video: Any = None) -> str:
    lines = str(error).strip().splitlines()
    line = lines[0] if lines else type(error).__name__
    # An upload lives in Gradio's cache under a hashed folder: name the file as the visitor knows it.
    return line.replace(str(video), Path(video).name) if video else line


def _model_label(model_id: str) -> str:
    """A Hub id as a link; a local folder by its name only (the page does not show the server's paths)."""
    if Path(model_id).expanduser().exists():
        return f"`{Path(model_id).name}` (a local folder)"
    return f"[`{model_id}`](https://huggingface.co/{model_id})"


def _whole(value: Any) -> Any:
    """Gradio's numbers and sliders may send `2.0` for 2; `VReasonConfig` validates the rest."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class _App:
    """The request handlers, bound to one model slot and the app's defaults."""

    def __init__(self, slot: ModelSlot, config: VReasonConfig, num_frames: int, max_new_tokens: int) -> None:
        self.slot, self.config = slot, config
        self.num_frames, self.max_new_tokens = num_frames, max_new_tokens

    def _answers(
        self, video: Any, question: Any, config: VReasonConfig, num_frames: int, max_new_tokens: int
    ) -> contextlib.closing[Iterator[tuple[Answer, Answer]]]:
        """The comparison as a context manager: leaving it (done, failed, or the visitor left) stops decoding."""
        model, processor = self.slot.get()
        answers = compare_answers(
            model,
            processor,
            video,
            question,
            vreason_config=config,
            num_frames=num_frames,
            max_new_tokens=max_new_tokens,
        )
        return contextlib.closing(answers)

    def stream(
        self,
        video: str | None,
        question: str | None,
        max_new_tokens: float,
        update_every: float,
        num_steps: float,
        lr: float,
        alpha_schedule: str,
        lite: bool,
        num_frames: float,
    ) -> Iterator[tuple[Any, ...]]:
        """The page's handler: yields (status, plain, plain stats, V-Reason, V-Reason stats, plot) as tokens come."""
        import gradio as gr

        yield "Preparing …", "", "", "", "", None
        try:
            knobs = {
                "update_every": _whole(update_every),
                "num_steps": _whole(num_steps),
                "lr": float(lr) if type(lr) is int else lr,
                "alpha_schedule": alpha_schedule,
                "lite": bool(lite),
            }
            config = VReasonConfig(**{**self.config.knobs(), **knobs})
            if not self.slot.loaded:
                yield f"Loading the model {self.slot.name} (first request only) …", *(gr.skip(),) * 5
            with self._answers(
                video, question, config, _whole(num_frames), _whole(max_new_tokens)
            ) as answers:
                yield from self._updates(answers)
        except Exception as error:
            self._log(error)
            yield f"**Error:** {_error_line(error, video)}", *(gr.skip(),) * 5

    @staticmethod
    def _updates(answers: Iterator[tuple[Answer, Answer]]) -> Iterator[tuple[Any, ...]]:
        """Page updates for each snapshot of the two columns; the plot is redrawn at most every `PLOT_EVERY_S`."""
        import gradio as gr

        plotted_at = 0.0
        for plain, vreason in answers:
            current = vreason if plain.done else plain
            now = time.perf_counter()
            redraw = current.done or now - plotted_at >= PLOT_EVERY_S
            if redraw:
                plotted_at = now
            status = f"Decoding: {current.label}, token {len(current.token_ids)} …"
            if vreason.done:
                status = (
                    f"Done: plain {len(plain.token_ids)} tokens in {plain.seconds:.2f} s; {vreason.label} "
                    f"{len(vreason.token_ids)} tokens in {vreason.seconds:.2f} s, "
                    f"{vreason.optimizer_steps} Adam steps."
                )
            yield (
                status,
                plain.text,
                _stats(plain),
                vreason.text,
                _stats(vreason) if vreason.token_ids or vreason.done else "",
                plot_answers((plain, vreason)) if redraw else gr.skip(),
            )

    def compare(self, video: str | None, question: str | None) -> tuple[str, str, Any]:
        """`/compare`: (video, question) -> (plain answer, V-Reason answer, plot), with the app's default knobs."""
        import gradio as gr

        answers = None
        try:
            with self._answers(video, question, self.config, self.num_frames, self.max_new_tokens) as stream:
                for answers in stream:  # noqa: B007  (the last snapshot is the finished pair)
                    pass
        except Exception as error:
            self._log(error)
            raise gr.Error(_error_line(error, video), print_exception=False) from None
        plain, vreason = answers
        return plain.text, vreason.text, plot_answers(answers)

    @staticmethod
    def _log(error: BaseException) -> None:
        if isinstance(error, _VISITOR_ERRORS):
            logger.info("Request refused: %s", _error_line(error))
        else:
            logger.error("Request failed: %s", _error_line(error), exc_info=error)


def _model_loader(model_id: str, load_kwargs: dict[str, Any]) -> Any:
    def load() -> tuple[Any, Any]:
        return load_model(model_id, **load_kwargs)

    return load


def build_app(
    model_id: str = DEFAULT_MODEL,
    *,
    vreason_config: VReasonConfig | dict[str, Any] | None = None,
    num_frames: int = 16,
    max_new_tokens: int = 256,
    examples: Sequence[str | os.PathLike] = (),
    concurrency_limit: int = 1,
    device: str = "auto",
    dtype: str = "auto",
    device_map: str | None = None,
    trust_remote_code: bool = False,
    preload: bool = True,
) -> Any:
    r"""
    Build the V-Reason comparison app (a `gradio.Blocks`, queued).

    ```python
    from vreason_hf.app import build_app

    build_app("Qwen/Qwen2.5-VL-3B-Instruct", examples=["clip.mp4"]).launch()
    ```

    Args:
        model_id (`str`, *optional*, defaults to `DEFAULT_MODEL`): Hub id or local folder of a video LMM. It is
            loaded in the background (`preload=True`) or on the first request; if it cannot be loaded, every
            request shows why in the page and the server keeps running.
        vreason_config (`VReasonConfig` or `dict`, *optional*): the knobs' defaults (the page's panel starts from
            them; the `/compare` endpoint uses them). Defaults to `VReasonConfig()`.
        num_frames (`int`, *optional*, defaults to 16): frames sampled uniformly from each video (default of the
            panel's slider and of `/compare`).
        max_new_tokens (`int`, *optional*, defaults to 256): new tokens per answer (default of the slider and of
            `/compare`).
        examples (`Sequence[str | os.PathLike]`, *optional*): example clips offered below the video input.
        concurrency_limit (`int`, *optional*, defaults to 1): requests decoded at the same time (one model is
            shared; more wait in Gradio's queue).
        device, dtype, device_map, trust_remote_code: how to load the model (as the `vreason run` options).
        preload (`bool`, *optional*, defaults to `True`): start loading the model now, in a background thread.

    Returns:
        `gradio.Blocks`: call `.launch()` on it.
    """
    try:
        import gradio  # noqa: F401  (fail before any work, with the fix)
    except ImportError as error:
        raise ImportError(
            "The V-Reason app needs Gradio: install it with `pip install 'vreason-hf[app]'`."
        ) from error

    config = as_vreason_config(vreason_config)
    example_paths = check_app_args(num_frames, max_new_tokens, concurrency_limit, examples)
    load_kwargs = {
        "device": device,
        "dtype": dtype,
        "device_map": device_map,
        "trust_remote_code": trust_remote_code,
    }
    slot = ModelSlot(model_id, _model_loader(model_id, load_kwargs))
    handlers = _App(slot, config, num_frames, max_new_tokens)

    demo = _page(handlers, model_id, config, num_frames, max_new_tokens, example_paths)
    demo.queue(default_concurrency_limit=concurrency_limit)
    if preload:
        slot.preload()
    return demo


def _page(
    handlers: _App,
    model_id: str,
    config: VReasonConfig,
    num_frames: int,
    max_new_tokens: int,
    example_paths: list[Path],
) -> Any:
    """The page (a `gradio.Blocks`): the panels, the Compare button's streaming handler and the `/compare` API."""
    import gradio as gr

    with gr.Blocks(title="V-Reason: plain vs. V-Reason decoding", analytics_enabled=False) as demo:
        gr.Markdown(_INTRO, latex_delimiters=[])
        gr.Markdown(f"Model: {_model_label(model_id)}", latex_delimiters=[], elem_id="model")
        video, question, settings, run = _input_panel(config, num_frames, max_new_tokens, example_paths)
        status, plain, plain_stats, vreason, vreason_stats, plot = _answer_panel()
        run.click(
            handlers.stream,
            inputs=[video, question, *settings],
            outputs=[status, plain, plain_stats, vreason, vreason_stats, plot],
            api_visibility="private",
            concurrency_id="decode",
            show_progress="hidden",
        )
        # The API endpoint: a trigger no one sees in the page, with exactly (video, question) -> (plain, V-Reason, plot).
        api_trigger = gr.Button(visible=False)
        api_trigger.click(
            handlers.compare,
            inputs=[video, question],
            outputs=[plain, vreason, plot],
            api_name="compare",
            api_description="Answer a question about a video with plain decoding and with V-Reason (default knobs).",
            concurrency_id="decode",
        )
    return demo


def _input_panel(
    config: VReasonConfig, num_frames: int, max_new_tokens: int, example_paths: list[Path]
) -> tuple[Any, Any, list[Any], Any]:
    """The video, the question, the settings (in the order of `_App.stream`'s arguments) and the Compare button."""
    import gradio as gr

    with gr.Row(equal_height=False):
        with gr.Column():
            video = gr.Video(label="Video", sources=["upload"], elem_id="video")
            if example_paths:
                gr.Examples([[str(p)] for p in example_paths], inputs=[video], label="Example clips")
        with gr.Column():
            question = gr.Textbox(
                label="Question", lines=2, placeholder="What happens in the video?", elem_id="question"
            )
            tokens = gr.Slider(
                1, max(1024, max_new_tokens), value=max_new_tokens, step=1, label="Max new tokens"
            )
            with gr.Accordion("V-Reason knobs", open=False):
                knobs = _knob_inputs(config, num_frames)
            run = gr.Button("Compare", variant="primary", elem_id="run")
    return video, question, [tokens, *knobs], run


def _knob_inputs(config: VReasonConfig, num_frames: int) -> list[Any]:
    """The knob panel's inputs, starting from `config`: update_every, num_steps, lr, alpha_schedule, lite, frames."""
    import gradio as gr

    return [
        gr.Number(config.update_every, precision=0, minimum=1, label="update_every: optimise every k tokens"),
        gr.Number(config.num_steps, precision=0, minimum=0, label="num_steps: Adam steps per update"),
        gr.Number(config.lr, minimum=0, label=f"lr: Adam step size ({config.lr_scale} scale)"),
        gr.Dropdown(
            ["switch", "minimize", "maximize"],
            value=config.alpha_schedule,
            label="alpha_schedule: the paper's switch, or α fixed at −1 / +1",
        ),
        gr.Checkbox(config.lite, label="lite: V-Reason Lite (drop half the video tokens)"),
        gr.Slider(1, 64, value=num_frames, step=1, label="frames sampled from the video"),
    ]


def _answer_panel() -> tuple[Any, ...]:
    """The outputs: status, plain answer, its stats, V-Reason answer, its stats, plot (then the footnote)."""
    import gradio as gr

    status = gr.Markdown("", latex_delimiters=[], elem_id="status")
    with gr.Row(equal_height=True):
        with gr.Column():
            plain = gr.Textbox(label="Plain decoding (greedy)", lines=8, interactive=False, elem_id="plain")
            plain_stats = gr.Markdown("", latex_delimiters=[], elem_id="plain-stats")
        with gr.Column():
            vreason = gr.Textbox(label="V-Reason", lines=8, interactive=False, elem_id="vreason")
            vreason_stats = gr.Markdown("", latex_delimiters=[], elem_id="vreason-stats")
    plot = gr.Image(label="Entropy, EMA and α per token", format="png", interactive=False, elem_id="plot")
    gr.Markdown(_FOOTNOTE, latex_delimiters=[])
    return status, plain, plain_stats, vreason, vreason_stats, plot
