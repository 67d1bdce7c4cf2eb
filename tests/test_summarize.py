"""Subtopic briefs: real extractive briefs on the seed corpus, the map-reduce LLM path
over HTTP against the scripted server, bad topics, and the Markdown export."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from openai_server import ScriptedOpenAI

from assistant.brief_sentences import (
    conjugate,
    dangling,
    is_limitation,
    normalized,
    third_person,
)
from assistant.brief_writing import evidence_sections, literal, read_papers
from assistant.cli import main
from assistant.extractive import ExtractiveBackend
from assistant.llm import OpenAIBackend
from assistant.settings import Settings
from assistant.summarize import TopicError, summarize
from assistant.text import markers_in, numbers_in, split_sentences
from assistant.themes import cluster
from assistant.tokens import count_tokens
from assistant.types import Hit, Paper, Source

REFERENCE = re.compile(r"^\[(\d+)\] (.+?)\s*$", re.M)


def body_and_references(markdown: str) -> tuple[str, dict[int, str]]:
    body, _, tail = markdown.partition("## References")
    return body, {int(n): title for n, title in REFERENCE.findall(tail)}


@pytest.fixture(scope="module")
def extractive(real_embedder) -> ExtractiveBackend:
    return ExtractiveBackend(real_embedder)


# --- the offline brief on the real corpus -----------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("KV-cache compression", "kv cache"),
        ("speech recognition for low-resource languages", "speech"),
    ],
)
def test_extractive_brief_is_themed_cited_and_consistent(
    seed_index, real_embedder, extractive, topic: str, expected: str
) -> None:
    brief = summarize(
        seed_index.settings, topic, index=seed_index, embedder=real_embedder, backend=extractive
    )
    body, references = body_and_references(brief.markdown)

    assert brief.backend == "extractive"
    assert brief.themes and all(t.name and t.paper_ids for t in brief.themes)
    for heading in ("## Overview", "## Themes", "## Agreements", "## Evidence table"):
        assert heading in body
    assert body.count("\n### ") == len(brief.themes)
    # themes of two to six papers, one bullet per paper; no sentence said twice
    assert all(2 <= len(t.paper_ids) <= 6 for t in brief.themes)
    themes_text = body.split("## Themes", 1)[1].split("\n## ", 1)[0]
    assert themes_text.count("\n- ") == sum(len(t.paper_ids) for t in brief.themes)
    prose = [normalized(s) for s in split_sentences(body.split("## Evidence table")[0])]
    prose = [s for s in prose if len(s.split()) >= 4]
    assert len(prose) == len(set(prose))
    assert not any(dangling(s) for s in split_sentences(themes_text.replace("\n- ", "\n")))
    # the table has a row per cited paper, and its numbers are the abstracts' own
    assert [row.marker for row in brief.table] == sorted(s.marker for s in brief.citations)
    for row, source in zip(
        brief.table, sorted(brief.citations, key=lambda s: s.marker), strict=True
    ):
        assert numbers_in(row.reports) <= numbers_in(source.paper.abstract)
    # every marker is valid, every claim is cited, and the reference list is exactly what's cited
    valid = {s.marker for s in brief.relevant}
    assert set(markers_in(body)) <= valid
    assert brief.check.invalid_markers == [] and brief.check.uncited_sentences == []
    assert set(references) == set(markers_in(body)) == {s.marker for s in brief.citations}
    for source in brief.citations:
        assert references[source.marker] == literal(source.paper.title)
    # on the topic, and the coverage line accounts for every relevant paper
    assert sum(expected in s.paper.abstract.lower() for s in brief.citations) >= 3
    assert f"{len(brief.relevant)} papers found relevant, {len(brief.citations)} cited" in (
        brief.markdown
    )
    assert not re.search(r"(?m)^(We|Our) ", body)  # the abstracts' voice is rewritten


@pytest.mark.slow
@pytest.mark.parametrize(
    ("topic", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("x " * 5000, "characters long"),
        ("sourdough bread baking and fermentation", "don't cover"),
    ],
)
def test_bad_topics_get_a_clear_message(
    seed_index, real_embedder, extractive, topic: str, message: str
) -> None:
    with pytest.raises(TopicError, match=message):
        summarize(
            seed_index.settings, topic, index=seed_index, embedder=real_embedder, backend=extractive
        )


@pytest.mark.slow
def test_a_topic_no_paper_is_about_is_declined(seed_index, real_embedder, extractive) -> None:
    # No probability reaches 1.0: the topic model finds no paper about the topic.
    settings = seed_index.settings.model_copy(update={"summary_min_relevance": 1.0})
    with pytest.raises(TopicError, match="none of the 40 nearest papers is about") as raised:
        summarize(settings, "mixture of experts", index=seed_index, embedder=real_embedder,
                  backend=extractive)  # fmt: skip
    assert "1.00 needed" in str(raised.value.hint)


@pytest.mark.slow
def test_a_topic_whose_words_no_paper_uses_together_is_declined(
    seed_index, real_embedder, extractive
) -> None:
    # Each word is the corpus's, and papers near it exist (transformers, error analysis),
    # but none is on grammatical error correction: said with the words the closest lacks.
    with pytest.raises(TopicError, match="none uses most of its words") as raised:
        summarize(
            seed_index.settings,
            "grammatical error correction with transformers",
            index=seed_index,
            embedder=real_embedder,
            backend=extractive,
        )
    assert "never mentions grammatical" in str(raised.value.hint)


def test_lacking_words_names_what_the_closest_paper_lacks() -> None:
    from assistant.relevance import FEATURES, TOPIC_WORDS, lacking_words

    near = Paper("near", "Error analysis of transformers", "We count errors.")
    far = Paper("far", "Weather", "Rain falls.")
    hits = [Hit(1, far, 1.0, "", "far#0"), Hit(2, near, 0.9, "", "near#0")]
    x = np.zeros((2, len(FEATURES)))
    words = FEATURES.index("abstract_terms")
    x[:, words] = [0.0, 0.5]
    closest, lacking = lacking_words("grammatical error correction transformers", hits, x)
    assert closest.paper is near and lacking == ["grammatical", "correction"]
    x[1, words] = TOPIC_WORDS  # one paper using enough of the words is enough
    assert lacking_words("grammatical error correction transformers", hits, x) is None


@pytest.mark.slow
def test_cli_writes_markdown_and_json(seed_index, tmp_path: Path, capsys) -> None:
    out = tmp_path / "briefs" / "moe.md"
    index = ["--index", str(seed_index.settings.index_dir)]
    assert main(["summarize", "mixture of experts", "--out", str(out), *index]) == 0
    printed = capsys.readouterr().out
    written = out.read_text(encoding="utf-8")
    assert written.startswith("# Brief: mixture of experts") and "## References" in written
    assert written.strip() == printed.strip()

    assert main(["summarize", "mixture of experts", "--json", "--max-papers", "5", *index]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {
        "topic",
        "markdown",
        "themes",
        "citations",
        "relevant_papers",
        "left_out",
        "citation_check",
        "backend",
        "prompt_versions",
        "usage",
        "evidence_table",
        "relations",
    }
    assert len(data["relevant_papers"]) <= 5
    assert {c["marker"] for c in data["citations"]} <= {
        p["marker"] for p in data["relevant_papers"]
    }
    assert all({"paper_id", "title", "reason"} <= set(x) for x in data["left_out"])

    assert main(["summarize", "sourdough bread baking and fermentation", *index]) == 1
    assert "don't cover" in capsys.readouterr().err


# --- the LLM path: map, reduce, budget, invented markers ---------------------------------------


@pytest.mark.slow
def test_llm_maps_each_paper_then_reduces_within_budget(
    seed_index,
    real_embedder,
    extractive,
    openai_server: ScriptedOpenAI,
) -> None:
    topic = "mixture of experts"
    offline = summarize(
        seed_index.settings, topic, index=seed_index, embedder=real_embedder, backend=extractive
    )
    n = len(offline.relevant)
    assert n >= 3
    settings = Settings(
        index_dir=seed_index.settings.index_dir,
        llm="openai",
        openai_api_key="test-key",
        openai_base_url=openai_server.base_url,
        llm_timeout=5.0,
        summary_tokens=500,  # the budget's floor: not every paper's notes fit
    )
    note = "- " + "The paper routes tokens to a few experts and reports lower cost. " * 6
    for _ in range(n):
        openai_server.queue_text(note, prompt_tokens=300, completion_tokens=90)
    reduce_reply = (
        "## Overview\nSparse experts cut compute per token [1]. A made-up claim [99].\n\n"
        "## Themes\n### Routing\nRouting picks a few experts per token [1][2].\n\n"
        "## Agreements, disagreements and trade-offs\nMemory is the cost of experts [2].\n\n"
        "## Open questions\nCommunication remains a bottleneck [1].\n\n"
        "## References\n[1] something the model invented\n"
    )
    openai_server.queue_text(reduce_reply, prompt_tokens=900, completion_tokens=120)
    progress: list[str] = []
    brief = summarize(
        settings,
        topic,
        index=seed_index,
        embedder=real_embedder,
        backend=OpenAIBackend(settings),
        progress=progress.append,
    )

    # one map call per relevant paper, each on its own abstract, then one reduce call
    assert len(openai_server.requests) == n + 1 and openai_server.pending == 0
    for source, prompt in zip(brief.relevant, openai_server.prompts[:n], strict=True):
        assert source.paper.abstract[:60] in prompt
    reduce_prompt = openai_server.prompts[-1]
    notes = reduce_prompt.split("Notes:\n", 1)[1].rsplit("\n\nBrief:", 1)[0]
    assert count_tokens(notes, settings.model) <= settings.summary_tokens
    over = [x for x in brief.left_out if "token budget" in x["reason"]]
    assert over and all(x["title"] not in reduce_prompt for x in over)
    # the invented [99] is removed and reported; the model's own reference list is replaced
    assert brief.check.invalid_markers == [99] and "[99]" not in brief.markdown
    assert "something the model invented" not in brief.markdown
    _, references = body_and_references(brief.markdown)
    assert set(references) == {1, 2}
    assert brief.usage.prompt_tokens == 300 * n + 900
    assert set(brief.prompt_versions) == {"summarize_map", "summarize_reduce"}
    # the model's own agreements and open questions are replaced by ours, from the abstracts,
    # and the evidence table comes with the model's brief too
    assert "Memory is the cost of experts" not in brief.markdown
    assert "Communication remains a bottleneck [1]" not in brief.markdown
    assert "## Agreements and disagreements" in brief.markdown
    assert "## Evidence table" in brief.markdown
    assert [row.marker for row in brief.table] == [1, 2]
    assert any(p.startswith("reading papers") for p in progress) and "writing" in progress


# --- the pieces -------------------------------------------------------------------------------


def test_third_person_names_the_paper() -> None:
    assert third_person("We propose a cache.", "EMS") == "EMS proposes a cache."
    assert third_person("We further study it.", "EMS") == "EMS further studies it."
    assert third_person("To this end, we propose EMS.", "EMS") == (
        "To this end, the authors propose EMS."
    )
    assert third_person("This paper introduces KVzip.", "KVzip") == "The paper introduces KVzip."
    assert third_person("Our results hold; we release code.", "X") == (
        "Their results hold; the authors release code."
    )
    assert [conjugate(v) for v in ("show", "study", "push", "have", "introduced")] == [
        "shows",
        "studies",
        "pushes",
        "has",
        "introduced",
    ]


def test_open_questions_are_limitations_not_offers_to_future_work() -> None:
    assert is_limitation("The method is limited to greedy decoding.")
    assert is_limitation("We leave multi-GPU serving to future work.")
    assert is_limitation("Whether it scales beyond 7B remains unclear.")
    for offer in (
        "We will release the code to facilitate future research.",
        "The survey provides a roadmap for future research on KV caches.",
        "Our benchmark offers valuable insights for future work.",
    ):
        assert not is_limitation(offer), offer


def test_a_brief_without_a_stated_limitation_has_no_open_questions_section() -> None:
    def source(marker: int, abstract: str) -> Source:
        paper = Paper(f"p{marker}", f"Paper {marker}", abstract)
        return Source(marker, paper, 1.0, abstract[:40])

    plain = [
        source(1, "Decoding is slow. We propose Medusa, extra heads. Medusa is 2x faster."),
        source(2, "We propose EAGLE. EAGLE is 3x faster. We release the code for future work."),
    ]
    text, _ = evidence_sections(read_papers("speculative decoding", plain), None, set())
    assert "## Open questions" not in text
    lookahead = (
        "We propose Lookahead decoding, which guesses several tokens at once. "
        "Lookahead decoding is 1.8x faster on MT-Bench. "
        "The speedup is limited to greedy decoding and small batches."
    )
    limited = [*plain, source(3, lookahead)]
    text, _ = evidence_sections(read_papers("speculative decoding", limited), None, set())
    assert "## Open questions" in text
    assert "limited to greedy decoding and small batches [3]" in text


def test_third_person_keeps_modals_past_forms_and_adverbs_in_place() -> None:
    """Sentences the eval's brief check found broken ("LoLCATs cans replace", "ReLU^2 Wins
    wills release", "Sparsing Law surprisinglies find")."""
    assert third_person("First, we can replace the attentions.", "LoLCATs") == (
        "First, LoLCATs can replace the attentions."
    )
    assert third_person("We will release the code.", "X") == "X will release the code."
    assert third_person("We found that it helps.", "X") == "X found that it helps."
    assert third_person("We were able to prune it.", "X") == "X was able to prune it."
    assert third_person("At equal ratios, we surprisingly find a law.", "X") == (
        "At equal ratios, X surprisingly finds a law."
    )
    assert third_person("We apply it to Llama.", "X") == "X applies it to Llama."


