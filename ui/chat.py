"""Chat: cited answers streaming in, and beside them the evidence each answer rests on."""

from __future__ import annotations

from typing import Any

import streamlit as st

from assistant.answer import start_answer
from assistant.errors import AssistantError
from assistant.extractive import EXTRACTIVE_HEADER
from assistant.grounding_check import AnswerEvidence, explain_answer
from assistant.types import Conversation
from ui import common

USER = ":material/person:"
ASSISTANT = ":material/menu_book:"
# Chat and sources scroll side by side, each in its own pane, so the evidence stays in
# view next to the answer however long the conversation gets.
PANE_HEIGHT = 500  # with the compact header, fits a laptop screen (about 860 px of page)

s = common.settings()
state = st.session_state
if "conversation" not in state:
    # One assistant Conversation per browser session: it numbers papers once for the
    # whole chat and carries the turns that follow-ups are condensed against.
    state.conversation = Conversation()
    state.turns = []  # what the page shows: dicts with question, answer or error, evidence

head, new = st.columns([5, 1], vertical_alignment="center")
head.subheader("Chat with the papers")
if new.button("New chat", icon=":material/add_comment:", width="stretch"):
    state.conversation = Conversation()
    state.turns = []
    state.pop("sources_for", None)

built = state.pop("index_built", None)
if built:
    st.success(f"Index built: {common.escape_md(built)}", icon=":material/check_circle:")
common.show_problems(state.pop("index_problems", []))

chat_col, sources_col = st.columns([3, 2], gap="medium")
question = st.chat_input(
    "Ask about the papers, e.g. “How do recent methods compress the KV cache?”"
)


def render_turn(turn: dict[str, Any]) -> None:
    with st.chat_message("user", avatar=USER):
        st.markdown(common.escape_md(turn["question"]))
    with st.chat_message("assistant", avatar=ASSISTANT):
        if turn.get("error"):
            render_error(turn)
        else:
            render_answer(turn)


def render_error(turn: dict[str, Any]) -> None:
    st.error(
        f"The assistant could not answer: {common.escape_md(turn['error'])}",
        icon=":material/error:",
    )
    if turn.get("hint"):
        st.caption("Hint: " + common.escape_md(turn["hint"]))
    st.caption("The conversation goes on: ask again, or ask something else.")


def render_answer(turn: dict[str, Any]) -> None:
    answer = turn["answer"]
    evidence: AnswerEvidence = turn["evidence"]
    text = answer.text
    if answer.abstained:
        # The first line says why (and names what no abstract mentions); the rest lists
        # the nearest papers.
        first, _, text = text.partition("\n")
        st.warning(common.escape_md(first), icon=":material/search_off:")
    elif answer.backend == "extractive":
        st.caption(EXTRACTIVE_HEADER)
    st.markdown(common.answer_markdown(text, answer.backend, answer.abstained, evidence.flags))
    if answer.truncated:
        st.warning(
            "Cut off: the model reached its output limit before finishing.",
            icon=":material/content_cut:",
        )
    if answer.reasoning:  # a reasoning model's thoughts: shown apart, never checked or cited
        with st.expander("The model's reasoning (not part of the answer)", expanded=False):
            st.markdown(common.escape_md(answer.reasoning))
    if evidence.flags:
        st.caption(
            f"{len(evidence.flags)} sentence(s) flagged: no citation, or the grounding judge "
            "found that the abstracts they cite don't support them. Check them."
        )
    if evidence.check is not None and evidence.check.sentences:
        render_verdicts(evidence)
    if turn.get("judge_failed"):
        st.caption("The grounding judge failed; only the citation check flagged sentences.")
    st.caption(common.footer(answer))


def render_verdicts(evidence: AnswerEvidence) -> None:
    """The grounding check's verdict on each sentence, with the source sentence behind it."""
    assert evidence.check is not None
    rows = evidence.check.sentences
    unsupported = sum(not row.supported for row in rows)
    label = f"Grounding check: {len(rows) - unsupported} of {len(rows)} sentences supported"
    with st.expander(label, expanded=False):
        for row in rows:
            badge = ":green-badge[supported]" if row.supported else ":red-badge[not supported]"
            st.markdown(f"{badge} {common.escape_md(row.text)}")
            if row.evidence:
                where = f"\\[{row.evidence_marker}\\] " if row.evidence_marker else ""
                st.caption(f"{where}“{common.escape_md(row.evidence)}”")


