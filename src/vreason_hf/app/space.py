# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""`vreason export-space`: a folder ready to push as a Hugging Face Space that serves the comparison app.

The Space's code is a few lines over the published package (`vreason_hf.app.build_app`), so the Space runs
wherever `pip install -r requirements.txt` installs `vreason-hf[app]`; nothing from this checkout is copied.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..configuration_vreason import VReasonConfig
from ..hub import _check_out_dir
from . import DEFAULT_MODEL, check_app_args

logger = logging.getLogger(__name__)

__all__ = ["MODEL_ENV_VAR", "build_space_dir"]

MODEL_ENV_VAR = "VREASON_MODEL"
"""A Space variable (or environment variable) of this name makes the exported app serve another model."""

_APP_PY = '''\
"""A Hugging Face Space: plain decoding vs. V-Reason (arXiv 2510.17045) on a question about a video.

Written by `vreason export-space` (vreason-hf {version}). Run it locally with
`pip install -r requirements.txt && python app.py`; set the variable {env} to serve another video LMM.
"""

import logging
import os
from pathlib import Path

from vreason_hf.app import build_app

logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
HERE = Path(__file__).resolve().parent
MODEL = os.environ.get({env!r}, {model!r})
EXAMPLES = [HERE / "examples" / name for name in {examples!r}]

demo = build_app(
    MODEL,
    examples=EXAMPLES,
    vreason_config={knobs!r},
    num_frames={num_frames!r},
    max_new_tokens={max_new_tokens!r},
    concurrency_limit={concurrency_limit!r},
)

if __name__ == "__main__":
    demo.launch()  # host and port from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (set on Spaces)
'''

_README_BODY = """
# {title}

Ask a question about a video and watch two answers decode side by side: plain greedy decoding and
[V-Reason](https://arxiv.org/abs/2510.17045) ("Video Reasoning without Training"), which tunes a small controller
on the last layer's video value cache while decoding, on an entropy switching objective. The page plots each
answer's per-token entropy, its moving average and the switching coefficient α as they decode, and reports output
tokens, seconds and Adam steps per answer.

- Model: [`{model}`](https://huggingface.co/{model}) (set the Space variable `{env}` to serve another video LMM).
- Code: the [`vreason-hf`](https://pypi.org/project/vreason-hf/) package; this Space's `app.py` only calls
  `vreason_hf.app.build_app`.
- API: `gradio_client.Client("<this space>").predict(handle_file("clip.mp4"), "What happens?", api_name="/compare")`
  returns the plain answer, the V-Reason answer and the plot.
{examples}
Run it locally: `pip install -r requirements.txt && python app.py`.
"""


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError as error:
        raise ImportError(
            f"`vreason export-space` records the installed {name} version in the Space, but {name} is not "
            f"installed: install it with `pip install 'vreason-hf[app]'`."
        ) from error


def _check_model_id(model_id: str) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if Path(model_id).expanduser().is_dir():
        raise ValueError(
            f"`model_id` (CLI: `--model`) {model_id!r} is a local folder, which a Space cannot read: push it to the Hub "
            f"and pass its repo id (or set the Space variable {MODEL_ENV_VAR} after exporting)."
        )
    try:
        validate_repo_id(model_id)
    except HFValidationError as error:
        raise ValueError(
            f"`model_id` (CLI: `--model`) must be a Hub model id such as {DEFAULT_MODEL!r}: {error}"
        ) from None