def test_corpus_text_stays_literal_in_the_brief() -> None:
    hostile = "[Click me](https://evil.example) :red[x] **bold** <script>"
    assert literal(hostile) == (
        r"\[Click me\](https://evil.example) :red\[x\] \*\*bold\*\* \<script\>"
    )
    assert re.sub(r"\\(.)", r"\1", literal(hostile)) == hostile  # nothing lost


def test_cluster_is_deterministic_and_groups_neighbours() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=8), rng.normal(size=8)
    points = np.stack([a, a + 0.01, b, b + 0.01, a - 0.01])
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    assert cluster(points, 2) == [[0, 1, 4], [2, 3]]
    assert cluster(points, 2) == cluster(points.copy(), 2)
    assert cluster(points, 5) == [[0], [1], [2], [3], [4]]


def test_the_topic_model_decides_which_papers_a_brief_uses() -> None:
    from assistant.summarize import select_by_relevance

    hits = [
        Hit(i + 1, Paper(f"p{i}", f"Paper {i}", "An abstract."), 1.0 - i / 10, "snippet", f"p{i}#0")
        for i in range(5)
    ]
    relevance = np.array([0.2, 0.9, 0.6, 0.3, 0.95])
    kept, relevant, left_out = select_by_relevance(hits, relevance, 0.5, max_papers=2)
    # the most probable first, at most max_papers; the fused order doesn't matter
    assert kept == [4, 1] and [s.paper.paper_id for s in relevant] == ["p4", "p1"]
    assert [s.marker for s in relevant] == [1, 2]
    # left out with the reason: above the cap, or near the threshold; far below, not listed
    assert [x["paper_id"] for x in left_out] == ["p2", "p3"]
    assert left_out[0]["reason"] == "beyond the 2 most relevant papers (probability 0.60)"
    assert left_out[1]["reason"].startswith("less likely about the topic")


