"""Marker parsing and the citation check, on the forms models actually write."""

from __future__ import annotations

import pytest

from assistant.citations import check_citations, filter_stream
from assistant.text import markers_in, parse_marker, split_sentences


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("[1]", [1]),
        ("[1, 3]", [1, 3]),
        ("[1,3]", [1, 3]),
        ("[1-3]", [1, 2, 3]),
        ("[1–3]", [1, 2, 3]),  # en dash
        ("[1][2]", [1, 2]),
        ("[ 2 ]", [2]),
        ("[2, 4-5]", [2, 4, 5]),
        ("[3, 3]", [3]),
        ("[1-1000]", [1, 1000]),  # not a range anyone meant: the ends only
        ("see Table [a] and [x1]", []),
        ("an array x[0] is not a citation? [0]", [0, 0]),
    ],
)
def test_marker_forms(text: str, numbers: list[int]) -> None:
    assert markers_in(text) == numbers


def test_references_inside_abstracts_are_not_citations() -> None:
    from assistant.text import neutralize_markers

    assert (
        neutralize_markers("as shown before [1], [2-3].") == "as shown before (ref 1), (ref 2-3)."
    )


def test_parse_marker_keeps_order() -> None:
    assert parse_marker("3, 1") == [3, 1]


def test_invalid_markers_are_removed_and_reported() -> None:
    check = check_citations("Quantization helps [2, 9]. Pruning too [9].", valid={1, 2})
    assert check.text == "Quantization helps [2]. Pruning too."
    assert check.invalid_markers == [9]
    assert check.uncited_sentences == []  # "Pruning too." is too short to be a claim
    assert check.cited == [2]


def test_uncited_sentences_are_reported_but_headings_are_not() -> None:
    text = (
        "## Findings\nSparse attention cuts the cost of long inputs [1]. It also helps a lot here."
    )
    check = check_citations(text, valid={1})
    assert check.uncited_sentences == ["It also helps a lot here."]
    assert check.claims == 2


def test_sentence_split_keeps_markers_with_their_sentence() -> None:
    assert split_sentences("A claim about X [1]. Another about Y [2][3]. E.g. 3.5 points.") == [
        "A claim about X [1].",
        "Another about Y [2][3].",
        "E.g. 3.5 points.",
    ]


def test_stream_never_shows_an_invalid_marker() -> None:
    pieces = ["Eviction helps [", "1]. Merging [2", ", 9", "] too [", "7]."]
    shown = "".join(filter_stream(pieces, valid={1, 2}))
    assert shown == "Eviction helps [1]. Merging [2] too."
    final = check_citations("".join(pieces), valid={1, 2})
    assert final.text == shown  # what streamed is what the answer says
