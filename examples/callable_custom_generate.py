"""V-Reason through `generate(custom_generate=vreason_generate)`, on a tiny random Qwen2.5-VL and a real clip.

Swap the tiny model for `AutoModelForImageTextToText.from_pretrained("Qwen/Qwen2.5-VL-7B-Instruct")` and its
processor for real use; a random model's words are meaningless. Run: `python examples/callable_custom_generate.py`
"""

import torch

from vreason_hf import VReasonConfig, build_inputs, vreason_generate
from vreason_hf.testing import build_tiny_qwen2_5_vl, real_clip_path

model, processor = build_tiny_qwen2_5_vl()
inputs = build_inputs(
    processor, "What are the people doing?", video=real_clip_path("bikes.mp4"), num_frames=8
)

out = model.generate(
    **inputs,
    custom_generate=vreason_generate,
    vreason_config=VReasonConfig(update_every=2, num_steps=1),
    max_new_tokens=24,
    do_sample=False,
    return_dict_in_generate=True,
)
greedy = model.generate(**inputs, max_new_tokens=24, do_sample=False)
print(
    "tokens:",
    out.sequences.shape[1] - inputs["input_ids"].shape[1],
    "Adam steps:",
    out.optimizer_steps.tolist(),
)
print("entropy of the first 5 tokens:", [round(h, 3) for h in out.entropies[0, :5].tolist()])
print("alpha of the first 5 tokens:", out.alphas[0, :5].tolist())
print("same tokens as plain greedy:", torch.equal(out.sequences, greedy))