def ask(question: str) -> dict[str, Any]:
    """Stream one answer into the page; an LLM failure becomes an error turn, not a crash."""
    turn: dict[str, Any] = {"question": question}
    with st.chat_message("user", avatar=USER):
        st.markdown(common.escape_md(question))
    with st.chat_message("assistant", avatar=ASSISTANT):
        slot = st.empty()
        try:
            with st.spinner("Searching the papers…"):
                pending = start_answer(
                    question,
                    state.conversation,
                    common.index(s),
                    common.embedder(s),
                    common.backend(s),
                    s,
                    k=common.top_k(s),
                )
            text = ""
            for delta in pending.deltas():
                text += delta
                slot.markdown(
                    common.answer_markdown(text, pending.backend.name, pending.abstained, {}) + " ▌"
                )
            answer = pending.finish()
        except AssistantError as exc:  # LLMError above all; also a lost Chroma server
            turn.update(error=exc.message, hint=exc.hint)
            with slot.container():
                render_error(turn)
            return turn
        with st.spinner("Checking the citations…"):
            # Extractive answers too: a quote under the wrong [n], or cut from its context,
            # is what a reader should see flagged, and the eval judges them the same way.
            judge = common.judge(s)
            try:
                evidence = explain_answer(answer, judge)
            except Exception:  # a broken judge must not cost the answer
                evidence = explain_answer(answer, None)
                turn["judge_failed"] = True
            turn.update(answer=answer, evidence=evidence)
        with slot.container():
            render_answer(turn)
    return turn


def render_sources(turns: list[dict[str, Any]]) -> None:
    answered = [i for i, t in enumerate(turns) if t.get("answer") is not None]
    st.markdown("##### Sources")
    if not answered:
        st.caption(
            "Each answer's evidence appears here: the papers it cites, their retrieval "
            "scores, and the sentences of each abstract that support it, highlighted."
        )
        return
    if state.get("sources_for") not in answered:
        state.sources_for = answered[-1]
    height = PANE_HEIGHT - 40
    if len(answered) > 1:
        height -= 76  # the selectbox's share of the pane
        st.selectbox(
            "Sources for",
            answered,
            format_func=lambda i: f"Answer {i + 1}: {turns[i]['question'][:60]}",
            key="sources_for",
        )
    chosen = state.sources_for
    turn = turns[chosen]
    answer, evidence = turn["answer"], turn["evidence"]
    with st.container(height=height, border=False):
        if answer.abstained:
            st.caption("Nothing retrieved was relevant enough. The nearest papers:")
            for source in answer.sources:
                common.source_card(source, set())
            return
        cited = {src.marker for src in answer.citations}
        if not cited:
            st.caption("This answer cites none of the papers retrieved for it.")
        for source in answer.citations:
            common.source_card(source, evidence.supporting.get(source.marker, set()), "cited")
        others = [src for src in answer.sources if src.marker not in cited]
        if others:
            with st.expander(f"Retrieved but not cited ({len(others)})"):
                for source in others:
                    common.source_card(source, set())


with chat_col, st.container(height=PANE_HEIGHT, border=False, autoscroll=True):
    if not state.turns and not question:
        st.markdown(
            "Ask a question about the indexed papers. Every answer cites its sources as "
            "**\\[n\\]**; the sources panel shows each cited abstract with the supporting "
            "sentences highlighted. Follow-ups may refer to earlier answers "
            "(“how does the second one work?”)."
        )
    for turn in state.turns:
        render_turn(turn)
    if question and question.strip():
        state.turns.append(ask(question))
        if state.turns[-1].get("answer") is not None:
            state.sources_for = len(state.turns) - 1

with sources_col:
    render_sources(state.turns)
