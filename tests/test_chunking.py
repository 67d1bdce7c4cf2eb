"""Chunks stay under the model's window, keep whole sentences and carry the title."""

from __future__ import annotations

import pytest
from conftest import SEED_CORPUS

from assistant.chunking import MODEL_MAX_TOKENS, chunk_paper, minilm_token_counter
from assistant.corpus import read_corpus
from assistant.types import Paper


@pytest.fixture(scope="module")
def seed_chunks():
    count = minilm_token_counter()
    papers = read_corpus([SEED_CORPUS]).papers
    return papers, {p.paper_id: chunk_paper(p, count) for p in papers}, count


def test_every_seed_chunk_fits_the_model_window(seed_chunks) -> None:
    papers, chunks, count = seed_chunks
    for paper in papers:
        for chunk in chunks[paper.paper_id]:
            # Counted again with the model's tokenizer, [CLS] and [SEP] included.
            assert count(chunk.text) + 2 == chunk.n_tokens <= MODEL_MAX_TOKENS
            assert chunk.text.startswith(paper.title)
            assert chunk.text.split("\n", 1)[1] in paper.abstract


def test_nothing_is_lost_between_chunks(seed_chunks) -> None:
    papers, chunks, _ = seed_chunks
    for paper in papers:
        bodies = [c.text.split("\n", 1)[1] for c in chunks[paper.paper_id]]
        assert "".join(bodies).replace(" ", "") == paper.abstract.replace(" ", "")


def test_long_abstracts_split_at_sentence_ends(seed_chunks) -> None:
    papers, chunks, _ = seed_chunks
    multi = [c for p in papers for c in chunks[p.paper_id][:-1] if len(chunks[p.paper_id]) > 1]
    assert len(multi) > 300  # most seed abstracts exceed 256 word pieces
    assert all(c.text.rstrip().endswith((".", "?", "!", ")", '"', "'")) for c in multi)


def test_chunk_ids_and_positions(seed_chunks) -> None:
    papers, chunks, _ = seed_chunks
    paper = papers[0]
    assert [(c.chunk_id, c.position) for c in chunks[paper.paper_id]] == [
        (f"{paper.paper_id}#{i}", i) for i in range(len(chunks[paper.paper_id]))
    ]


def test_merged_paper_chunks_carry_both_titles(seed_chunks) -> None:
    papers, chunks, _ = seed_chunks
    [renamed] = [p for p in papers if p.aliases]
    assert "Are We Making Progress?" in chunks[renamed.paper_id][0].text


def test_a_very_long_title_is_shortened_in_the_chunks_only() -> None:
    count = minilm_token_counter()
    paper = Paper("x", "word " * 300, "A short abstract. " * 40)
    chunks = chunk_paper(paper, count)
    assert all(c.n_tokens <= MODEL_MAX_TOKENS for c in chunks)
    assert chunks[0].text.split("\n", 1)[0].endswith("…")
    assert paper.title == "word " * 300  # the paper keeps its full title
    bodies = "".join(c.text.split("\n", 1)[1] for c in chunks).replace(" ", "")
    assert bodies == paper.abstract.replace(" ", "")  # and the abstract is whole


def test_truncate_to_tokens_cuts_at_a_word_and_only_when_over() -> None:
    from assistant.chunking import truncate_to_tokens

    count = minilm_token_counter()
    assert truncate_to_tokens("A short abstract.", 10, 1000) is None
    fits = "word " * 50
    assert truncate_to_tokens(fits, 100, 10_000) is None  # longer than 100 characters, 50 pieces
    text = "Quantization of transformers reduces memory footprints considerably. " * 200
    cut, limit = truncate_to_tokens(text, 300, 100_000)
    assert limit == "300 tokens" and count(cut) <= 300 < count(text)
    assert text.startswith(cut) and text[len(cut)] == " "  # ends at a word's end
    # One endless "word" is a single [UNK] piece: the character limit still holds.
    cut, limit = truncate_to_tokens("x" * 50_000, 300, 1_000)
    assert (len(cut), limit) == (1_000, "1,000 characters")
