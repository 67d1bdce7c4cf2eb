"""An abstract's sentences made fit to stand in a brief, and the roles they play in it.

An abstract is one voice telling one story: "We propose X", "Secondly, …", "To address
this challenge, …" all lean on the sentence before. A brief quotes a sentence or two of
each of many papers side by side, so each quoted sentence has to stand alone: its
dangling opener goes, its "we" becomes the paper ("Medusa proposes"), and markup pasted
into the corpus goes before anything else reads it. The roles (what a paper proposes,
what it reports, what it leaves open) are decided here too, by cue phrases, so the
offline writer, the evidence table and the agreement finder agree on them.
"""

from __future__ import annotations

import functools
import re

from .text import NUMBER, neutralize_markers, split_sentences, strip_markup
from .types import Paper

# --- splitting ------------------------------------------------------------------------------

# "…the original LLM.Through empirical evaluation…": an export lost the space after a full
# stop. A lower-case letter or digit before it and a capitalised word after it is a boundary.
GLUED = re.compile(r"(?<=[A-Za-z0-9)]{2}[.!?])(?=[A-Z][a-z]{2,}\b)")
# "… reordering, rotation, etc. To address these challenges, …": "etc." ends one here.
ETC = re.compile(r"(?<=\betc\.)\s+(?=[A-Z][a-z]+\b)")
MIN_WORDS = 5


@functools.lru_cache(maxsize=4096)
def brief_sentences(abstract: str) -> tuple[str, ...]:
    """The abstract's sentences without markup, glued ones split, fragments dropped."""
    text = neutralize_markers(strip_markup(" ".join(abstract.split())))
    pieces = [p for s in split_sentences(text) for p in GLUED.split(s) for p in ETC.split(p)]
    return tuple(p.strip() for p in rejoin(pieces) if len(p.split()) >= MIN_WORDS)


def rejoin(pieces: list[str]) -> list[str]:
    """'… correlated (avg.' + '0.95) …' is one sentence: a piece left inside an open
    parenthesis, or followed by one that starts in lower case, goes on."""
    joined: list[str] = []
    for piece in pieces:
        if joined and (joined[-1].count("(") > joined[-1].count(")") or piece[:1].islower()):
            joined[-1] = f"{joined[-1]} {piece}"
        else:
            joined.append(piece)
    return joined


# --- roles -----------------------------------------------------------------------------------

SUBJECT = re.compile(
    r"^((?:[A-Z][^,]{0,40},\s*)?)(we|this paper|this work|this study)\s+"
    r"((?:(?:further|also|then|first|additionally|empirically|theoretically|experimentally|"
    r"systematically|extensively|comprehensively|formally|"
    r"(?!(?:apply|rely|supply|reply|multiply|comply|imply)\b)[a-z]{3,}ly)\s+)*)"
    r"([a-z]+)\b",
    re.IGNORECASE,
)
PROPOSAL = re.compile(
    r"\b(?:we|this (?:paper|work|study)|the authors)\s+(?:\w+ly\s+)?(?:also\s+)?"
    r"(?:propose|present|introduce|develop|design|build|devise|describe|offer|release|"
    r"construct|create|formulate|put forward)[sd]?\b",
    re.IGNORECASE,
)
STRONG_PROPOSAL = re.compile(r"\b(?:propose|present|introduce)[sd]?\b", re.IGNORECASE)
FINDING = re.compile(
    r"\d+(?:\.\d+)?\s*(?:%|x|×|times|-fold)|\b(?:outperform\w*|surpass\w*|speed-?ups?|"
    r"achiev\w*|improv\w* (?:\w+ ){0,3}by|reduc\w* (?:\w+ ){0,3}by|"
    r"(?:we|results|experiments|evaluations?) (?:\w+ ){0,2}(?:find|found|show|observe|"
    r"demonstrate|reveal|indicate|confirm)\w*)\b",
    re.IGNORECASE,
)
BACKGROUND = re.compile(
    r"^(?:however|despite|although|while|recent(?:ly)?|existing|traditional|in recent|"
    r"there (?:is|are|remains?|exists?)|"
    r"current|prior|previous|conventional|many|most)\b",
    re.IGNORECASE,
)
# Only what a paper says is still open or where it stops: a limitation, a failure, future
# work. "X remains a bottleneck" in an abstract's first lines is the problem it then solves,
# so a cue only counts after the paper has said what it does (see `open_sentences`).
LIMITATION = re.compile(
    r"\b(?:remains? (?:an? )?(?:open|unclear|unknown|unexplored|unsolved|limited|challenging|"
    r"difficult|to be)|limited to|fails? (?:when|to|on|for|in)|failure (?:case|mode)s?|"
    r"future (?:work|research|directions?)|we leave|left (?:for|to) future|open (?:question|"
    r"problem|challenge)s?|unclear (?:whether|how|if|why)|it is unclear|does not (?:generalize|"
    r"scale|transfer|hold)|do not (?:generalize|scale|transfer|hold)|limitations? (?:of|is|are)|"
    r"not yet|is still (?:limited|lacking|far)|still lags?|falls? short|we (?:also )?"
    r"(?:discuss|identify|highlight) (?:the )?(?:limitations|open|remaining))\b",
    re.IGNORECASE,
)


