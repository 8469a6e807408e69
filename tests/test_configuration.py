"""`VReasonConfig`: SPEC defaults, validation of every knob where it enters, and save/load round trips."""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import subprocess
import sys

import pytest

import vreason_hf.knobs
from vreason_hf.configuration_vreason import VReasonConfig
from vreason_hf.generation.engine import as_vreason_config
from vreason_hf.knobs import knob_fields

# SPEC.md sections 2-5: the documented defaults.
SPEC_DEFAULTS = {
    "update_every": 2,
    "num_steps": 1,
    "ema_beta": 0.97,
    "adam_beta1": 0.9,
    "adam_beta2": 0.999,
    "alpha_schedule": "switch",
    "kl_direction": "p_u",
    "ema_init": "zero",
    "controller_scope": "video",
    "decode_after_update": True,
    "lite": False,
    "prune_ratio": 0.5,
    "prune_scope": "per_layer",
    "target_layer": -1,
}

# At least one invalid value for every knob: wrong type, out of range, non-finite, unknown choice.
BAD_VALUES: dict[str, list[object]] = {
    "update_every": [0, -1, 1.5, True, "2", None],
    "num_steps": [-1, 1.0, True, None],
    "lr": [-0.1, -1, math.nan, math.inf, "0.1", True, None],
    "lr_scale": ["rms", "", None],
    "ema_beta": [1.0, -0.1, 1.5, math.nan, True, "0.9"],
    "ema_init": ["one", "Zero", None],
    "alpha_schedule": ["bogus", "Switch", "min", None],
    "kl_direction": ["pu", "q_u", None],
    "adam_beta1": [1.0, -0.1, math.nan, None],
    "adam_beta2": [1.0, 1.1, -1e-3, None],
    "adam_eps": [0, 0.0, -1e-8, math.inf, None],
    "controller_scope": ["audio", "Video", None],
    "target_layer": [1.5, "-1", True, None],
    "decode_after_update": [1, 0, "yes", None],
    "lite": [1, "true", None],
    "prune_ratio": [1.0, -0.1, 1.5, math.nan, "0.5", None],
    "prune_scope": ["global", None],
}
BAD_CASES = [(field, value) for field, values in BAD_VALUES.items() for value in values]

# One valid, non-default value for every knob.
NON_DEFAULTS = {
    "update_every": 3,
    "num_steps": 2,
    "lr": 0.125,
    "lr_scale": "absolute",
    "ema_beta": 0.5,
    "ema_init": "first",
    "alpha_schedule": "minimize",
    "kl_direction": "u_p",
    "adam_beta1": 0.8,
    "adam_beta2": 0.99,
    "adam_eps": 1e-6,
    "controller_scope": "prompt",
    "target_layer": -2,
    "decode_after_update": False,
    "lite": True,
    "prune_ratio": 0.25,
    "prune_scope": "shared",
}


def test_defaults_match_spec():
    knobs = VReasonConfig().knobs()
    assert {name: knobs[name] for name in SPEC_DEFAULTS} == SPEC_DEFAULTS
    assert knobs["lr"] > 0  # V-Reason is on by default


def test_every_knob_has_invalid_values_and_a_non_default():
    """Guards the parametrisations below: a new knob must come with its validation tests."""
    names = VReasonConfig.knob_names()
    assert set(BAD_VALUES) == set(names)
    assert set(NON_DEFAULTS) == set(names)
    defaults = VReasonConfig().knobs()
    assert all(NON_DEFAULTS[name] != defaults[name] for name in names)


# ------------------------------------------------------------------------------------- fields carry their help
def test_the_ast_view_of_the_knobs_equals_the_dataclass_fields():
    runtime = [
        (f.name, f.type, f.default, f.metadata["help"], f.metadata.get("choices"))
        for f in dataclasses.fields(VReasonConfig)
        if f.name in VReasonConfig.knob_names()
    ]
    assert [(k.name, k.type, k.default, k.help, k.choices) for k in knob_fields()] == runtime
    assert [name for name, *_ in runtime] == VReasonConfig.knob_names()


def test_string_knobs_accept_exactly_their_choices():
    for knob in knob_fields():
        assert (knob.type == "str") == (knob.choices is not None), knob.name
        if knob.choices is not None:
            assert knob.default in knob.choices
            for choice in knob.choices:
                assert getattr(VReasonConfig(**{knob.name: choice}), knob.name) == choice
            with pytest.raises(ValueError, match=f"`{knob.name}` must be one of"):
                VReasonConfig(**{knob.name: knob.choices[0].upper() + "!"})


def test_the_docstring_documents_every_knob_with_its_help_text():
    doc = " ".join(inspect.getdoc(VReasonConfig).split())
    for knob in knob_fields():
        assert f"{knob.name} (`{knob.type}`, *optional*, defaults to " in doc
        assert " ".join(knob.help.split()) in doc


