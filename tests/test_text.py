"""Sentences, markers and tokens: the text handling every stage shares."""

from __future__ import annotations

from assistant.text import claim_text, neutralize_markers, split_sentences


def test_an_abstracts_own_reference_neither_cites_nor_splits_its_sentence() -> None:
    abstract = (
        "We build on prior work [7] and extend it to 12 languages. "
        "Results improve by 3.5 points [2, 3]."
    )
    sentences = split_sentences(neutralize_markers(abstract))
    assert sentences == [
        "We build on prior work (ref 7) and extend it to 12 languages.",
        "Results improve by 3.5 points (ref 2, 3).",
    ]


def test_scientific_abbreviations_and_decimals_end_no_sentence() -> None:
    text = (
        "Smith et al. report gains, e.g. on GLUE. Fig. 2 shows 0.5 vs. 1.5 points. "
        "See Eq. 3 and no. 4 for details."
    )
    assert split_sentences(text) == [
        "Smith et al. report gains, e.g. on GLUE.",
        "Fig. 2 shows 0.5 vs. 1.5 points.",
        "See Eq. 3 and no. 4 for details.",
    ]


def test_claim_text_drops_a_bullets_paper_label_but_not_a_sentences_words():
    assert claim_text("- EffEval: These findings help [2].") == "These findings help."
    assert claim_text("1. GPT-4 Turbo: The model wins [3][4].") == "The model wins."
    assert claim_text("Medusa: it works [1].") == "Medusa: it works."  # no bullet, no label
    assert claim_text("- We find that x: Y holds [1].") == "We find that x: Y holds."
    # a whole title head is a label too, small words, commas and all
    assert claim_text("- Think Big, Generate Quick: We mix models [1].") == "We mix models."
    assert claim_text("- Cutting Off the Head Ends the Conflict: Heads matter [2].") == (
        "Heads matter."
    )