def is_method(sentence: str) -> bool:
    return PROPOSAL.search(sentence) is not None


def is_result(sentence: str) -> bool:
    return FINDING.search(sentence) is not None and not BACKGROUND.match(sentence)


def quantities(sentence: str) -> int:
    """How many quantities the sentence states (not the digits of a name like Medusa-2)."""
    return len(NUMBER.findall(sentence))


# "To facilitate future research, we release the code", "a roadmap for future research":
# an offer to future work, not a limitation or a question left open.
SERVES_FUTURE = re.compile(
    r"\b(?:facilitat|enabl|support|inspir|guid|inform|benefit|foster|spur|advanc|encourag|"
    r"motivat|stimulat|releas|open-sourc|pav\w* the way|roadmap|foundation|basis|insights?|"
    r"resources?|valuable|useful|benchmark)\w*\b[^.;]{0,40}?\bfuture (?:work|research|"
    r"directions?)\b",
    re.IGNORECASE,
)


def is_limitation(sentence: str) -> bool:
    return LIMITATION.search(SERVES_FUTURE.sub(" ", sentence)) is not None


# --- the paper's name ----------------------------------------------------------------------

GENERIC_NAMES = frozenset({
    "LLM", "LLMs", "KV", "GPU", "GPUs", "CPU", "CPUs", "NLP", "AI", "API", "MoE", "RAG",
    "VRAM", "SOTA", "NLU", "NLG", "QA", "ML", "DL", "RL", "Transformer", "Transformers",
    "BERT", "GPT", "",
})  # fmt: skip
COINED = r"[A-Z][\w-]*[A-Z0-9][\w-]*|[A-Z][a-z]+[A-Z][\w-]*"
NAMED = re.compile(
    r"\b(?:propose|present|introduce|develop|call|name|dub|term|coin)(?:s|d|ed)?\s+"
    rf"(?:(?:a|an|the)\s+(?:[\w-]+\s+){{0,8}}?(?:called|named|dubbed|termed)\s+)?({COINED}|"
    r"[A-Z][a-z]{2,}(?=\s*[,(:]))"
)
ACRONYM = re.compile(r"\(([A-Z][A-Za-z0-9-]{1,14})\)")