def test_the_knob_view_imports_neither_torch_nor_transformers():
    code = (
        "import importlib.util, sys\n"
        "for name in ('torch', 'transformers', 'vreason_hf'):\n"
        "    sys.modules[name] = None\n"
        f"spec = importlib.util.spec_from_file_location('knobs', {vreason_hf.knobs.__file__!r})\n"
        "knobs = sys.modules['knobs'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(knobs)\n"
        "print(len(knobs.knob_fields()), len(knobs.knob_table().splitlines()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    count = len(VReasonConfig.knob_names())
    assert out.split() == [str(count), str(count + 2)]


@pytest.mark.parametrize(("field", "value"), BAD_CASES, ids=[f"{f}={v!r}" for f, v in BAD_CASES])
def test_invalid_value_raises_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"`{field}`"):
        VReasonConfig(**{field: value})


@pytest.mark.parametrize(("field", "value"), BAD_CASES, ids=[f"{f}={v!r}" for f, v in BAD_CASES])
def test_invalid_value_error_shows_what_was_received(field, value):
    with pytest.raises(ValueError, match=r"got .+\.$") as info:
        VReasonConfig(**{field: value})
    assert repr(value) in str(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("update_every", 1),
        ("num_steps", 0),
        ("lr", 0),
        ("lr", 0.0),
        ("ema_beta", 0.0),
        ("adam_beta1", 0.0),
        ("adam_eps", 1e-12),
        ("prune_ratio", 0.0),
        ("prune_ratio", 0.99),
        ("target_layer", 0),
    ],
)
def test_boundary_values_are_accepted(field, value):
    assert getattr(VReasonConfig(**{field: value}), field) == value


def test_non_default_values_are_accepted():
    assert VReasonConfig(**NON_DEFAULTS).knobs() == NON_DEFAULTS


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [
        ("update_evry", "update_every"),
        ("ema_bta", "ema_beta"),
        ("alpha_shedule", "alpha_schedule"),
        ("prune_rato", "prune_ratio"),
        ("lr_sclae", "lr_scale"),
    ],
)
def test_typo_raises_with_did_you_mean(typo, suggestion):
    with pytest.raises(TypeError, match=rf"`{typo}` \(did you mean `{suggestion}`\?\)"):
        VReasonConfig(**{typo: 1})


def test_unknown_key_raises_and_lists_valid_knobs():
    with pytest.raises(
        TypeError, match=r"unknown argument\(s\) `completely_unrelated`\. Valid knobs: update_every"
    ):
        VReasonConfig(completely_unrelated=1)


def test_save_load_round_trip_preserves_knobs(tmp_path):
    config = VReasonConfig(**NON_DEFAULTS)
    config.save_pretrained(tmp_path)
    loaded = VReasonConfig.from_pretrained(tmp_path)
    assert loaded.knobs() == config.knobs() == NON_DEFAULTS
    assert type(loaded.knobs()["update_every"]) is int
    assert type(loaded.knobs()["lite"]) is bool


def test_save_load_round_trip_of_defaults(tmp_path):
    VReasonConfig().save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "vreason"
    assert VReasonConfig.from_pretrained(tmp_path).knobs() == VReasonConfig().knobs()


def _edit_config_json(folder, **changes):
    path = folder / "config.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("field", "value"),
    [("lr", -1), ("alpha_schedule", "bogus"), ("update_every", 0), ("prune_ratio", 1.0), ("lite", "yes")],
)
def test_hand_edited_invalid_config_json_fails_on_load(tmp_path, field, value):
    VReasonConfig().save_pretrained(tmp_path)
    _edit_config_json(tmp_path, **{field: value})
    with pytest.raises(ValueError, match=f"`{field}`"):
        VReasonConfig.from_pretrained(tmp_path)


def test_hand_edited_typo_in_config_json_fails_on_load(tmp_path):
    VReasonConfig().save_pretrained(tmp_path)
    _edit_config_json(tmp_path, ema_bta=0.5)
    with pytest.raises(TypeError, match=r"`ema_bta` \(did you mean `ema_beta`\?\)"):
        VReasonConfig.from_pretrained(tmp_path)


def test_from_pretrained_kwarg_overrides_are_validated(tmp_path):
    VReasonConfig().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="`lr`"):
        VReasonConfig.from_pretrained(tmp_path, lr=-1)


def test_from_pretrained_kwarg_typo_raises(tmp_path):
    VReasonConfig().save_pretrained(tmp_path)
    with pytest.raises(TypeError, match="did you mean `lr_scale`"):
        VReasonConfig.from_pretrained(tmp_path, lr_sclae=1.0)


def test_to_dict_from_dict_round_trip():
    config = VReasonConfig(**NON_DEFAULTS)
    assert VReasonConfig.from_dict(config.to_dict()).knobs() == NON_DEFAULTS


def test_save_pretrained_refuses_an_invalid_knob_assigned_later(tmp_path):
    config = VReasonConfig()
    with pytest.raises(ValueError, match=r"`lr` must be >= 0, got -1\.0"):
        config.lr = -1.0  # refused on assignment (test_knobs_are_validated_on_assignment) ...
    config.__dict__["lr"] = -1.0  # ... and caught at save time if it gets in around `__setattr__`
    with pytest.raises(ValueError, match="`lr`"):
        config.save_pretrained(tmp_path)


