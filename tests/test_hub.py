"""Hub surfaces from local folders, as a Hub user would call them, including from a process without vreason_hf."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText

import vreason_hf.hub
from vreason_hf import (
    VReasonConfig,
    build_custom_generate_dir,
    save_vreason_model,
    vreason_generate,
)
from vreason_hf.cards import render_recipe_card
from vreason_hf.hub import SUPPORTED_TRANSFORMERS, requirements_text
from vreason_hf.testing import build_tiny_llama

KNOBS = {"lr": 0.2, "update_every": 1}
OVERRIDE = {"update_every": 2}  # on top of KNOBS
REPLACE = {"lr": 0.3, "update_every": 3}  # as a VReasonConfig: replaces KNOBS
MAX_NEW = 12
QUESTION = "What is happening in this video?"
BASE_LICENSE = "mit"  # the base card's license, which a repo's card inherits


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


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory, tiny_qwen2_5_vl) -> Path:
    """A local model folder as on the Hub: weights, config, processor files, generation config and a card."""
    model, processor = tiny_qwen2_5_vl
    path = tmp_path_factory.mktemp("base")
    model.save_pretrained(path)
    processor.save_pretrained(path)
    (path / "README.md").write_text(
        f"---\nlicense: {BASE_LICENSE}\nlibrary_name: transformers\n---\n# Base\n"
    )
    return path


@pytest.fixture(scope="module")
def repo(tmp_path_factory, base_dir) -> Path:
    return save_vreason_model(
        base_dir, tmp_path_factory.mktemp("hub") / "repo", KNOBS, base_model="org/tiny-vl"
    )


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


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
    assert (root / "README.md").read_text() == render_recipe_card()
    assert (code / "requirements.txt").read_text().splitlines() == [*SUPPORTED_TRANSFORMERS, "torch"]
    for path in code.glob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(from \.\.|from vreason_hf|import vreason_hf)", text, flags=re.M), (
            path.name
        )
        compile(text, str(path), "exec")
    kwargs = {
        "max_new_tokens": MAX_NEW,
        "do_sample": False,
        "custom_generate": str(root),
        "trust_remote_code": True,
    }
    assert torch.equal(model.generate(**inputs, vreason_config=KNOBS, **kwargs), reference)
    # `None` is plain decoding, as for model repos (it used to mean the defaults).
    plain = model.generate(**inputs, max_new_tokens=MAX_NEW, do_sample=False)
    assert torch.equal(model.generate(**inputs, vreason_config=None, **kwargs), plain)


def test_build_custom_generate_dir_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        build_custom_generate_dir(tmp_path)
    assert build_custom_generate_dir(tmp_path, overwrite=True) == tmp_path


def test_requirements_one_specifier_per_line_and_a_range_excluding_transformers_is_refused(
    setup, base_dir, tmp_path, monkeypatch
):
    with pytest.raises(ValueError, match=r"several version specifiers.*each on its own line"):
        requirements_text(("transformers>=5.24,<5.25",))
    # The upper bound, on its own line, is enforced when the model is loaded.
    monkeypatch.setattr(vreason_hf.hub, "RECIPE_REQUIREMENTS", ("transformers>=5.0", "transformers<5.24"))
    repo = save_vreason_model(base_dir, tmp_path / "excluded", KNOBS)
    assert (
        repo / "custom_generate" / "requirements.txt"
    ).read_text() == "transformers>=5.0\ntransformers<5.24\n"
    with pytest.raises(ImportError, match=r"transformers<5\.24 \(installed: 5\.24"):
        AutoModelForImageTextToText.from_pretrained(repo, trust_remote_code=True)
    assert (
        AutoModelForImageTextToText.from_pretrained(repo) is not None
    )  # without remote code: the base model


# --------------------------------------------------------------------------------------------- model repos
def test_model_repo_is_the_base_repo_plus_the_recipe(base_dir, repo, tmp_path):
    base, ours = _digests(base_dir), _digests(repo)
    recipe = _digests(build_custom_generate_dir(tmp_path / "recipe"))
    changed = {"README.md", "generation_config.json"}
    # The base's files, byte for byte (weights under their own key names, config.json with its model_type).
    assert {k: v for k, v in ours.items() if k in base and k not in changed} == {
        k: v for k, v in base.items() if k not in changed
    }
    # The recipe, made by the same code as `build_custom_generate_dir`, and nothing else.
    assert {k: v for k, v in ours.items() if k not in base} == {
        k: v for k, v in recipe.items() if k != "README.md"
    }
    # The knobs: the base's generation config plus the `vreason` entry (all knobs, validated).
    data = json.loads((repo / "generation_config.json").read_text())
    expected = json.loads((base_dir / "generation_config.json").read_text())
    expected.pop("_from_model_config")  # would make GenerationConfig drop the entry; no other effect in 5.24
    assert data == {**expected, "vreason": VReasonConfig(**KNOBS).knobs()}
    size = sum((repo / k).stat().st_size for k in ours) - sum((base_dir / k).stat().st_size for k in base)
    assert size < 1_000_000


def test_plain_loading_is_the_base_model_without_warnings(transformers_log, setup, repo):
    _, _, inputs, _ = setup
    with transformers_log() as messages, warnings.catch_warnings():
        warnings.simplefilter("error")
        model = AutoModelForImageTextToText.from_pretrained(repo)
        out = model.generate(**inputs, max_new_tokens=MAX_NEW, do_sample=False)
    assert not messages
    base_model, _, _, _ = setup
    assert torch.equal(out, base_model.generate(**inputs, max_new_tokens=MAX_NEW, do_sample=False))
    assert model.generation_config.vreason == VReasonConfig(**KNOBS).knobs()
    with pytest.raises(ValueError, match=r"not used by the model: \['vreason_config'\]"):
        model.generate(**inputs, max_new_tokens=1, vreason_config=KNOBS)  # no silent plain decoding


def test_model_repo_routes_without_vreason_hf(setup, base_dir, repo, tmp_path):
    """Every class and pipeline loads the exact base weights; the remote `generate` gives the callable's tokens."""
    model, processor, inputs, reference = setup
    kw = {"max_new_tokens": MAX_NEW, "do_sample": False}
    expected = {
        "plain": model.generate(**inputs, **kw),
        "override": model.generate(
            **inputs, custom_generate=vreason_generate, vreason_config={**KNOBS, **OVERRIDE}, **kw
        ),
        "replace": model.generate(**inputs, custom_generate=vreason_generate, vreason_config=REPLACE, **kw),
    }
    chat_frames = np.stack([np.full((56, 56, 3), 40 * i, dtype=np.uint8) for i in range(4)])
    chat = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": QUESTION}]}]
    chat_inputs = processor.apply_chat_template(
        [{**chat[0], "content": [{"type": "video", "video": chat_frames}, chat[0]["content"][1]]}],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
    )
    chat_tokens = model.generate(**chat_inputs, custom_generate=vreason_generate, vreason_config=KNOBS, **kw)
    expected["any_to_any"] = chat_tokens[0, chat_inputs["input_ids"].shape[1] :]
    np.save(tmp_path / "frames.npy", chat_frames)
    VReasonConfig(**REPLACE).save_pretrained(tmp_path / "replace_config")
    recipe = build_custom_generate_dir(tmp_path / "recipe")
    save_file({k: v.contiguous() for k, v in inputs.items()}, str(tmp_path / "in.st"))

    result = _run_without_vreason_hf(
        f"""
        import json, numpy as np, torch
        from PIL import Image
        from safetensors.torch import load_file
        from transformers import (AutoConfig, AutoModel, AutoModelForImageTextToText, AutoModelForMultimodalLM,
                                  Qwen2_5_VLForConditionalGeneration, pipeline)
        try:
            import vreason_hf
            raise SystemExit("vreason_hf must not be importable here")
        except ImportError:
            pass
        base, repo = {str(base_dir)!r}, {str(repo)!r}
        inputs = load_file("in.st")
        kw = dict(max_new_tokens={MAX_NEW}, do_sample=False)
        out = {{"loading": {{}}, "weights_equal": {{}}}}

        def same_weights(a, b):
            sa, sb = a.state_dict(), b.state_dict()
            return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)

        for cls in (AutoModel, AutoModelForImageTextToText, AutoModelForMultimodalLM,
                    Qwen2_5_VLForConditionalGeneration):
            model, info = cls.from_pretrained(repo, trust_remote_code=True, output_loading_info=True)
            reference = cls.from_pretrained(base)
            out["loading"][cls.__name__] = {{k: sorted(v) for k, v in info.items()}}
            out["weights_equal"][cls.__name__] = same_weights(model, reference)
        out["concrete"] = model.generate(**inputs, **kw).tolist()

        model = AutoModelForImageTextToText.from_pretrained(repo, trust_remote_code=True)
        streamed = []
        class Streamer:
            def put(self, value): streamed.append(value)
            def end(self): pass
        out["repo_knobs"] = model.generate(**inputs, streamer=Streamer(), **kw).tolist()
        out["streamed"] = torch.cat(streamed[1:]).tolist()
        rest = dict(inputs)
        out["positional"] = model.generate(rest.pop("input_ids"), **rest, **kw).tolist()
        out["override"] = model.generate(**inputs, vreason_config={OVERRIDE!r}, **kw).tolist()
        config = AutoConfig.from_pretrained("replace_config", trust_remote_code=True)
        out["replace"] = model.generate(**inputs, vreason_config=config, **kw).tolist()
        out["none"] = model.generate(**inputs, vreason_config=None, **kw).tolist()
        out["zero_steps"] = model.generate(**inputs, vreason_config={{"num_steps": 0}}, **kw).tolist()
        model.generation_config.vreason = {{**model.generation_config.vreason, **{OVERRIDE!r}}}
        out["edited_knobs"] = model.generate(**inputs, **kw).tolist()

        plain = AutoModelForImageTextToText.from_pretrained(base)
        out["recipe"] = plain.generate(**inputs, custom_generate={str(recipe)!r}, trust_remote_code=True,
                                       vreason_config={KNOBS!r}, **kw).tolist()

        image = Image.fromarray(np.random.RandomState(0).randint(0, 255, (56, 56, 3), dtype=np.uint8))
        image_chat = [{{"role": "user", "content": [{{"type": "image", "image": image}},
                                                    {{"type": "text", "text": "What is this?"}}]}}]
        answers = []
        for folder in (base, repo):
            pipe = pipeline("image-text-to-text", model=folder)
            answers.append(pipe(text=image_chat, return_full_text=False, **kw)[0]["generated_text"])
            out["weights_equal"]["image-text-to-text " + folder] = same_weights(pipe.model, reference)
        out["image_pipeline_equal"] = answers[0] == answers[1]
        pipe = pipeline("any-to-any", model=repo, trust_remote_code=True)
        out["weights_equal"]["any-to-any"] = same_weights(pipe.model, reference)
        video_chat = {chat!r}
        video_chat[0]["content"][0]["video"] = np.load("frames.npy")
        answer = pipe(text=video_chat, return_full_text=False, **kw)[0]["generated_text"]
        out["any_to_any"] = answer
        json.dump(out, open("out.json", "w"))
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    assert all(out["weights_equal"].values()), out["weights_equal"]
    for name, info in out["loading"].items():
        assert info["missing_keys"] == info["mismatched_keys"] == info["error_msgs"] == [], name
        # The head-less backbone skips the LM head; every class that generates uses every tensor.
        assert info["unexpected_keys"] == (["lm_head.weight"] if name == "AutoModel" else []), name
    for key in ("concrete", "repo_knobs", "positional", "recipe"):
        assert out[key] == reference.tolist(), key
    assert out["streamed"] == reference[0, inputs["input_ids"].shape[1] :].tolist()
    for key in ("none", "zero_steps"):
        assert out[key] == expected["plain"].tolist(), key
    assert out["override"] == out["edited_knobs"] == expected["override"].tolist()
    assert out["replace"] == expected["replace"].tolist()
    assert expected["override"].tolist() != reference.tolist() != expected["plain"].tolist()
    assert out["image_pipeline_equal"]
    assert out["any_to_any"] == processor.decode(expected["any_to_any"], skip_special_tokens=True)


def test_model_repo_from_a_model_object_of_a_text_model(tmp_path, check_card):
    model, tokenizer = build_tiny_llama()
    knobs = {"controller_scope": "prompt", "lr": 0.3, "update_every": 1}
    with pytest.raises(ValueError, match=r'no video tokens.*"controller_scope": "prompt"'):
        save_vreason_model(model, tmp_path / "default", overwrite=True)
    assert not (tmp_path / "default").exists()  # checked before anything is written
    repo = save_vreason_model(model, tmp_path / "repo", knobs, processor=tokenizer)
    (repo / "generation_config.json").unlink()  # a base without one: created from config.json
    save_vreason_model(repo, tmp_path / "again", knobs)
    card = check_card((tmp_path / "again" / "README.md").read_text())
    assert card.data.pipeline_tag == "text-generation" and "video" not in card.data.tags
    assert "AutoModelForCausalLM.from_pretrained" in card.text
    inputs = tokenizer("Two plus two is", return_tensors="pt")
    kw = {"max_new_tokens": MAX_NEW, "do_sample": False}
    reference = model.generate(**inputs, custom_generate=vreason_generate, vreason_config=knobs, **kw)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "again", trust_remote_code=True)
    assert torch.equal(loaded.generate(**inputs, **kw), reference)
    assert not torch.equal(reference, model.generate(**inputs, **kw))
    # Plain decoding sees the generation config transformers derives for the base (which has none), plus the knobs.
    derived = AutoModelForCausalLM.from_pretrained(repo).generation_config
    stored = loaded.generation_config
    assert stored.vreason == VReasonConfig(**knobs).knobs()
    del stored.vreason
    assert stored.to_json_string(ignore_metadata=True) == derived.to_json_string(ignore_metadata=True)


def test_hub_id_route_and_card_fields(base_dir, tmp_path, monkeypatch, caplog, check_card):
    """A Hub id is downloaded (here: found in a local Hub cache, offline) and named as the card's `base_model`."""
    import huggingface_hub.constants

    revision = "0" * 40
    snapshot = tmp_path / "cache" / "models--org--tiny-vl" / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for path in base_dir.iterdir():
        (snapshot / path.name).symlink_to(path)  # a Hub cache snapshot links to its blobs
    (tmp_path / "cache" / "models--org--tiny-vl" / "refs").mkdir()
    (tmp_path / "cache" / "models--org--tiny-vl" / "refs" / "main").write_text(revision)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))

    from_id = save_vreason_model("org/tiny-vl", tmp_path / "from_id", KNOBS, license="apache-2.0")
    assert _digests(from_id) == _digests(save_vreason_model(base_dir, tmp_path / "from_folder", KNOBS)) | {
        "README.md": _digests(from_id)["README.md"]
    }
    card = check_card((from_id / "README.md").read_text())
    assert card.data.base_model == "org/tiny-vl" and card.data.license == "apache-2.0"

    model = AutoModelForImageTextToText.from_pretrained(
        "org/tiny-vl", cache_dir=tmp_path / "cache"
    )  # offline
    card = check_card((save_vreason_model(model, tmp_path / "from_object", KNOBS) / "README.md").read_text())
    assert card.data.base_model == "org/tiny-vl" and card.data.license == BASE_LICENSE

    local = AutoModelForImageTextToText.from_pretrained(base_dir)
    with caplog.at_level(logging.WARNING, logger="vreason_hf.hub"):
        card = check_card((save_vreason_model(local, tmp_path / "local", KNOBS) / "README.md").read_text())
    assert card.data.base_model is None and card.data.license == BASE_LICENSE
    assert str(base_dir) not in card.content and "Qwen2_5_VLForConditionalGeneration" not in str(card.data)
    assert "Pass `base_model=`" in caplog.text


