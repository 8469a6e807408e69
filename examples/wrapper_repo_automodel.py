"""Create a V-Reason model repo from a base model and load it back with the Auto classes (trust_remote_code).

Run: `python examples/wrapper_repo_automodel.py [OUT_DIR]`
"""

import sys
import tempfile

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from vreason_hf import load_video, save_vreason_model
from vreason_hf.testing import build_tiny_qwen2_5_vl, make_video_inputs, real_clip_path

out_dir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="vreason-repo-")
base, processor = (
    build_tiny_qwen2_5_vl()
)  # with a Hub model: save_vreason_model("Qwen/Qwen2.5-VL-7B-Instruct", ...)
save_vreason_model(base, out_dir, {"update_every": 2, "lr": 0.2}, processor=processor, overwrite=True)

model = AutoModelForImageTextToText.from_pretrained(out_dir, trust_remote_code=True)
processor = AutoProcessor.from_pretrained(out_dir, trust_remote_code=True)
frames, metadata = load_video(real_clip_path("bikes.mp4"), num_frames=8)
inputs = make_video_inputs(processor, frames, metadata, "What are the people doing?")

with_repo_knobs = model.generate(**inputs, max_new_tokens=16, do_sample=False)
plain = model.generate(**inputs, max_new_tokens=16, do_sample=False, vreason_config=None)
print(
    f"repo: {out_dir} ({type(model).__name__}, knobs lr={model.config.lr}, update_every={model.config.update_every})"
)
print("plain decoding equals the base model:", torch.equal(plain, base.generate(**inputs, max_new_tokens=16)))
print("V-Reason tokens:", with_repo_knobs[0, inputs["input_ids"].shape[1] :].tolist())
