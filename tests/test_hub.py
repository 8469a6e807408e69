"""Hub surfaces from local folders, as a Hub user would call them, including from a process without vreason_hf."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file, save_file
from transformers import AutoConfig

from vreason_hf import (
    VReasonConfig,
    VReasonControllerModel,
    build_custom_generate_dir,
    save_vreason_model,
    vreason_generate,
)
from vreason_hf.controller import CONFIG_NAME, WEIGHTS_NAME
from vreason_hf.hub import MODEL_CARDS, SUPPORTED_TRANSFORMERS, knob_descriptions, render_model_card

KNOBS = {"lr": 0.2, "update_every": 1}
MAX_NEW = 16
QUESTION = "What is happening in this video?"


@pytest.fixture(scope="module")
def setup(tiny_qwen2_5_vl, video_inputs, real_clip):
    model, processor = tiny_qwen2_5_vl
    inputs = video_inputs(processor, real_clip, QUESTION)
    reference = model.generate(
        **inputs,
        max_new_tokens=MAX_NEW,
        do_sample=False,
        custom_generate=vreason_generate,
        vreason_config=KNOBS,
    )
    return model, processor, inputs, reference


def _run_without_vreason_hf(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run `script` in a fresh interpreter where `import vreason_hf` fails, offline."""
    prelude = "import sys\nsys.modules['vreason_hf'] = None  # this process cannot import the library\n"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )


# --------------------------------------------------------------------------------------------- config
def test_config_save_pretrained_writes_auto_map_and_code(tmp_path):
    VReasonConfig(lr=0.3, lite=True).save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["auto_map"] == {"AutoConfig": "configuration_vreason.VReasonConfig"}
    assert (tmp_path / "configuration_vreason.py").is_file()
    assert AutoConfig.from_pretrained(tmp_path).knobs() == VReasonConfig(lr=0.3, lite=True).knobs()


def test_invalid_value_in_config_json_names_the_field(tmp_path):
    VReasonConfig().save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    data["alpha_schedule"] = "sometimes"
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="`alpha_schedule`"):
        AutoConfig.from_pretrained(tmp_path, trust_remote_code=True)


def test_import_registration_is_idempotent():
    import importlib

    import vreason_hf

    importlib.reload(vreason_hf)
    assert AutoConfig.for_model("vreason").knobs() == VReasonConfig().knobs()


# --------------------------------------------------------------------------------------------- recipe
def test_recipe_folder_layout_and_string_path_equals_callable(setup, tmp_path):
    model, _, inputs, reference = setup
    root = build_custom_generate_dir(tmp_path / "recipe")
    code = root / "custom_generate"
    assert (root / "README.md").read_text() == (MODEL_CARDS / "custom_generate_recipe.md").read_text()
    assert (code / "requirements.txt").read_text().splitlines()[0] == SUPPORTED_TRANSFORMERS
    for path in code.glob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(from \.\.|from vreason_hf|import vreason_hf)", text, flags=re.M), (
            path.name
        )
        compile(text, str(path), "exec")
    out = model.generate(
        **inputs,
        max_new_tokens=MAX_NEW,
        do_sample=False,
        custom_generate=str(root),
        trust_remote_code=True,
        vreason_config=KNOBS,
    )
    assert torch.equal(out, reference)


def test_build_custom_generate_dir_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        build_custom_generate_dir(tmp_path)
    assert build_custom_generate_dir(tmp_path, overwrite=True) == tmp_path


