"""Save the controller of a finished V-Reason generation, load it back, replay the generation exactly and continue it.

Run: `python examples/controller_adapter.py [OUT_DIR]`
"""

import sys
import tempfile

import torch

from vreason_hf import VReasonControllerModel, build_inputs, vreason_generate
from vreason_hf.testing import build_tiny_qwen2_5_vl, real_clip_path

out_dir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="vreason-controller-")
model, processor = build_tiny_qwen2_5_vl()
inputs = build_inputs(
    processor, "What are the people doing?", video=real_clip_path("bikes.mp4"), num_frames=8
)
knobs = {"update_every": 1, "lr": 0.2}

out = model.generate(
    **inputs,
    custom_generate=vreason_generate,
    vreason_config=knobs,
    max_new_tokens=16,
    do_sample=False,
    return_dict_in_generate=True,
)
VReasonControllerModel.from_generation(model, out, knobs).save_pretrained(out_dir)

controller = VReasonControllerModel.from_pretrained(model, out_dir)
replay = controller.generate(**inputs, mode="replay", max_new_tokens=16, do_sample=False)
warm = controller.generate(
    **inputs, mode="continue", max_new_tokens=16, do_sample=False, return_dict_in_generate=True
)
with controller.disable_adapter():
    plain = controller.generate(**inputs, max_new_tokens=16, do_sample=False)
print(f"saved to {out_dir}: controller_config.json + controller_model.safetensors")
print("replay reproduces the generation:", torch.equal(replay, out.sequences))
new_steps = warm.sequences.shape[1] - inputs["input_ids"].shape[1]  # one Adam step per token (update_every=1)
print(
    "continue goes on from the saved Adam steps:",
    torch.equal(warm.optimizer_steps, out.optimizer_steps + new_steps),
)
print("disabled adapter == plain greedy:", torch.equal(plain, model.generate(**inputs, max_new_tokens=16)))
