"""Create a V-Reason model repo (the base model's repo plus `custom_generate/`) and load it as a Hub user would.

Run: `python examples/vreason_model_repo.py [OUT_DIR]`. With a Hub model: `save_vreason_model("Qwen/Qwen2.5-VL-7B-Instruct",
OUT_DIR, {...})`, then `huggingface-cli upload <you>/<name> OUT_DIR`.
"""

import sys
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from vreason_hf import build_inputs, save_vreason_model, vreason_generate
from vreason_hf.testing import build_tiny_qwen2_5_vl, real_clip_path

out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="vreason-repo-"))
base, processor = build_tiny_qwen2_5_vl()
base_dir = out_dir.with_name(out_dir.name + "-base")
base.save_pretrained(base_dir)  # a local model folder, as downloaded from the Hub
processor.save_pretrained(base_dir)
knobs = {"update_every": 1, "lr": 0.2}
save_vreason_model(base_dir, out_dir, knobs, overwrite=True)
print("repo files:", sorted(str(p.relative_to(out_dir)) for p in out_dir.iterdir()))

# trust_remote_code=True: transformers makes custom_generate/generate.py the model's `generate`.
model = AutoModelForImageTextToText.from_pretrained(out_dir, trust_remote_code=True)
processor = AutoProcessor.from_pretrained(out_dir)
inputs = build_inputs(
    processor, "What are the people doing?", video=real_clip_path("bikes.mp4"), num_frames=8
)
loaded, original = model.state_dict(), base.state_dict()
same_weights = loaded.keys() == original.keys() and all(torch.equal(loaded[k], original[k]) for k in loaded)
print("weights identical to the base:", same_weights)

kw = {"max_new_tokens": 16, "do_sample": False}
with_repo_knobs = model.generate(**inputs, **kw)  # V-Reason with the knobs in generation_config.json
callable_path = base.generate(**inputs, custom_generate=vreason_generate, vreason_config=knobs, **kw)
plain = model.generate(**inputs, vreason_config=None, **kw)
print("stored knobs:", {k: model.generation_config.vreason[k] for k in knobs})
print("V-Reason equals the callable with the same knobs:", torch.equal(with_repo_knobs, callable_path))
print("plain decoding equals the base model:", torch.equal(plain, base.generate(**inputs, **kw)))
print("V-Reason tokens:", with_repo_knobs[0, inputs["input_ids"].shape[1] :].tolist())