def build_space_dir(
    out_dir: str | os.PathLike,
    *,
    model_id: str = DEFAULT_MODEL,
    examples: Sequence[str | os.PathLike] = (),
    vreason_config: VReasonConfig | dict[str, Any] | None = None,
    num_frames: int = 16,
    max_new_tokens: int = 256,
    concurrency_limit: int = 1,
    title: str = "V-Reason: plain vs. V-Reason decoding",
    requirement: str | None = None,
    overwrite: bool = False,
) -> Path:
    r"""
    Write a folder ready to push as a Hugging Face Space (Gradio SDK):

        out_dir/
        ├── README.md          # the Space's YAML header (sdk, app_file, title, models, tags, ...) and description
        ├── app.py             # build_app(...).launch(), the model overridable with the VREASON_MODEL variable
        ├── requirements.txt   # vreason-hf[app], pinned to the installed version
        └── examples/          # copies of the example clips

    Push it with `huggingface-cli upload <user>/<space> out_dir --repo-type space` (or git). Choose GPU hardware in
    the Space's settings for a real model.

    Args:
        out_dir (`str` or `os.PathLike`): the folder (created if missing).
        model_id (`str`, *optional*, defaults to `DEFAULT_MODEL`): Hub id of the video LMM to serve.
        examples (`Sequence[str | os.PathLike]`, *optional*): video files to bundle as example clips.
        vreason_config (`VReasonConfig` or `dict`, *optional*): the knobs' defaults in the app (only the ones that
            differ from `VReasonConfig()` are written).
        num_frames, max_new_tokens, concurrency_limit: as in [`build_app`].
        title (`str`, *optional*): the Space's title.
        requirement (`str`, *optional*): the line that installs vreason-hf in `requirements.txt`; defaults to
            `vreason-hf[app]==<installed version>` (pass e.g. a `git+https://...` URL for an unreleased version).
        overwrite (`bool`, *optional*, defaults to `False`): allow writing into a non-empty folder.

    Returns:
        `Path`: `out_dir`.
    """
    _check_model_id(model_id)
    config = (
        vreason_config
        if isinstance(vreason_config, VReasonConfig)
        else VReasonConfig(**(vreason_config or {}))
    )
    defaults = VReasonConfig().knobs()
    knobs = {name: value for name, value in config.knobs().items() if value != defaults[name]}
    clips = _check_space_args(num_frames, max_new_tokens, concurrency_limit, examples)
    names = [p.name for p in clips]
    gradio_version = _package_version("gradio")
    version = _package_version("vreason-hf")

    root = _check_out_dir(out_dir, overwrite)
    if requirement is None:
        requirement = _default_requirement(version)
    if clips:
        (root / "examples").mkdir(exist_ok=True)
        for clip in clips:
            shutil.copyfile(clip, root / "examples" / clip.name)
    (root / "app.py").write_text(
        _APP_PY.format(
            version=version,
            env=MODEL_ENV_VAR,
            model=model_id,
            examples=names,
            knobs=knobs or None,
            num_frames=num_frames,
            max_new_tokens=max_new_tokens,
            concurrency_limit=concurrency_limit,
        )
    )
    (root / "requirements.txt").write_text(requirement + "\n")
    _space_card(title, model_id, gradio_version, names).save(root / "README.md")
    logger.info("Wrote the Space folder %s.", root)
    return root


def _check_space_args(
    num_frames: int, max_new_tokens: int, concurrency_limit: int, examples: Sequence[str | os.PathLike]
) -> list[Path]:
    """Raise on a bad argument of [`build_space_dir`]; return the example clips as paths."""
    clips = check_app_args(num_frames, max_new_tokens, concurrency_limit, examples)
    names = [p.name for p in clips]
    if len(set(names)) != len(names):
        raise ValueError(f"Example clips must have different file names, got {names}.")
    return clips


def _default_requirement(version: str) -> str:
    """`vreason-hf[app]==<version>`, with a warning when PyPI cannot have that version."""
    if ".dev" in version or "+" in version:
        logger.warning(
            "vreason-hf %s is a development version that PyPI does not have: the Space will not build unless "
            "requirements.txt installs it some other way (`requirement=`, CLI: `--requirement`, e.g. a "
            "git+https:// URL).",
            version,
        )
    return f"vreason-hf[app]=={version}"


def _space_card(title: str, model_id: str, gradio_version: str, examples: list[str]) -> Any:
    from huggingface_hub import SpaceCard, SpaceCardData

    data = SpaceCardData(
        title=title,
        sdk="gradio",
        sdk_version=gradio_version,
        python_version="3.11",  # vreason-hf needs Python >= 3.11; Spaces default to an older one
        app_file="app.py",
        license="apache-2.0",
        models=[model_id],
        tags=["vreason", "video-text-to-text", "test-time-optimization", "entropy"],
        emoji="🎬",
        colorFrom="blue",
        colorTo="yellow",
        short_description="Plain vs. V-Reason decoding on video questions",
    )
    listed = "".join(f"\n- `examples/{name}`" for name in examples)
    example_text = f"\nExample clips:{listed}\n" if examples else ""
    body = _README_BODY.format(title=title, model=model_id, env=MODEL_ENV_VAR, examples=example_text)
    return SpaceCard(f"---\n{data.to_yaml()}\n---\n{body}")
