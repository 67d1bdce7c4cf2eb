"""The grounding judge's data: six human-labelled sources, split so that nothing measured was
learnt, plus synthetic edits of the corpus's own sentences.

Split: a pair's group decides its part, so that near-copies never straddle it. The group is
the claim for SciFact, HealthVer, Climate-FEVER and FEVER (one claim has several evidence
rows); the evidence for COVID-Fact (a claim and its one-word counter-claims share it); the
source document for SummEdits (its variants are rewordings of one summary). The group's
SHA-256, read as a number: 0-29 modulo 100 is held out (measured only); of the rest, fold 4
of 5 calibrates; the others train.

Synthetic pairs come from `data/papers` (never from the benchmark's own evidence): a sentence
of an abstract against the abstract is supported; the same sentence after one edit from
`assistant.evals.edits` (a number, a negation, a direction, a name, a hedge, a clause) is
not. That is the error the gate must catch: an answer that quotes its source but changes
what it says.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "benchmarks" / "grounding"
DATASETS = {
    "scifact": "scifact_train.jsonl",
    "healthver": "healthver_dev.jsonl",
    "covidfact": "covidfact.jsonl",
    "climatefever": "climate_fever.jsonl",
    "fever": "fever_nli_dev.jsonl",
    "summedits": "summedits_7domains.jsonl",
}
SYNTHETIC = "synthetic"
HELD_OUT_PERCENT = 30
FOLDS = 5
CALIBRATION_FOLD = 4


@dataclass(frozen=True)
class Example:
    dataset: str
    id: str
    claim: str
    evidence: str
    supported: bool
    group: str  # what the split is decided by
    domain: str = ""  # SummEdits' domain; the edit kind for synthetic pairs

    @property
    def group_hash(self) -> int:
        return int(hashlib.sha256(self.group.strip().lower().encode()).hexdigest(), 16)

    @property
    def part(self) -> str:
        h = self.group_hash
        if h % 100 < HELD_OUT_PERCENT:
            return "held_out"
        return "calibration" if (h // 100) % FOLDS == CALIBRATION_FOLD else "train"


def group_of(dataset: str, row: dict) -> str:
    if dataset == "covidfact":
        return row["evidence"]
    if dataset == "summedits":
        return row["id"].rsplit("_", 1)[0]
    return row["claim"]


def load(data: Path = DATA, datasets: tuple[str, ...] = tuple(DATASETS)) -> list[Example]:
    examples = []
    for dataset in datasets:
        for line in (data / DATASETS[dataset]).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            claim, evidence = row["claim"].strip(), row["evidence"].strip()
            if not claim or not evidence:
                continue
            domain = row["source_label"].split(":")[0] if dataset == "summedits" else ""
            examples.append(
                Example(
                    dataset,
                    row["id"],
                    claim,
                    evidence,
                    row["label"] == "supported",
                    group_of(dataset, row),
                    domain,
                )
            )
    return examples


def capped(examples: list[Example], per_dataset: int, seed: int = 0) -> list[Example]:
    """At most `per_dataset` pairs of each dataset, chosen by a seeded shuffle: FEVER alone
    would otherwise be half of what is trained or measured."""
    rng = random.Random(seed)
    out = []
    for dataset in dict.fromkeys(e.dataset for e in examples):
        rows = [e for e in examples if e.dataset == dataset]
        rng.shuffle(rows)
        out += sorted(rows[:per_dataset], key=lambda e: e.id)
    return out


# --- Synthetic edits -------------------------------------------------------------------------

WORDS = re.compile(r"[A-Za-z]+")
SCIFACT_CORPUS = REPO.parent / "shared" / "benchmarks" / "scifact" / "corpus.jsonl"
SCIFACT_SYNTHETIC = "scifact-edits"  # trained on, never measured: its abstracts are not held out


def synthetic(
    papers_dir: Path = REPO / "data" / "papers", per_abstract: int = 3, seed: int = 0
) -> list[Example]:
    """Edits of the corpus's own sentences: the errors an answer about these papers makes."""
    from assistant.corpus import read_corpus

    papers = read_corpus([papers_dir]).papers
    abstracts = {p.paper_id: p.abstract for p in papers}
    return edited_pairs(abstracts, SYNTHETIC, per_abstract, seed, elsewhere=False)


def scifact_document(example: Example) -> str:
    """The SciFact corpus id of a SciFact pair's evidence ("scifact-<claim>-<doc>")."""
    return example.id.rsplit("-", 1)[1]


def scifact_synthetic(
    held_back: set[str], per_abstract: int = 2, seed: int = 0, corpus: Path = SCIFACT_CORPUS
) -> list[Example]:
    """The same edits of the SciFact corpus's biomedical abstracts, the register of the
    SciFact and HealthVer rows, which the corpus of this project lacks. An abstract in
    `held_back` (by corpus id: the evidence of a held-out or calibration SciFact pair) is
    skipped, so that nothing measured was read in training."""
    abstracts = {}
    for line in corpus.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        text = row["text"].strip()
        if text and row["_id"] not in held_back:
            abstracts[f"scifact-{row['_id']}"] = text
    return edited_pairs(abstracts, SCIFACT_SYNTHETIC, per_abstract, seed, elsewhere=True)


def edited_pairs(
    abstracts: dict[str, str], dataset: str, per_abstract: int, seed: int, elsewhere: bool
) -> list[Example]:
    """Per abstract, up to `per_abstract` of its sentences, each as a supported pair and,
    edited once, as an unsupported one; the part is decided by the abstract, like a group.
    With `elsewhere`, the sentence is also read against the most similar other abstract, an
    unsupported pair on the same subject: the claim a wrong citation makes."""
    from assistant.evals.edits import corrupt, names_in, reword
    from assistant.text import split_sentences

    keys = list(abstracts)
    names = names_in(list(abstracts.values()))
    nearest = nearest_other([abstracts[k] for k in keys]) if elsewhere else []
    rng = random.Random(seed)
    out = []
    for n, key in enumerate(keys):
        abstract = abstracts[key]
        sentences = [s for s in split_sentences(abstract) if len(WORDS.findall(s)) >= 8]
        for k, sentence in enumerate(rng.sample(sentences, min(per_abstract, len(sentences)))):
            pair = f"{key}:{k}"
            kept = reword(sentence, rng) or sentence
            out.append(Example(dataset, f"{pair}:kept", kept, abstract, True, key))
            edit = corrupt(sentence, rng, names)
            if edit:
                out.append(
                    Example(
                        dataset, f"{pair}:{edit.kind}", edit.text, abstract, False, key, edit.kind
                    )
                )
            if elsewhere:
                other = abstracts[keys[nearest[n]]]
                out.append(
                    Example(dataset, f"{pair}:elsewhere", sentence, other, False, key, "elsewhere")
                )
    return out


def nearest_other(texts: list[str]) -> list[int]:
    """For each text, the most similar other one by TF-IDF cosine."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    matrix = TfidfVectorizer(stop_words="english", sublinear_tf=True).fit_transform(texts)
    nearest = []
    for start in range(0, len(texts), 512):
        block = (matrix[start : start + 512] @ matrix.T).toarray()
        for row, own in enumerate(range(start, min(start + 512, len(texts)))):
            block[row, own] = -1.0
        nearest += [int(i) for i in block.argmax(axis=1)]
    return nearest