def test_topic_features_read_the_best_sentences(fake_embedder) -> None:
    from assistant.relevance import FEATURES, TopicModel, features

    on = Paper("on", "Cache eviction", "We study weather. Cache eviction helps decoding.")
    off = Paper("off", "Weather", "We study weather. Rain falls.")
    found = [Hit(1, off, 1.0, "", "off#0"), Hit(2, on, 0.8, "", "on#0")]
    chunks = fake_embedder.embed_documents([h.paper.abstract for h in found])
    x = features("cache eviction", found, fake_embedder, chunks)
    assert x.shape == (2, len(FEATURES))
    best = FEATURES.index("best_sentence")
    assert x[1, best] > x[0, best]  # one sentence of "on" says it
    assert list(x[:, FEATURES.index("fused_ratio")]) == [1.0, 0.8]
    assert list(x[:, FEATURES.index("title_terms")]) == [0.0, 1.0]  # "Cache eviction"
    assert list(x[:, FEATURES.index("abstract_terms")]) == [0.0, 1.0]
    # with two papers, each one's only other is its "most topical other"
    cosine = chunks[0] @ chunks[1] / np.linalg.norm(chunks[0]) / np.linalg.norm(chunks[1])
    assert np.allclose(x[:, FEATURES.index("near_topical")], cosine)
    model = TopicModel.load()  # the shipped fit reads these features
    assert model.probabilities(x).shape == (2,) and 0 < model.threshold < 1


