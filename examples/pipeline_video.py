"""The `video-text-to-text` pipeline (registered by `import vreason_hf`), with and without V-Reason.

Run: `python examples/pipeline_video.py`
"""

from transformers import pipeline

import vreason_hf  # noqa: F401  (registers the task)
from vreason_hf.testing import build_tiny_qwen2_5_vl, real_clip_path

model, processor = (
    build_tiny_qwen2_5_vl()
)  # or: pipeline("video-text-to-text", model="Qwen/Qwen2.5-VL-3B-Instruct")
pipe = pipeline("video-text-to-text", model=model, processor=processor)
clip = str(real_clip_path("bikes.mp4"))

result = pipe(clip, text="What are the people doing?", num_frames=8, max_new_tokens=16, return_traces=True)
plain = pipe(clip, text="What are the people doing?", num_frames=8, max_new_tokens=16, vreason=False)
print("V-Reason:", result["num_generated_tokens"], "tokens,", result["optimizer_steps"], "Adam steps")
print("plain:", plain["num_generated_tokens"], "tokens")
print("first entropies:", [round(h, 3) for h in result["entropies"][:4]])
