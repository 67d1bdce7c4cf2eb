"""The edits the gate's test and the judge's training data are made of: each changes what a
sentence claims, and a rewording changes none of it."""

from __future__ import annotations

import random
import re

from assistant.evals.edits import EDITS, corrupt, names_in, reword, scale_number, swap_entity
from assistant.text import numbers_in

SENTENCE = (
    "On Llama-2-7B and GPT2, our method reduces memory by up to 2.55x and can improve "
    "accuracy by 3.1% in 8B models."
)


def test_every_kind_edits_the_sentence_and_says_which_it_is() -> None:
    names = names_in([SENTENCE, "We compare with BERT and RoBERTa."])
    for kind in EDITS:
        made = corrupt(SENTENCE, random.Random(0), names, kinds=[kind])
        assert made is not None and made.kind == kind and made.text != SENTENCE, kind


def test_numbers_are_quantities_never_the_digits_of_a_name() -> None:
    for seed in range(30):
        edited = scale_number(SENTENCE, random.Random(seed))
        assert edited is not None
        assert "Llama-2-7B" in edited and "GPT2" in edited  # the names are untouched
        assert re.findall(r"[\d.]+", edited) != re.findall(r"[\d.]+", SENTENCE)
    assert scale_number("It reproduces, and 1.) show that it does.", random.Random(0)) is None


def test_an_entity_is_swapped_for_another_name_not_another_spelling() -> None:
    assert swap_entity("A larger GPT2 model.", random.Random(0), ["GPT-2", "gpt2"]) is None
    assert swap_entity("A larger GPT2 model.", random.Random(0), ["GPT-2", "BERT"]) == (
        "A larger BERT model."
    )


def test_rewordings_keep_every_number_and_name() -> None:
    sentence = "In this paper, we present Medusa, which enables 2.2x faster decoding."
    for seed in range(20):
        text = reword(sentence, random.Random(seed))
        assert text is not None and text != sentence and text[0].isupper()
        assert numbers_in(text) == numbers_in(sentence)
        assert names_in([text]) == names_in([sentence])
