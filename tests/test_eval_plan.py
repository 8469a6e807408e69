"""`vreason_hf.eval.plan`: the checks `evaluate` runs before it reads a file or loads anything."""

from __future__ import annotations

import pytest

from vreason_hf import VReasonConfig
from vreason_hf.eval.plan import check_arguments
from vreason_hf.inputs import DEFAULT_FPS, DEFAULT_MAX_FRAMES

GOOD = {
    "modes": ("base", "vreason"),
    "vreason_config": None,
    "num_frames": None,
    "fps": None,
    "max_frames": None,
    "video_backend": "auto",
    "limit": None,
    "batch_size": 1,
}


def test_good_arguments_give_each_modes_config_and_video_r1s_frame_sampling():
    configs, frames = check_arguments(**{**GOOD, "modes": ("base", "lite"), "vreason_config": {"lr": 0.1}})
    assert list(configs) == ["base", "lite"]  # the order given
    assert configs["lite"].lite and not configs["base"].lite and configs["lite"].lr == 0.1
    assert frames == {
        "num_frames": None,
        "fps": DEFAULT_FPS,
        "max_frames": DEFAULT_MAX_FRAMES,
        "video_backend": "auto",
    }


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"modes": ()}, r"`modes` must be a non-empty sequence of distinct modes, got \(\)"),
        ({"modes": ("base", "base")}, r"distinct modes, got \('base', 'base'\)"),
        ({"modes": ("greedy",)}, r"Unknown mode 'greedy'; the modes are: base, vreason, lite"),
        ({"vreason_config": VReasonConfig(lite=True)}, r"Mode 'vreason' was asked for with `lite=True`"),
        ({"num_frames": 8, "fps": 2.0}, r"`num_frames` and `fps` are mutually exclusive"),
        ({"limit": -1}, r"`limit` must be a non-negative integer or None, got -1"),
        ({"limit": True}, r"`limit` must be a non-negative integer or None, got True"),
        ({"batch_size": 0}, r"`batch_size` must be a positive integer, got 0"),
        ({"batch_size": 2.0}, r"`batch_size` must be a positive integer, got 2\.0"),
    ],
)
def test_bad_arguments_name_the_argument(change, match):
    with pytest.raises(ValueError, match=match):
        check_arguments(**{**GOOD, **change})
