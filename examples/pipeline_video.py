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
chat = [
    {"role": "user", "content": [{"type": "video", "path": clip}, {"type": "text", "text": "What happens?"}]}
]

# As `image-text-to-text`: one list of records per input; chat in, chat out (the answer as an assistant message).
(result,) = pipe(text=chat, num_frames=8, max_new_tokens=16, return_traces=True)
(plain,) = pipe(text=chat, num_frames=8, max_new_tokens=16, vreason=False, return_full_text=False)
print("V-Reason:", result["num_generated_tokens"], "tokens,", result["optimizer_steps"], "Adam steps")
print("reply:", result["generated_text"][-1]["role"], repr(result["generated_text"][-1]["content"]))
print("plain:", plain["num_generated_tokens"], "tokens", repr(plain["generated_text"]))
print("first entropies:", [round(h, 3) for h in result["entropies"][:4]])
