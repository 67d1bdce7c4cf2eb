"""The judge's synthetic pairs (training/grounding_data.py): what each pair claims of which
abstract, and that nothing measured is read."""

from __future__ import annotations

import json
from pathlib import Path

from training.grounding_data import edited_pairs, scifact_synthetic

ABSTRACTS = {
    "a": "We train a sparse mixture of experts with eight experts per layer on web text. "
    "The model improves perplexity by 3.1 points over a dense baseline of the same cost.",
    "b": "We study expert routing in sparse mixture of experts language models at scale. "
    "Balanced routing reduces the training loss by 12 percent on the same web text.",
    "c": "Coral reefs bleach when the ocean warms beyond the summer maximum for weeks. "
    "Surveys of forty reefs show that bleaching doubled between 1998 and 2016 overall.",
}


def test_each_sentence_is_kept_edited_and_read_elsewhere() -> None:
    pairs = edited_pairs(ABSTRACTS, "edits", per_abstract=1, seed=0, elsewhere=True)
    kept = [p for p in pairs if p.id.endswith(":kept")]
    assert len(kept) == 3 and all(p.supported and p.evidence == ABSTRACTS[p.group] for p in kept)
    elsewhere = {p.group: p for p in pairs if p.domain == "elsewhere"}
    # the same sentence against the nearest other abstract: the two MoE papers pair up
    assert elsewhere["a"].evidence == ABSTRACTS["b"] and elsewhere["b"].evidence == ABSTRACTS["a"]
    assert not any(p.supported for p in elsewhere.values())
    edited = [p for p in pairs if not p.supported and p.domain != "elsewhere"]
    assert edited and all(p.claim not in ABSTRACTS[p.group] for p in edited)
    assert edited_pairs(ABSTRACTS, "edits", 1, 0, elsewhere=True) == pairs  # seeded


def test_held_back_scifact_abstracts_are_never_edited(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    rows = [{"_id": key, "title": "", "text": text} for key, text in ABSTRACTS.items()]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    pairs = scifact_synthetic({"b"}, per_abstract=1, corpus=corpus)
    assert {p.group for p in pairs} == {"scifact-a", "scifact-c"}
    assert all(ABSTRACTS["b"] != p.evidence for p in pairs)