@functools.lru_cache(maxsize=4096)
def method_name(title: str, abstract: str) -> str | None:
    """'Medusa: Simple LLM …' -> 'Medusa'; '… we propose SpeCache, which …' -> 'SpeCache'.

    A title's head counts when it is a name (one or two words, or holding a coined word
    like "MoE"), not a claim ("Jump to Conclusions"); a name found in the abstract must
    recur, so a capitalised word after "propose" that happens once is not taken for one.
    """
    head, sep, _ = title.partition(":")
    head = strip_markup(head).strip()
    words = head.split()
    coined = any(re.fullmatch(COINED, w) for w in words)
    if sep and head and len(head) <= 30 and head[0].isupper() and (len(words) <= 2 or coined):
        return head
    text = strip_markup(abstract)
    for sentence in split_sentences(text):
        if not PROPOSAL.search(sentence) and "called" not in sentence and "named" not in sentence:
            continue
        found = [m.group(1) for m in NAMED.finditer(sentence)]
        for proposal in PROPOSAL.finditer(sentence):  # "we propose Dynamic … (DMC)"
            found += ACRONYM.findall(sentence[proposal.end() : proposal.end() + 90])
        for name in found:
            name = name.rstrip("-")
            recurs = text.count(name) >= 2 or name in title
            if name not in GENERIC_NAMES and recurs and len(name) >= 2:
                return name
    return None


def name_of(paper: Paper) -> str | None:
    return method_name(paper.title, paper.abstract)


# --- cleaning ------------------------------------------------------------------------------

CONNECTIVES = (
    "however|moreover|furthermore|additionally|besides|secondly|firstly|thirdly|first|second|"
    "third|fourth|finally|lastly|thus|therefore|hence|consequently|accordingly|specifically|"
    "notably|importantly|meanwhile|nevertheless|nonetheless|instead|conversely|similarly|"
    "likewise|indeed|crucially|interestingly|surprisingly|ultimately|still|yet|further|next|"
    "then|subsequently|fortunately|unfortunately|in addition|in particular|in contrast|"
    "in response|in summary|in short|in practice|in turn|as a result|as such|on the other hand|"
    "on top of that|to this end|to that end|for this purpose|overall|altogether|"
    "remarkably|taken together|in general|here|equally importantly|more importantly|"
    "most importantly|"
    "more specifically|beyond that|apart from that"
)
CONNECTIVE = re.compile(rf"^(?:{CONNECTIVES})\s*,\s*", re.IGNORECASE)
# "In light of these limitations," "To address this challenge," "Motivated by this
# observation," "In this paper,": a lead-in that points back at the sentence before.
ANAPHORIC = re.compile(
    r"^(?:in|to|based on|building on|building upon|motivated by|inspired by|given|with|for|"
    r"from|following|guided by|driven by|against|under|unlike|beyond|despite|by|towards?|"
    r"along|on|as|after|because of|due to)\b[^,]{0,60}?\b(?:this|these|that|those|such|above|"
    r"aforementioned)\b[^,]{0,40},\s*",
    re.IGNORECASE,
)
DANGLING = (CONNECTIVE, ANAPHORIC)
OUR_METHOD = re.compile(
    r"\b([Oo]ur|[Tt]he proposed) (?:proposed |new |novel )?(method|approach|framework|"
    r"technique|model|system|algorithm|design|architecture|strategy|scheme)\b"
)
FIRST_PERSON = [
    (re.compile(r"\bwe\b"), "the authors"),
    (re.compile(r"\bWe\b"), "The authors"),
    (re.compile(r"\bour\b"), "their"),
    (re.compile(r"\bOur\b"), "Their"),
    (re.compile(r"\bus\b"), "them"),
]
IRREGULAR = {"are": "is", "have": "has", "do": "does", "go": "goes", "were": "was"}
# Verbs that take no -s after a third-person subject: modals ("we can" -> "EMS can", not
# "EMS cans") and irregular past forms ("we found" -> "EMS found").
UNCHANGED = frozenset({
    "can", "cannot", "could", "may", "might", "must", "shall", "should", "will", "would",
    "found", "made", "built", "took", "saw", "ran", "began", "gave", "wrote", "got", "led",
    "chose", "drew", "brought", "sought", "thought", "held", "kept", "left", "met", "set",
    "put", "read", "won", "grew", "knew", "became", "came", "did", "had", "was", "went", "lost",
    "spent", "taught", "understood", "undertook", "overcame", "fed", "fit",
})  # fmt: skip


