"""Build the `custom_generate` recipe folder and call it by path, as a Hub user calls the pushed repo.

Run: `python examples/hub_recipe_folder.py [OUT_DIR]` (then `huggingface-cli upload <you>/vreason OUT_DIR` to publish).
"""

import sys
import tempfile

import torch

from vreason_hf import build_custom_generate_dir, build_inputs, vreason_generate
from vreason_hf.testing import build_tiny_qwen2_5_vl, real_clip_path

out_dir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="vreason-recipe-")
build_custom_generate_dir(out_dir, overwrite=True)

model, processor = build_tiny_qwen2_5_vl()
inputs = build_inputs(
    processor, "What are the people doing?", video=real_clip_path("bikes.mp4"), num_frames=8
)
knobs = {"update_every": 1, "lr": 0.2}
by_path = model.generate(
    **inputs,
    custom_generate=out_dir,
    trust_remote_code=True,
    vreason_config=knobs,
    max_new_tokens=16,
    do_sample=False,
)
by_callable = model.generate(
    **inputs, custom_generate=vreason_generate, vreason_config=knobs, max_new_tokens=16, do_sample=False
)
print(f"recipe folder: {out_dir}")
print("string path == callable path:", torch.equal(by_path, by_callable))