# --------------------------------------------------------------------------------------------- model repos
def test_wrapper_round_trip_and_recipe_without_vreason_hf(setup, tmp_path):
    model, processor, inputs, reference = setup
    repo = save_vreason_model(model, tmp_path / "repo", KNOBS, processor=processor, repo_id="me/tiny-vreason")
    recipe = build_custom_generate_dir(tmp_path / "recipe")
    config = json.loads((repo / "config.json").read_text())
    assert config["model_type"] == "vreason" and config["base_config"]["model_type"] == "qwen2_5_vl"
    assert set(config["auto_map"]) == {
        "AutoConfig",
        "AutoModel",
        "AutoModelForImageTextToText",
        "AutoModelForCausalLM",
    }
    assert all(k.startswith("model.") for k in load_file(str(repo / "model.safetensors")))
    save_file(
        {k: v.contiguous() for k, v in inputs.items() if isinstance(v, torch.Tensor)}, str(tmp_path / "in.st")
    )
    plain = model.generate(**inputs, max_new_tokens=MAX_NEW, do_sample=False)

    result = _run_without_vreason_hf(
        f"""
        import json, torch
        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText, AutoProcessor
        try:
            import vreason_hf
            raise SystemExit("vreason_hf must not be importable here")
        except ImportError:
            pass
        inputs = load_file("in.st")
        kw = dict(max_new_tokens={MAX_NEW}, do_sample=False)
        config = AutoConfig.from_pretrained({str(repo)!r}, trust_remote_code=True)
        model = AutoModelForImageTextToText.from_pretrained({str(repo)!r}, trust_remote_code=True)
        also = AutoModel.from_pretrained({str(repo)!r}, trust_remote_code=True)
        AutoProcessor.from_pretrained({str(repo)!r}, trust_remote_code=True)
        out = dict(
            knobs={{k: getattr(config, k) for k in {sorted(KNOBS)!r}}},
            wrapper=model.generate(**inputs, **kw).tolist(),
            auto_model=also.generate(**inputs, **kw).tolist(),
            plain=model.generate(**inputs, vreason_config=None, **kw).tolist(),
            override=model.generate(**inputs, vreason_config={{"num_steps": 0}}, **kw).tolist(),
        )
        model.save_pretrained("resaved")
        again = AutoModelForImageTextToText.from_pretrained("resaved", trust_remote_code=True)
        out["resaved"] = again.generate(**inputs, **kw).tolist()
        base = AutoModelForImageTextToText.from_config(config.base_config)
        base.load_state_dict({{k[len("model."):]: v for k, v in model.state_dict().items()}})
        out["recipe"] = base.generate(**inputs, custom_generate={str(recipe)!r}, trust_remote_code=True,
                                      vreason_config={KNOBS!r}, **kw).tolist()
        json.dump(out, open("out.json", "w"))
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["knobs"] == KNOBS
    for key in ("wrapper", "auto_model", "resaved", "recipe"):
        assert out[key] == reference.tolist(), key
    assert out["plain"] == plain.tolist()
    assert out["override"] == plain.tolist()  # num_steps=0 is exactly the base model
    resaved = sorted(p.name for p in (tmp_path / "resaved").glob("*.py"))
    assert resaved == sorted(p.name for p in repo.glob("*.py"))


def test_wrapper_refuses_to_wrap_itself(setup, tmp_path):
    model, _, _, _ = setup
    from vreason_hf import VReasonForConditionalGeneration

    wrapper = VReasonForConditionalGeneration(
        VReasonConfig(base_config=model.config.to_dict()), base_model=model
    )
    with pytest.raises(ValueError, match="already a V-Reason model"):
        save_vreason_model(wrapper, tmp_path / "x")
    with pytest.raises(ValueError, match="base_config"):
        VReasonForConditionalGeneration(VReasonConfig())


# --------------------------------------------------------------------------------------------- controller adapter
def test_saved_controller_replays_the_generation_token_for_token(setup, tmp_path):
    model, _, inputs, _ = setup
    kwargs = {"max_new_tokens": MAX_NEW, "do_sample": False}
    out = model.generate(
        **inputs,
        custom_generate=vreason_generate,
        vreason_config=KNOBS,
        return_dict_in_generate=True,
        **kwargs,
    )
    VReasonControllerModel.from_generation(model, out, KNOBS).save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]
    loaded = VReasonControllerModel.from_pretrained(model, tmp_path)
    assert torch.equal(loaded.layer.state()["theta"], out.controller_state["theta"])
    replay = loaded.generate(**inputs, mode="replay", return_dict_in_generate=True, **kwargs)
    assert torch.equal(replay.sequences, out.sequences)
    assert torch.allclose(replay.controller_state["theta"], out.controller_state["theta"], atol=1e-6)

    plain = model.generate(**inputs, **kwargs)
    with loaded.disable_adapter():
        assert torch.equal(loaded.generate(**inputs, **kwargs), plain)
    static = loaded.generate(
        **inputs, mode="static", return_dict_in_generate=True, output_logits=True, **kwargs
    )
    base_logits = model.generate(**inputs, return_dict_in_generate=True, output_logits=True, **kwargs).logits[
        0
    ]
    assert not torch.allclose(static.logits[0], base_logits)  # the saved ΔV acts from token 0
    assert static.optimizer_steps.tolist() == out.optimizer_steps.tolist()  # static takes no new step


def test_controller_errors(setup, tmp_path):
    model, _, inputs, _ = setup
    with pytest.raises(FileNotFoundError, match=r"controller_config\.json"):
        VReasonControllerModel.from_pretrained(model, tmp_path)
    out = model.generate(
        **inputs,
        max_new_tokens=4,
        custom_generate=vreason_generate,
        vreason_config=KNOBS,
        return_dict_in_generate=True,
    )
    controller = VReasonControllerModel.from_generation(model, out, KNOBS)
    with pytest.raises(ValueError, match="`mode` must be one of"):
        controller.generate(**inputs, mode="train")
    controller.save_pretrained(tmp_path)
    data = json.loads((tmp_path / CONFIG_NAME).read_text())
    data["num_rows"] += 1
    (tmp_path / CONFIG_NAME).write_text(json.dumps(data))
    with pytest.raises(ValueError, match="do not belong together"):
        VReasonControllerModel.from_pretrained(model, tmp_path)


# --------------------------------------------------------------------------------------------- model cards
REQUIRED_SECTIONS = (
    "Description",
    "Base model",
    "Model compatibility",
    "Additional Arguments",
    "Output type changes",
    "Example usage",
    "Citation",
)


def _check_card(text: str) -> ModelCard:
    card = ModelCard(text)
    data = card.data.to_dict()
    assert "custom_generate" in data["tags"]
    assert data["library_name"] == "transformers" and data["pipeline_tag"] and data["license"]
    headings = re.findall(r"^## (.+)$", card.text, flags=re.M)
    assert list(REQUIRED_SECTIONS) == headings
    assert "More Information Needed" not in text and "$" not in card.text.split("```")[0]
    arguments = card.text.split("## Additional Arguments", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"^\| `(\w+)` \|", arguments, flags=re.M)
    assert named == VReasonConfig.knob_names()
    return card


def test_recipe_card_follows_the_convention_and_lists_exactly_the_knobs():
    _check_card((MODEL_CARDS / "custom_generate_recipe.md").read_text())
    defaults = {name: default for name, (default, _) in knob_descriptions().items()}
    assert {k: json.loads(v.replace("'", '"')) for k, v in defaults.items()} == VReasonConfig().knobs()


def test_rendered_model_card_of_a_wrapper_repo(tiny_qwen2_5_vl):
    model, _ = tiny_qwen2_5_vl
    config = VReasonConfig(base_config=model.config.to_dict(), **KNOBS)
    card = _check_card(render_model_card(config, base_model="Qwen/Qwen2.5-VL-7B-Instruct"))
    assert card.data.to_dict()["base_model"] == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert "| `lr` | `0.2` |" in card.text
