"""`vreason_hf.cli.compare`: the answer check, the comparison table and the verdict sentence of `run` and `demo`."""

from __future__ import annotations

import pytest

from vreason_hf.cli.compare import answer_found, comparison_table, printable, verdict
from vreason_hf.eval import GenerationResult


def result(text: str, *, tokens: int = 10, steps: int = 0, entropies=None, ema=None) -> GenerationResult:
    entropies = entropies if entropies is not None else [1.0] * 3
    ema = ema if ema is not None else [0.1, 0.2, 0.3]
    return GenerationResult(
        text=text,
        output_tokens=tokens,
        seconds=1.0,
        peak_memory_mb=1234.0,
        memory_source="rss_peak",
        entropies=entropies,
        ema_entropies=ema,
        alphas=[1.0] * len(entropies),
        optimizer_steps=steps,
    )


@pytest.mark.parametrize(
    ("answer", "text", "found"),
    [
        ("8", "The answer to this classic question is: 8.", True),
        ("8", "A spider has 18 legs, or 0.8 of them, or 8b.", False),
        ("42", "6 * 7 = 42", True),
        ("Paris", "the capital is paris", True),
        ("3", "", False),
    ],
)
def test_answer_found_needs_a_whole_word(answer, text, found):
    assert answer_found(answer, text) is found


@pytest.mark.parametrize(
    ("base", "vreason", "outcome", "fragment"),
    [
        ("no idea", "It is 8.", "helped", "V-Reason helped: its reply states the answer 8"),
        ("It is 8.", "It is 9.", "hurt", "V-Reason hurt: plain decoding's reply states the answer 8"),
        ("It is 8.", "It is 8.", "no difference", "did not change a single token (both state the answer 8)"),
        ("It is 9.", "It is 7.", "no difference", "V-Reason did not help: neither reply states the answer 8"),
        (
            "8 it is.",
            "It is 8!",
            "no difference",
            "both replies state the answer 8; V-Reason's is 5 tokens longer",
        ),
    ],
    ids=["helped", "hurt", "identical", "neither", "both"],
)
def test_verdict_says_what_v_reason_did(base, vreason, outcome, fragment):
    got, sentence = verdict(result(base), result(vreason, tokens=15, steps=7), "8")
    assert got == outcome
    assert fragment in sentence


def test_comparison_table_rows_per_mode():
    table = comparison_table({"base": result("It is 8."), "vreason": result("no", steps=5)}, answer="8")
    header, base_row, vreason_row = (line.split("  ") for line in table.splitlines())
    cells = [[cell.strip() for cell in row if cell.strip()] for row in (header, base_row, vreason_row)]
    assert cells[0] == [
        "mode",
        "states '8'",
        "output tokens",
        "post-peak entropy",
        "Adam steps",
        "seconds",
        "tokens/s",
        "peak memory MB",
    ]
    assert cells[1] == ["base", "yes", "10", "-", "0", "1.00", "10.0", "1234"]
    assert cells[2][:2] == ["V-Reason", "no"] and cells[2][4] == "5"


def test_printable_escapes_control_characters_but_keeps_lines():
    assert printable("a\x1b[31mb\n\tc\r\x00é\ufffd") == "a\\x1b[31mb\n\tc\\x0d\\x00é\ufffd"
