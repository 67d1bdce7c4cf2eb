"""The offline extractive backend end to end on the real corpus, with the real model."""

from __future__ import annotations

import pytest

from assistant.answer import ABSTAIN_HEADER, ask, is_question
from assistant.extractive import EXTRACTIVE_HEADER, ExtractiveBackend, rewrite_followup
from assistant.types import Conversation, Paper, Turn

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def backend(real_embedder):
    return ExtractiveBackend(real_embedder)


def run(question, index, embedder, backend, conversation=None):
    return ask(question, conversation or Conversation(), index, embedder, backend, index.settings)


@pytest.mark.parametrize(
    ("question", "expected_title_words"),
    [
        ("How can the KV cache be compressed during long-context inference?", "kv"),
        ("speech recognition for African languages", "speech"),
    ],
)
def test_extractive_answer_is_cited_on_topic_and_valid(
    seed_index, real_embedder, backend, question: str, expected_title_words: str
) -> None:
    answer = run(question, seed_index, real_embedder, backend)
    assert not answer.abstained
    assert answer.text.startswith(EXTRACTIVE_HEADER)
    assert answer.check.invalid_markers == [] and answer.check.uncited_sentences == []
    bullets = answer.text.splitlines()[1:]
    assert 2 <= len(bullets) <= 5
    assert all(line.startswith("- ") and line.rstrip(".").endswith("]") for line in bullets)
    # Every quoted sentence really is in the abstract it cites.
    for line in bullets:
        marker = int(line.rsplit("[", 1)[1].split("]")[0])
        paper = next(s.paper for s in answer.sources if s.marker == marker)
        sentence = line.rsplit(" [", 1)[0].removeprefix("- ").split(": ", 1)[-1]
        assert sentence.split(": ")[-1][:40] in paper.abstract
    assert expected_title_words in answer.citations[0].paper.title.lower()


@pytest.mark.parametrize(
    "question",
    [
        "What is a good recipe for sourdough bread?",
        "Who won the 2014 FIFA World Cup?",
        "How do LLM agents perform on the WebArena benchmark?",
    ],
)
def test_off_topic_questions_abstain_without_citations(
    seed_index, real_embedder, backend, question: str
) -> None:
    answer = run(question, seed_index, real_embedder, backend)
    assert answer.abstained and answer.text.startswith(ABSTAIN_HEADER)
    assert answer.citations == [] and len(answer.sources) == 3


@pytest.mark.parametrize(
    "question",
    [
        "Does medical domain adaptation of LLMs help?",
        # Framing words ("what do the papers say about") must not sink the coverage check.
        "What do the papers say about multi-head latent attention?",
        "Can you summarize findings on speech recognition for African languages?",
    ],
)
def test_on_topic_questions_do_not_abstain(
    seed_index, real_embedder, backend, question: str
) -> None:
    assert not run(question, seed_index, real_embedder, backend).abstained


@pytest.mark.parametrize(
    ("phrase", "title_words"),
    [
        # Both abstained when every query had to find its terms in the papers: the first
        # is misspelt and shares few words with its paper, the second names what its paper
        # implies (from the tune half of evals/datasets/retrieval_short.jsonl).
        ("make llama forgett the hogwarts wizard novels without full retraning", "harry potter"),
        ("W8A8 PTQ for SSM LLMs: a few outlier dims break it", "mamba-ptq"),
    ],
)
def test_phrases_in_the_readers_words_are_answered(
    seed_index, real_embedder, backend, phrase: str, title_words: str
) -> None:
    answer = run(phrase, seed_index, real_embedder, backend)
    assert not answer.abstained
    assert title_words in " ".join(c.paper.title.lower() for c in answer.citations)


def test_an_off_topic_phrase_still_abstains(seed_index, real_embedder, backend) -> None:
    assert run(
        "sourdough starter hydration and proofing", seed_index, real_embedder, backend
    ).abstained


def test_is_question() -> None:
    assert is_question("In which layer do massive activations appear?")
    assert is_question("do multilingual LLMs translate to English internally")
    assert not is_question("in-context learning as implicit gradient descent")
    assert not is_question("MoE routing collapse")


def test_follow_up_needs_the_first_turn(seed_index, real_embedder, backend) -> None:
    conversation = Conversation()
    first = run(
        "Which papers study speech recognition for African languages?",
        seed_index,
        real_embedder,
        backend,
        conversation,
    )
    second = run(
        "What languages did the first one cover?", seed_index, real_embedder, backend, conversation
    )
    first_cited = first.citations[0]
    assert first_cited.paper.title in second.standalone_question
    assert first_cited.marker in [c.marker for c in second.citations]  # same paper, same number
    assert not second.abstained


def test_rewrite_followup_resolves_references() -> None:
    conversation = Conversation()
    a = Paper("a", "EMS: evict then merge", "x")
    b = Paper("b", "KVzip: compression", "y")
    conversation.marker_for(a)
    conversation.marker_for(b)
    conversation.turns.append(
        Turn("kv cache compression?", "kv cache compression?", "…", [], [2, 1])
    )
    assert rewrite_followup(conversation, "How does the second one work?") == (
        'How does "EMS: evict then merge" work?'
    )
    assert rewrite_followup(conversation, "Tell me more about [2]") == (
        'Tell me more about "KVzip: compression"'
    )
    assert rewrite_followup(conversation, "What data did they use?").endswith(
        "(context: kv cache compression?)"
    )
    assert rewrite_followup(Conversation(), "What data did they use?") == "What data did they use?"