def test_save_vreason_model_errors(setup, base_dir, tmp_path):
    model, _, _, _ = setup
    with pytest.raises(ValueError, match="must not be `base_model_or_path` or inside it"):
        save_vreason_model(base_dir, base_dir / "inside", KNOBS)
    with pytest.raises(FileNotFoundError, match="neither a local folder nor a Hub model id"):
        save_vreason_model(str(tmp_path / "missing" / "x" / "y"), tmp_path / "out", KNOBS)
    with pytest.raises(FileNotFoundError, match=r"has no `config\.json`"):
        save_vreason_model(tmp_path, tmp_path.parent / f"{tmp_path.name}-out", KNOBS)
    with pytest.raises(ValueError, match=r"`base_model` '\./base' is not a Hub model id"):
        save_vreason_model(base_dir, tmp_path / "out", KNOBS, base_model="./base")
    with pytest.raises(TypeError, match="no language-model head"):
        save_vreason_model(model.model, tmp_path / "out", KNOBS)
    with pytest.raises(TypeError, match=r"unknown argument\(s\) `lrr`"):
        save_vreason_model(base_dir, tmp_path / "out", {"lrr": 0.1})
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_vreason_model(base_dir, tmp_path / "full", KNOBS)


def test_invalid_stored_knobs_name_the_generation_config(setup, repo, tmp_path):
    _, _, inputs, _ = setup
    model = AutoModelForImageTextToText.from_pretrained(repo, trust_remote_code=True)
    model.generation_config.vreason = {"lr": -1.0}
    with pytest.raises(ValueError, match=r"generation_config\.json`, entry `vreason`\).*`lr` must be >= 0"):
        model.generate(**inputs, max_new_tokens=1)
    model.generation_config.vreason = KNOBS
    with pytest.raises(ValueError, match="pass `vreason_config=None` to decode with another loop"):
        model.generate(**inputs, max_new_tokens=1, vreason_config={}, custom_generate=vreason_generate)


def test_model_repo_card(repo, check_card):
    card = check_card((repo / "README.md").read_text())
    data = card.data.to_dict()
    assert data["base_model"] == "org/tiny-vl" and data["license"] == BASE_LICENSE
    assert data["pipeline_tag"] == "video-text-to-text" and "video" in data["tags"]
    values = dict(
        re.findall(r"^\| `(\w+)` \| `(.+?)` \|", card.text.split("## Additional Arguments")[1], re.M)
    )
    assert {k: json.loads(v) for k, v in values.items()} == VReasonConfig(**KNOBS).knobs()
    assert "Without `trust_remote_code=True` the model is the base model and decodes plainly" in card.text
    assert f'AutoModelForImageTextToText.from_pretrained("{repo}", trust_remote_code=True' in card.text