def test_a_coordinated_topic_is_read_as_each_of_its_parts() -> None:
    from assistant.relevance import topic_parts

    assert topic_parts("attention sinks and massive activations") == [
        "attention sinks",
        "massive activations",
    ]
    # a lone modifier takes the head it shares; a lone last noun, the first part's modifiers
    assert topic_parts("speech and audio language models") == [
        "speech language models",
        "audio language models",
    ]
    assert topic_parts("KV-cache offloading and retrieval") == [
        "KV-cache offloading",
        "KV-cache retrieval",
    ]
    # names stand alone; commas and "or" coordinate too
    assert topic_parts("GQA, MLA or low-rank KV-cache reduction") == [
        "GQA",
        "MLA",
        "low-rank KV-cache reduction",
    ]
    assert topic_parts("state space models and Mamba") == ["state space models", "Mamba"]
    # no coordination, or one inside a prepositional phrase: the topic is read whole
    assert topic_parts("speculative decoding") == []
    assert topic_parts("hallucination in language and vision-language models") == []


def test_a_paper_on_one_part_of_a_topic_reads_as_on_it(fake_embedder) -> None:
    from assistant.relevance import FEATURES, features

    sinks = Paper("sinks", "Attention sinks", "We study attention sinks in decoding.")
    found = [Hit(1, sinks, 1.0, "", "sinks#0")]
    chunks = fake_embedder.embed_documents([sinks.abstract])
    whole = features("attention sinks", found, fake_embedder, chunks)[0]
    both = features("attention sinks and massive activations", found, fake_embedder, chunks)[0]
    for name in ("best_sentence", "title", "title_terms", "abstract_terms"):
        assert both[FEATURES.index(name)] == pytest.approx(whole[FEATURES.index(name)])


def test_near_topical_rewards_resembling_the_most_topical_papers() -> None:
    from assistant.relevance import TOPICAL, near_topical

    on = [np.array([1.0, 0.1 * k, 0.0]) for k in range(TOPICAL)]  # say the topic's words
    reworded = np.array([0.9, 0.0, 0.1])  # on the topic in other words: not topical itself
    off = np.array([0.0, 0.0, 1.0])
    vectors = np.array([*on, reworded, off])
    topical = np.array([1.0] * TOPICAL + [0.1, 0.2])  # `off` shares more words than `reworded`
    near = near_topical(vectors, topical)
    assert near[TOPICAL] > 0.9 > 0.2 > near[TOPICAL + 1]
    assert near_topical(vectors[:1], topical[:1]).tolist() == [0.0]