def drop_openers(sentence: str) -> str:
    """'Secondly, we leverage X.' -> 'We leverage X.'; 'In light of these limitations, we
    propose Y.' -> 'We propose Y.' What the opener pointed back at isn't in the brief."""
    for _ in range(3):  # "However, in this paper, we …"
        for pattern in DANGLING:
            rest = pattern.sub("", sentence, count=1)
            if rest != sentence and len(rest.split()) >= 4:
                sentence = rest[:1].upper() + rest[1:]
                break
        else:
            return sentence
    return sentence


def clean_sentence(sentence: str, name: str | None) -> str:
    """A sentence of the paper's abstract, fit to stand alone in a brief about many papers."""
    sentence = drop_openers(strip_markup(sentence).strip())
    sentence = third_person(rename_method(sentence, name), name)
    sentence = re.sub(r"\s{2,}", " ", sentence)
    return sentence[:1].upper() + sentence[1:]


def rename_method(text: str, name: str | None) -> str:
    """'Our approach achieves …' -> 'Medusa achieves …', or 'The proposed approach …'."""

    def named(match: re.Match[str]) -> str:
        if name:
            return name
        proposed = f"the proposed {match.group(2)}"
        return proposed.capitalize() if match.group(1)[0].isupper() else proposed

    return OUR_METHOD.sub(named, text, count=1)


def third_person(sentence: str, name: str | None) -> str:
    """'We propose X; our results …' -> 'EMS proposes X; their results …'.

    An abstract speaks for itself; a brief speaks about several papers, so each
    sentence needs the paper as its subject. Without a name, or when the sentence names
    it already ("We propose EMS"), the subject is "the authors".
    """
    match = SUBJECT.match(sentence)
    if match:
        lead, who, adverbs, verb = match.groups()
        rest = sentence[match.end() :]
        renamed = name_first(lead, verb, rest, name)
        if renamed:
            sentence = renamed
        elif name is None or name in rest or name in lead:
            subject = "the authors" if who.lower() == "we" else "the paper"
            subject = subject if lead else subject.capitalize()
            sentence = f"{lead}{subject} {adverbs}{verb}{rest}"
        else:
            subject, verb = name, conjugate(verb) if who.lower() == "we" else verb
            sentence = f"{lead}{subject} {adverbs}{verb}{rest}"
    for pattern, replacement in FIRST_PERSON:
        sentence = pattern.sub(replacement, sentence)
    return sentence


def name_first(lead: str, verb: str, rest: str, name: str | None) -> str | None:
    """'We present Medusa, an efficient method …' -> 'Medusa is an efficient method …';
    'we propose SpeCache, which takes …' -> 'SpeCache takes …'. The sentence then says
    what the method is, with the method as its subject, and nothing is lost."""
    body = rest.lstrip()
    if not name or not body.startswith(name) or not STRONG_PROPOSAL.match(verb):
        return None
    after = body[len(name) :]
    described = re.match(r"\s*,\s*(an?|the)\s+", after)
    if described:
        return f"{lead}{name} is {described.group(1)} {after[described.end() :]}"
    which = re.match(r"\s*,\s*which\s+", after)
    if which:
        return f"{lead}{name} {after[which.end() :]}"
    return None


def conjugate(verb: str) -> str:
    verb = verb.lower()
    if verb in IRREGULAR:
        return IRREGULAR[verb]
    if verb in UNCHANGED or verb.endswith("ed"):
        return verb  # past tense: "we introduced" -> "X introduced"
    if re.search(r"[^aeiou]y$", verb):
        return verb[:-1] + "ies"
    if re.search(r"(s|sh|ch|x|z)$", verb):
        return verb + "es"
    return verb + "s"


def dangling(sentence: str) -> bool:
    """Does the sentence open by leaning on one the brief doesn't show?"""
    return any(p.match(sentence) for p in DANGLING)


def normalized(sentence: str) -> str:
    """What two sentences share when one is a repeat: words, without case or markers."""
    return " ".join(re.findall(r"[a-z0-9]+", re.sub(r"\[[\d,\s-]+\]", "", sentence.lower())))
