"""Model cards: the recipe's card and a V-Reason model repo's card, rendered from the templates and the knobs."""

from __future__ import annotations

import json
import logging
import re

from vreason_hf import VReasonConfig
from vreason_hf.cards import card_license, render_model_card, render_recipe_card
from vreason_hf.testing import build_tiny_llama, build_tiny_qwen2_5_vl


def test_recipe_card_follows_the_convention_and_lists_exactly_the_knobs(check_card):
    card = check_card(render_recipe_card())
    assert card.data.license == "apache-2.0"  # the recipe's own code
    defaults = dict(
        re.findall(r"^\| `(\w+)` \| `(.+?)` \|", card.text.split("## Additional Arguments")[1], re.M)
    )
    assert {k: json.loads(v) for k, v in defaults.items()} == VReasonConfig().knobs()


def test_rendered_card_without_base_model_or_license(check_card):
    model, _ = build_tiny_qwen2_5_vl()
    text = render_model_card(VReasonConfig(), base_config=model.config.to_dict(), repo_id="me/tiny-vreason")
    card = check_card(text)
    assert "base_model" not in card.data.to_dict() and "license" not in card.data.to_dict()
    assert re.search(r"^# A `qwen2_5_vl` model with V-Reason$", card.text, flags=re.M)


def test_text_model_card_has_the_text_pipeline_and_example(check_card):
    model, _ = build_tiny_llama()
    knobs = VReasonConfig(controller_scope="prompt", lr=0.3)
    card = check_card(
        render_model_card(
            knobs,
            base_config=model.config.to_dict(),
            base_model="org/tiny-llama",
            repo_id="me/x",
            license="mit",
        )
    )
    assert card.data.pipeline_tag == "text-generation" and "video" not in card.data.tags
    assert card.data.base_model == "org/tiny-llama" and card.data.license == "mit"
    assert 'AutoModelForCausalLM.from_pretrained("me/x", trust_remote_code=True' in card.text


def test_card_license_reads_the_front_matter_and_survives_a_malformed_card(tmp_path, caplog):
    readme = tmp_path / "README.md"
    readme.write_text(
        "---\nlicense: other\nlicense_name: custom\nlicense_link: LICENSE\ntags: [x]\n---\n# Base\n"
    )
    assert card_license(readme) == {"license": "other", "license_name": "custom", "license_link": "LICENSE"}
    assert card_license(None) == card_license(tmp_path / "missing.md") == {}
    readme.write_text("---\nlicense: [unclosed\n---\n# Base\n")
    with caplog.at_level(logging.WARNING, logger="vreason_hf.cards"):
        assert card_license(readme) == {}
    assert "Could not read the base model's card" in caplog.text