def test_from_pretrained_valid_kwarg_override(tmp_path):
    VReasonConfig(lr=0.1).save_pretrained(tmp_path)
    assert VReasonConfig.from_pretrained(tmp_path, lr=0.2).lr == 0.2


def test_as_vreason_config_none_gives_defaults():
    assert as_vreason_config(None).knobs() == VReasonConfig().knobs()


def test_as_vreason_config_passes_a_config_through():
    config = VReasonConfig(lr=0.2)
    assert as_vreason_config(config) is config


def test_as_vreason_config_builds_from_a_dict():
    config = as_vreason_config({"lr": 0.2, "alpha_schedule": "maximize"})
    assert isinstance(config, VReasonConfig)
    assert config.lr == 0.2 and config.alpha_schedule == "maximize"
    assert config.update_every == SPEC_DEFAULTS["update_every"]


def test_as_vreason_config_validates_dicts():
    with pytest.raises(ValueError, match="`lr`"):
        as_vreason_config({"lr": -1.0})
    with pytest.raises(TypeError, match="did you mean `num_steps`"):
        as_vreason_config({"num_step": 2})


@pytest.mark.parametrize("value", [[("lr", 0.1)], "lr=0.1", 0.1, ("lr",), object()])
def test_as_vreason_config_rejects_other_types(value):
    with pytest.raises(TypeError, match="`vreason_config` must be a VReasonConfig"):
        as_vreason_config(value)


@pytest.mark.parametrize(
    ("knobs", "enabled"),
    [
        ({}, True),
        ({"num_steps": 0}, False),
        ({"lr": 0}, False),
        ({"lr": 0.0}, False),
        ({"num_steps": 0, "lr": 0.0}, False),
        ({"num_steps": 3, "lr": 1e-6}, True),
    ],
)
def test_enabled(knobs, enabled):
    assert VReasonConfig(**knobs).enabled is enabled


# ------------------------------------------------------------------------------------- knobs by assignment


@pytest.mark.parametrize(
    ("knob", "value", "why"),
    [
        ("lr", -1, "must be >= 0"),
        ("lr", math.nan, "must be a finite number"),
        ("num_steps", -2, r"must be >= 0 \(0 disables V-Reason\)"),
        ("update_every", 0, r"must be >= 1 \(1 = optimise at every generated token\)"),
        ("ema_beta", 1.0, r"must be in \[0, 1\)"),
        ("controller_scope", "audio", "must be one of 'video', 'visual', 'prompt'"),
        ("lite", 1, "must be True or False"),
    ],
)
def test_knobs_are_validated_on_assignment(knob, value, why):
    config = VReasonConfig()
    default = getattr(config, knob)
    with pytest.raises(ValueError, match=rf"`{knob}` {why}, got {value!r}"):
        setattr(config, knob, value)
    assert getattr(config, knob) == default  # the bad value never got in


def test_an_unknown_knob_on_assignment_says_did_you_mean(tmp_path):
    config = VReasonConfig()
    with pytest.raises(AttributeError, match=r"no knob `update_evry` \(did you mean `update_every`\?\)"):
        config.update_evry = 3
    config.save_pretrained(tmp_path)
    assert VReasonConfig.from_pretrained(tmp_path).knobs() == VReasonConfig().knobs()  # still loads


def test_transformers_attributes_and_private_names_still_assign_and_round_trip(tmp_path):
    config = VReasonConfig(lr=0.2)
    config._scratch = 1  # private: anything goes
    config.architectures = ["VReasonForConditionalGeneration"]
    config.name_or_path = "somewhere"
    config.use_cache = False  # set on model configs by transformers
    config.update_every = 3
    config.save_pretrained(tmp_path)
    loaded = VReasonConfig.from_pretrained(tmp_path)
    assert loaded.knobs() == config.knobs() and loaded.architectures == config.architectures
    assert VReasonConfig.from_dict(config.to_dict()).knobs() == config.knobs()


def test_a_sub_config_of_the_wrong_type_names_it():
    # Generic over `sub_configs_defaults` (today `base_config`): a bad value is a TypeError naming it.
    with pytest.raises(TypeError, match="`base_config`"):
        VReasonConfig(base_config=5)
    config = VReasonConfig()
    with pytest.raises((TypeError, AttributeError), match="`base_config`"):
        config.base_config = 5


# --------------------------------------------------------------------- a config from another copy of the code


def test_config_from_another_copy_of_the_code_is_accepted():
    """A Hub repo's remote code has its own VReasonConfig class; the loop takes it by its knobs."""

    class OtherCopy:
        model_type = "vreason"

        def knobs(self):
            return {"lr": 0.3, "update_every": 3}

    assert as_vreason_config(OtherCopy()).knobs() == VReasonConfig(lr=0.3, update_every=3).knobs()
