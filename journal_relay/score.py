"""Statistical risk score for sentences: a second opinion next to the rules (see docs/screening.md).

A multinomial logistic regression (softmax over none/self/others/danger) on simple features of one
normalised sentence: words, adjacent word pairs, pairs with one word between, negation scope (words
after not/never/no, up to a comma or the end of the sentence, get a ``NOT_`` prefix) and a marker for a
sentence without a first person.  Words come from the screener's own normaliser, so "k1ll", "kms" and
"sewerslide" read as the rules read them.  Pure Python; the weights are data (``screen_model.json``),
rebuilt with ``benchmarks/screen_train.py`` (multiple-instance style: see ``fit``).

The screener asks the model only about sentences that no rule found anything in (counted or discounted;
a discount that only says a rule's own requirement was not met does not count).  A sentence holding one
of the model's anchor words (curated words with a clear risk weight) is judged against ``threshold``;
one without, against the higher ``free_threshold``, or not at all when the model file sets none (the
built-in one sets it since round 5, at the cost of normalising every sentence).  Above its threshold the
sentence gets a ``model.<category>`` finding at ``medium``: digest only, never an alert.  An entry that
nothing flagged is then read as a whole (``Together``): several middling sentences of one risk class can
flag it between them.

Training (``fit``) is multiple-instance style: only the sentences of a risk entry that a cross-fitted
model finds most risk-like are taught as risk, not its ordinary ones.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from journal_relay.screen import Finding, Lexicon, Screening, _Entry

BUILTIN_MODEL = Path(__file__).with_name("screen_model.json")
CLASSES = ("none", "self", "others", "danger")
RISK = CLASSES[1:]
_NEGATORS = frozenset(("not", "never", "no", "nothing", "nobody", "nowhere", "neither", "nor", "without"))
_SCOPE_END = frozenset((",", ";", ":", "?", '"', "but", "and", "because", "so"))
_FIRST = frozenset(("i", "me", "my", "myself", "mine"))
_PUNCT = frozenset(',;:"()?')
# Left out of a finding's "words that weighed most": a therapist reads them as the reason, and "the",
# "is" or "to" explain nothing even when their weights tip the sum.
_FUNCTION = frozenset((
    "a", "an", "the", "and", "or", "but", "if", "so", "to", "of", "in", "on", "at", "for", "with", "by", "from",
    "up", "out", "as", "is", "am", "are", "was", "were", "be", "been", "being", "do", "does", "did", "have",
    "has", "had", "will", "would", "can", "could", "should", "it", "its", "this", "that", "these", "those",
    "there", "here", "then", "than", "just", "all", "any", "some", "very", "too", "also", "i", "me", "my",
    "you", "your", "we", "our", "us", "he", "him", "his", "she", "her", "they", "them", "their", "what",
    "which", "who", "when", "where", "how", "about", "into", "over", "after", "before", "again", "s", "t",
))


_PLAIN_BREAKS = _NEGATORS | _PUNCT | {"|"}  # with none of these, every word is its own feature, unmarked
# Kisses signing off ("love you all xx") and letters masked in quoted or redacted text ("Xxxxx" reads "xx") say
# nothing about risk; as features they taught the model that a goodbye's sign-off is one (round 14).
_KISSES = frozenset(("x", "xx", "xxx"))


def features(words: Sequence[str]) -> list[str]:
    """Features of one normalised sentence (the screener's tokens, punctuation included)."""
    if not _KISSES.isdisjoint(words):
        words = [w for w in words if w not in _KISSES]
    if _PLAIN_BREAKS.isdisjoint(words):
        # No negation scope and no punctuation to mark: the words, then each word with the next (in C).
        out = list(words)
        out.extend(map(" ".join, zip(words, words[1:], strict=False)))
        out.extend(a + " _ " + c for a, c in zip(words, words[2:], strict=False))
        if _FIRST.isdisjoint(words):
            out.append("#no_first_person")
        return out
    marked: list[str] = []
    neg = False
    first = False
    for w in words:
        if w in _PUNCT or w in _SCOPE_END:
            neg = False
            if w in _PUNCT:
                marked.append("|")
                continue
        if w in _FIRST:
            first = True
        if w in _NEGATORS:
            neg = True
            marked.append(w)
            continue
        marked.append("NOT_" + w if neg else w)
    out = [w for w in marked if w != "|"]
    out.extend(a + " " + b for a, b in zip(marked, marked[1:], strict=False) if a != "|" and b != "|")
    out.extend(a + " _ " + c for a, b, c in zip(marked, marked[1:], marked[2:], strict=False)
               if a != "|" and b != "|" and c != "|")
    if not first:
        out.append("#no_first_person")
    return out


@dataclass(frozen=True)
class Together:
    """An entry no rule and no single sentence flagged is still flagged when, for one risk class, the
    ``top`` highest of its distinct sentences' probabilities above ``floor`` add up to ``threshold``, and at
    least ``first_person`` of its sentences speak in the first person (a journal's voice: licences, bounce
    notices and newsletters have many middling sentences and hardly an "I").

    ``grow_after`` and ``grow`` (off when ``grow_after`` is 0): in an entry of more than ``grow_after``
    sentences with words, the threshold grows by ``grow`` times its value per ``grow_after`` sentences more,
    because every sentence of a long email is one more chance for middling ones to add up (round 15)."""

    floor: float
    threshold: float
    top: int = 3
    first_person: float = 0.2
    grow_after: int = 0
    grow: float = 0.0

    def voiced(self, first: int, spoken: int) -> bool:
        """Whether ``first`` of an entry's ``spoken`` sentences (those with words) are enough in the first person."""
        return first >= self.first_person * spoken

    def needed(self, spoken: int) -> float:
        """The threshold for an entry of ``spoken`` sentences with words."""
        if self.grow_after <= 0 or spoken <= self.grow_after:
            return self.threshold
        return self.threshold * (1 + self.grow * (spoken - self.grow_after) / self.grow_after)

    def reading(self, sentences: Sequence[tuple[Sequence[str], Sequence[float]]], spoken: int = 0
                ) -> tuple[float, int, list[int]] | None:
        """For an entry's sentences as (words, risk probabilities): the sum, the risk class and the indices of
        the sentences that added to it (highest first), for the class whose ``top`` highest probabilities
        above ``floor`` add up most, when that reaches the threshold for an entry of ``spoken`` sentences with
        words (see ``needed``); None otherwise.  A sentence repeated word for word counts once."""
        need = self.needed(spoken)
        first_at: dict[tuple[str, ...], int] = {}
        for i, (words, _probs) in enumerate(sentences):
            first_at.setdefault(tuple(words), i)
        distinct = list(first_at.values())
        best: tuple[float, int, list[int]] | None = None
        for k in range(3):
            idx = sorted((i for i in distinct if sentences[i][1][k] > self.floor),
                         key=lambda i: -sentences[i][1][k])[:self.top]
            total = sum(sentences[i][1][k] - self.floor for i in idx)
            if total >= need and (best is None or total > best[0]):
                best = (total, k, idx)
        return best


@dataclass(frozen=True)
class Long:
    """How a long entry is read: one of more than ``after`` sentences with words gives every middling sentence
    more chances, so in it a sentence with an anchor word must reach ``threshold`` and the entry is not read
    together (docs/screening.md, "Round 14": out of fold, long ordinary emails were flagged one time in two)."""

    after: int
    threshold: float

    def applies(self, spoken: int) -> bool:
        """Whether an entry of ``spoken`` sentences with words is a long one."""
        return spoken > self.after

    def anchored(self, threshold: float) -> float:
        """The threshold for a sentence with an anchor word in a long entry, for ``threshold`` in a short one."""
        return max(threshold, self.threshold)


@dataclass(frozen=True, eq=False)
class Model:
    bias: tuple[float, ...]  # per risk class, relative to none
    weights: Mapping[str, tuple[float, ...]]  # feature -> weight per risk class, relative to none
    threshold: float
    anchors: frozenset[str]  # normalised words; a sentence with none of them is not scored...
    source: str = "built-in"
    free_threshold: float | None = None  # ...unless this is set: then it is, against this (higher) threshold
    together: Together | None = None  # reading an entry's sentences together (see _together)
    # Added to each risk class's log-odds after training: how far each class is trusted (chosen by grouped
    # cross-validation, docs/screening.md "Round 10": out of fold, others ran cold).
    shift: tuple[float, ...] = (0.0, 0.0, 0.0)
    long: Long | None = None  # reading a long entry more strictly (off in the built-in model)
    start: tuple[float, ...] = field(init=False, repr=False)  # bias + shift, where every sentence's sum starts

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", tuple(b + s for b, s in zip(self.bias, self.shift, strict=True)))

    def logits(self, feats: Iterable[str]) -> list[float]:
        """Each risk class's score relative to none (the softmax's inputs)."""
        z = list(self.start)
        if len(z) == 3:  # (always, for a model trained here: the sums in locals, in the same order)
            z0, z1, z2 = z
            for w in map(self.weights.get, feats):
                if w is not None:
                    z0 += w[0]
                    z1 += w[1]
                    z2 += w[2]
            return [z0, z1, z2]
        get = self.weights.get
        for f in feats:
            w = get(f)
            if w is not None:
                z[0] += w[0]
                z[1] += w[1]
                z[2] += w[2]
        return z

    def probabilities(self, feats: Iterable[str]) -> tuple[float, ...]:
        """P(self), P(others), P(danger) for one sentence's features (softmax with none at 0)."""
        return _softmax(self.logits(feats))

    def threshold_for(self, words: Sequence[str], threshold: float | None = None) -> float | None:
        """The probability a sentence must reach: ``threshold`` (the model's own unless given), raised to
        ``free_threshold`` for a sentence without an anchor word; None when such a sentence is not judged."""
        th = self.threshold if threshold is None else threshold
        if self.anchors.isdisjoint(words):
            if self.free_threshold is None:
                return None
            th = max(th, self.free_threshold)
        return th

    def judge(self, words: Sequence[str], threshold: float | None = None) -> tuple[str, float, list[str]] | None:
        """(category, probability, the words that weighed most) if the sentence holds an anchor word and
        its most likely risk category reaches the threshold (the model's own unless given); a sentence
        without one is judged only if the model has a ``free_threshold``, and against it."""
        th = self.threshold_for(words, threshold)
        if th is None:
            return None
        feats = features(words)
        return self.verdict(words, feats, self.logits(feats), th)

    def verdict(self, words: Sequence[str], feats: Sequence[str], z: Sequence[float], th: float
                ) -> tuple[str, float, list[str]] | None:
        """``judge`` for a sentence whose features and logits are already worked out."""
        # A class's probability is at most the sigmoid of its logit, so a sentence whose logits all stay
        # below the threshold's log-odds cannot reach it: most sentences stop here, without exp().
        if max(z) < _log_odds(th):
            return None
        probs = _softmax(z)
        k = max(range(3), key=lambda i: probs[i])
        if probs[k] < th:
            return None
        return RISK[k], probs[k], self.weighed_most(words, feats, k)

    def weighed_most(self, words: Sequence[str], feats: Sequence[str], k: int) -> list[str]:
        """The (at most three) content words of a sentence that weighed most for risk class ``k``, in the
        sentence's order."""
        contrib: dict[str, float] = {}
        for f in feats:
            w = self.weights.get(f)
            if w is None or w[k] <= 0 or f.startswith("#"):
                continue
            for part in f.split(" "):
                if part == "_":  # a skip-pair's gap
                    continue
                part = part.removeprefix("NOT_")
                contrib[part] = contrib.get(part, 0.0) + w[k]
        content = [p for p in contrib if p not in _FUNCTION] or list(contrib)
        top = sorted(content, key=lambda p: -contrib[p])[:3]
        return [w for w in dict.fromkeys(words) if w in top]


def _softmax(z: Sequence[float]) -> tuple[float, ...]:
    """Softmax over the risk classes with none fixed at 0."""
    m = max(0.0, *z)
    e = [math.exp(v - m) for v in z]
    tot = math.exp(-m) + sum(e)
    return tuple(v / tot for v in e)


@lru_cache(maxsize=16)
def _log_odds(p: float) -> float:
    """log(p / (1 - p)), a hair lower so that rounding never skips a sentence that reaches p; -inf (no
    early stop) for a threshold of 0 or 1, which a rounded probability can still reach."""
    if not 0.0 < p < 1.0:
        return -math.inf
    return math.log(p / (1.0 - p)) - 1e-9


def _from_json(data: Mapping[str, object], source: str) -> Model:
    w = data["weights"]
    assert isinstance(w, dict)
    bias = data["bias"]
    assert isinstance(bias, list)
    anchors = data["anchors"]
    assert isinstance(anchors, list)
    th = data["threshold"]
    assert isinstance(th, (int, float))
    free = data.get("free_threshold")
    assert free is None or isinstance(free, (int, float))
    tog = data.get("together")
    assert tog is None or isinstance(tog, dict)
    together = None if tog is None else Together(**tog)
    shift = data.get("shift", [0.0] * len(bias))
    assert isinstance(shift, list) and len(shift) == len(bias)
    lng = data.get("long")
    assert lng is None or isinstance(lng, dict)
    return Model(bias=tuple(float(b) for b in bias), weights={k: tuple(float(x) for x in v) for k, v in w.items()},
                 threshold=float(th), anchors=frozenset(anchors), source=source,
                 free_threshold=None if free is None else float(free), together=together,
                 shift=tuple(float(x) for x in shift), long=None if lng is None else Long(**lng))


def load_model(path: Path | None = None) -> Model:
    """The model in ``path`` (a practice's own), or the built-in one."""
    if path is None:
        return _builtin()
    return _from_json(json.loads(Path(path).read_text(encoding="utf-8")), str(path))


@lru_cache(maxsize=1)
def _builtin() -> Model:
    return _from_json(json.loads(BUILTIN_MODEL.read_text(encoding="utf-8")), "built-in")


# --------------------------------------------------------------------------------------------------
# Second opinion inside the screener
# --------------------------------------------------------------------------------------------------

def unread(result: Screening) -> set[str]:
    """The sentences the model does not judge: those a rule flagged, and those a rule's finding was discounted
    in for what the sentence says (negated, someone else's, past, ...).  A rule's own unmet requirement
    ("context: nothing ... supports this reading") says only that the rule is unsure: such a sentence is
    judged, and so is one discounted as screen.STILL_JUDGED says."""
    from journal_relay.screen import STILL_JUDGED, UNSUPPORTED

    return {f.sentence for f in result.flags} | {
        f.sentence for f in result.discounted
        if f.context[0] not in UNSUPPORTED and not f.context[0].startswith(STILL_JUDGED)}


def second_opinion(text: str, result: Screening, lex: Lexicon, model: Model,
                   threshold: float | None = None, exhaustive: bool = False, entry: _Entry | None = None
                   ) -> Screening:
    """Add ``model.<category>`` findings for sentences no rule found anything in.  ``exhaustive`` (tests):
    every sentence is tokenised, without the raw-word shortcut; the result must be the same.  ``entry``:
    what the screener already worked out about this text (its folding, raw words, sentences and
    normalised sentences), read instead of being worked out again."""
    from journal_relay.screen import Finding, Screening, _entry, _find_words, _sentences

    if entry is None:
        entry = _entry(text)
    folded = entry.folded
    exhaustive = exhaustive or model.free_threshold is not None  # every sentence is a candidate
    present = _anchor_forms(model, lex).intersection(entry.words)
    weird = bool(entry.weird_at)  # (exactly when _WEIRD_RE finds something in the entry)
    if not present and not exhaustive and not weird:
        return result  # no sentence can hold an anchor word
    whole = entry.sents
    # (start, end, index among the entry's sentences or -1) of the sentences to score.
    sents: list[tuple[int, int, int]]
    if exhaustive or weird or _QUOTING_RE.search(folded) is not None:
        if whole is None:
            whole = _sentences(text, folded)
        sents = [(s.start, s.end, i) for i, s in enumerate(whole) if not s.quoted]
    else:
        # Only the sentences holding an anchor word are kept.  With no quoting in the entry, lines are
        # independent and none of its sentences is quoted: when the screener has not split the entry, only
        # the lines with an anchor word are split, which gives the same sentences.
        at = sorted({p for w in present for p in _find_words(w, entry.letters)})
        found: dict[tuple[int, int, int], None] = {}
        if whole is not None:
            starts, ends = whole.starts, whole.ends
            for p in at:
                k = bisect.bisect_right(starts, p) - 1
                if k >= 0 and p < ends[k]:
                    found[(starts[k], ends[k], k)] = None
        else:
            line_end = -1
            spans: list[tuple[int, int]] = []
            for p in at:
                if p > line_end:  # a new line: split it once
                    a = folded.rfind("\n", 0, p) + 1
                    line_end = folded.find("\n", p)
                    line_end = len(folded) if line_end < 0 else line_end
                    spans = [(a + s.start, a + s.end) for s in _sentences(text[a:line_end], folded[a:line_end])]
                k = bisect.bisect_right(spans, (p, len(folded))) - 1
                if k >= 0 and spans[k][0] <= p < spans[k][1]:
                    found[(*spans[k], -1)] = None
        sents = list(found)
    seen = unread(result)
    added: list[Finding] = []
    together = model.together if not result.flags else None
    # Each sentence's words (None: worked out when needed, for a sentence not skipped).  A model that reads long
    # entries apart needs them all first, to count the sentences that have words.
    sent_words: list[tuple[int, int, int, list[str] | None]] = [(start, end, si, None) for start, end, si in sents]
    if exhaustive and model.long is not None:
        sent_words = [(a, b, si, _sentence_words(entry, lex, folded, a, b, si)) for a, b, si, _w in sent_words]
        if model.long.applies(sum(1 for *_x, w in sent_words if w)):
            together = None
            threshold = model.long.anchored(model.threshold if threshold is None else threshold)
    # Sentences that may count towards reading the entry together: (sentence, probabilities, words, features)
    pooled: list[tuple[str, tuple[float, ...], Sequence[str], list[str]]] = []
    floor_odds = _log_odds(together.floor) if together is not None else math.inf
    spoken = first = 0  # sentences with words, and those in the first person (for ``together``)
    for start, end, si, known in sent_words:
        sentence = text[start:end].strip()
        if sentence in seen and together is None:
            continue
        words = known if known is not None else _sentence_words(entry, lex, folded, start, end, si)
        if together is not None and words:
            spoken += 1
            first += not _FIRST.isdisjoint(words)
        if sentence in seen:
            continue
        th = model.threshold_for(words, threshold)
        if th is None:
            continue
        feats = features(words)
        z = model.logits(feats)
        got = model.verdict(words, feats, z, th)
        if got is not None:
            cat, prob, top = got
            added.append(Finding(cat, "medium", f"model.{cat}", " ".join(top), sentence,
                                 ("kind: statistical", f"statistical: p={prob:.2f} (threshold {th:.2f})")))
        elif together is not None and words and max(z) >= floor_odds:
            pooled.append((sentence, _softmax(z), words, feats))
    if not added and together is not None and pooled and together.voiced(first, spoken):
        added = _together(model, pooled, together, spoken)
    if not added:
        return result
    return Screening(flags=result.flags + tuple(added), discounted=result.discounted)


def _sentence_words(entry: _Entry, lex: Lexicon, folded: str, start: int, end: int, si: int) -> list[str]:
    """A sentence's normalised words: those the rules' pass worked out (``si``: its index among the entry's
    sentences, or -1), or worked out here."""
    normed = entry.done.get(si) if si >= 0 else None
    return normed.words if normed is not None else lex.norm.words(folded[start:end])


def _together(model: Model, pooled: Sequence[tuple[str, tuple[float, ...], Sequence[str], list[str]]],
              together: Together, spoken: int) -> list[Finding]:
    """Findings for an entry whose risk is spread over several sentences, none enough alone ("I gave the
    dog to my sister. I wrote to everyone I love. Tomorrow I'll finally be free."): for the risk class
    whose ``top`` highest sentence probabilities above the floor add up most, when they reach the
    threshold (``Together.reading``), one finding per sentence that added to it, in the entry's order.
    Chosen by grouped cross-validation (docs/screening.md, "Round 7")."""
    from journal_relay.screen import Finding

    got = together.reading([(words, probs) for _s, probs, words, _f in pooled], spoken)
    if got is None:
        return []
    total, k, idx = got
    cat = RISK[k]
    others = len(idx) - 1
    note = (f"statistical: read together with {others} other sentence{'s' if others != 1 else ''} of this entry "
            f"({total:.2f} above {together.floor:.2f}, threshold {together.needed(spoken):.2f})")
    return [Finding(cat, "medium", f"model.{cat}", " ".join(model.weighed_most(words, feats, k)), sentence,
                    ("kind: statistical", f"statistical: p={probs[k]:.2f}", note))
            for sentence, probs, words, feats in (pooled[i] for i in sorted(idx))]


_QUOTING_RE = re.compile(r"^\s*(?:>|\||on .{0,200}wrote:|-{2,} ?original message|from: )", re.MULTILINE)
_FORMS: dict[tuple[int, int], frozenset[str]] = {}


def _anchor_forms(model: Model, lex: Lexicon) -> frozenset[str]:
    """Raw words that can become an anchor: the anchors and the slang/misspellings the normaliser maps to
    one (leetspeak and separators are caught by _ODD_RE)."""
    key = (id(model), id(lex))
    got = _FORMS.get(key)
    if got is None:
        from journal_relay.screen import _NT_BASE, _SUFFIX
        forms = set(model.anchors)
        forms.update(raw for raw, out in lex.norm.direct.items() if not model.anchors.isdisjoint(out))
        # Two-word slang: "any more" -> "anymore".
        forms.update(word for pair, out in lex.norm.bigrams.items() if not model.anchors.isdisjoint(out)
                     for word in pair)
        # Contraction pieces: "won't" -> "will not", "he'll" -> "he will", "i'm" -> "i am".
        forms.update(base for base, full in _NT_BASE.items() if full in model.anchors)
        forms.update(suf for suf, full in _SUFFIX.items() if full[0] in model.anchors)
        if "is" in model.anchors:
            forms.add("s")
        got = _FORMS[key] = frozenset(x for f in forms for x in _WORD_RE.findall(f)) | frozenset(forms)
    return got


_WORD_RE = re.compile(r"[a-z]+")


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------

def sentence_words(text: str, lex: Lexicon) -> list[list[str]]:
    """The normalised words of each non-quoted sentence of an entry."""
    from journal_relay.screen import _fold, _sentences

    folded = _fold(text)
    return [lex.norm.words(folded[s.start:s.end]) for s in _sentences(text, folded) if not s.quoted]


def examples(items: Iterable[Mapping[str, str]], lex: Lexicon) -> list[tuple[list[str], int]]:
    """Training examples: one per sentence, labelled with its entry's label."""
    out = []
    for it in items:
        y = CLASSES.index(it["label"])
        for words in sentence_words(it["text"], lex):
            if words:
                out.append((features(words), y))
    return out


def fit(items: Sequence[Mapping[str, Any]], lex: Lexicon, *, l2: float = 0.003, epochs: int = 10,
        mil_rounds: int = 1, mil_keep: float = 0.5, seeds: Sequence[int] = (0,), average: int = 5,
        workers: int = 1, order: str = "content", min_count: int = 1
        ) -> tuple[list[float], dict[str, list[float]], list[tuple[list[str], int]]]:
    """Train on labelled entries, multiple-instance style: a risk entry says that *some* of its sentences
    are risk, not all of them.  After a first fit, in every risk entry of more than one sentence only the
    sentences whose probability of the entry's category is at least ``mil_keep`` times the entry's best
    are kept as risk; the others are left out of the next fit (``mil_rounds`` times).  The probabilities
    come from cross-fitting (a model trained on the other half of the entries, halves split by a hash of each
    entry's text, scores each half), because a model scores its own training sentences all alike.  Every fit is one
    run per seed in ``seeds`` (the order the examples are shown in), their weights averaged, each run
    averaging its iterates over its last ``average`` epochs (see ``train``).  An item's optional "weight"
    (default 1) scales the loss of each of its sentences.  The runs of one fit go to ``workers`` processes
    (the same result as one by one).  ``order``: see ``train`` ("shuffle" also splits the halves by the
    entries' places, even and odd).  ``min_count``: see ``train``.  Returns (bias, weights, the examples
    trained on at the end).  Deterministic."""
    data: list[tuple[list[str], int]] = []
    owner: list[int] = []
    half: list[int] = []  # which cross-fitting half an item's sentences are in (by its text: see train's order)
    base: list[float] = []  # an item's own weight ("weight", default 1), for each of its sentences
    for e, it in enumerate(items):
        y = CLASSES.index(it["label"])
        h = hashlib.blake2b(it["text"].encode(), digest_size=1).digest()[0] % 2 if order == "content" else e % 2
        for words in sentence_words(it["text"], lex):
            if words:
                data.append((features(words), y))
                owner.append(e)
                half.append(h)
                base.append(float(it.get("weight", 1.0)))
    keep = list(base)
    for _ in range(mil_rounds):
        jobs = []
        for h in (0, 1):
            idx = [i for i in range(len(data)) if half[i] != h]
            jobs += [([data[i] for i in idx], [keep[i] for i in idx], seed) for seed in seeds]
        runs = _train_runs(jobs, l2=l2, epochs=epochs, average=average, workers=workers, order=order,
                           min_count=min_count)
        halves = []
        for h in (0, 1):
            b, w = _mean(runs[h * len(seeds):(h + 1) * len(seeds)])
            halves.append(Model(bias=tuple(b), weights={f: tuple(v) for f, v in w.items()}, threshold=1.0,
                                anchors=frozenset()))
        risk: dict[int, list[tuple[int, float]]] = {}
        for i, (feats, y) in enumerate(data):
            if y:
                risk.setdefault(owner[i], []).append((i, halves[half[i]].probabilities(feats)[y - 1]))
        keep = list(base)
        for sents in risk.values():
            if len(sents) > 1:
                top = max(p for _i, p in sents)
                for i, p in sents:
                    if p < mil_keep * top:
                        keep[i] = 0.0
    bias, weights = _mean(_train_runs([(data, keep, seed) for seed in seeds], l2=l2, epochs=epochs,
                                      average=average, workers=workers, order=order, min_count=min_count))
    return bias, weights, [d for d, k in zip(data, keep, strict=True) if k]


_Job = tuple[Sequence[tuple[list[str], int]], Sequence[float], int]  # (examples, their weights, seed)


def _train_job(job: _Job, *, l2: float, epochs: int, average: int, order: str, min_count: int = 1
               ) -> tuple[list[float], dict[str, list[float]]]:
    data, sample_weights, seed = job
    return train(data, l2=l2, epochs=epochs, seed=seed, sample_weights=sample_weights, average=average, order=order,
                 min_count=min_count)


def _train_runs(jobs: Sequence[_Job], *, l2: float, epochs: int, average: int, workers: int, order: str = "content",
                min_count: int = 1) -> list[tuple[list[float], dict[str, list[float]]]]:
    """``train`` once per job, in order; in up to ``workers`` processes when there is more than one job
    (each run is deterministic on its own, so the results are the same either way)."""
    run = partial(_train_job, l2=l2, epochs=epochs, average=average, order=order, min_count=min_count)
    if workers <= 1 or len(jobs) <= 1:
        return [run(job) for job in jobs]
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return list(pool.map(run, jobs))


def _mean(runs: Sequence[tuple[list[float], dict[str, list[float]]]]) -> tuple[list[float], dict[str, list[float]]]:
    """The mean of several runs' weights (the same features in every run: they saw the same examples)."""
    if len(runs) == 1:
        return runs[0]
    k = len(runs)
    bias = [sum(r[0][c] for r in runs) / k for c in range(3)]
    weights = {f: [sum(r[1][f][c] for r in runs) / k for c in range(3)] for f in runs[0][1]}
    return bias, weights


def lexicon_items(lex: Lexicon, counter_weight: float = 1.0) -> list[dict[str, Any]]:
    """The lexicon's own labelled sentences: rule examples (the rule's category), counter-examples (none:
    hard negatives, each with ``counter_weight`` as its training weight) and safety examples."""
    out: list[dict[str, Any]] = [{"label": r.category, "text": t} for r in lex.rules
                                 if not r.modifier and r.category in RISK for t in r.examples]
    out += [{"label": "none", "text": t, **({"weight": counter_weight} if counter_weight != 1.0 else {})}
            for r in lex.rules for t in r.counter_examples]
    out += [{"label": ex.category, "text": ex.text} for ex in lex.safety]
    return out


def content_order(keys: Sequence[str], seed: int, epoch: int) -> list[int]:
    """The indices of ``keys`` (one per example) in the order an epoch shows them: by a hash of the key with the
    seed and epoch, the index breaking ties, so one example added or removed leaves the others' order as it was."""
    salt = f"{seed}/{epoch}|".encode()
    return sorted(range(len(keys)), key=lambda i: (hashlib.blake2b(salt + keys[i].encode(), digest_size=8).digest(), i))


def train(data: Sequence[tuple[list[str], int]], *, l2: float = 0.01, epochs: int = 30, rate: float = 0.5,
          seed: int = 0, min_count: int = 1, sample_weights: Sequence[float] | None = None,
          average: int = 0, order: str = "content") -> tuple[list[float], dict[str, list[float]]]:
    """Softmax regression by AdaGrad over a seeded order (deterministic).  ``order`` "content": each example's
    place in an epoch comes from a hash of its features, label, seed and epoch, so that adding or removing one
    leaves the others' order as it was (round 10); "shuffle": a seeded shuffle of the list (before).
    Returns (bias, weights), both per risk class and relative to none.  ``sample_weights`` scale each
    example's loss (default 1).  ``average``: return the mean of the iterates over the last that many
    epochs (Polyak averaging, one iterate per example seen) instead of the last iterate; 0: the last
    iterate."""
    counts: dict[str, int] = {}
    for feats, _y in data:
        for f in set(feats):
            counts[f] = counts.get(f, 0) + 1
    names = sorted(f for f, c in counts.items() if c >= min_count)
    index = {f: j for j, f in enumerate(names)}
    rows = [(sorted({index[f] for f in feats if f in index}), y) for feats, y in data]
    sw = [1.0] * len(rows) if sample_weights is None else [float(s) for s in sample_weights]
    n = len(names)
    # One list per class (unrolled below: the same arithmetic, in the same order, as a loop over classes).
    w0, w1, w2, w3 = [0.0] * n, [0.0] * n, [0.0] * n, [0.0] * n
    g0, g1, g2, g3 = [1e-8] * n, [1e-8] * n, [1e-8] * n, [1e-8] * n
    b, gb = [0.0] * 4, [1e-8] * 4
    seq = list(range(len(rows)))
    rng = random.Random(seed)
    # (each example's place in an epoch's order comes from its own content, so that adding or removing one
    # leaves the others' order as it was: a lexicon edit then moves the model by what it teaches, not by a
    # reshuffle of everything)
    keys = [" ".join(feats) + f"|{y}" for feats, y in data] if order == "content" else []
    exp, sqrt = math.exp, math.sqrt
    # Iterate averaging, kept lazily: a weight's running sum is brought up to date only when the weight
    # changes (it held its value since step last[j]); the bias changes at every step.
    start = max(0, epochs - average) if average > 0 else epochs
    a0, a1, a2, a3 = [0.0] * n, [0.0] * n, [0.0] * n, [0.0] * n
    last = [0] * n
    ab = [0.0] * 4
    b_start = list(b)
    step = 0
    for epoch in range(epochs):
        if order == "content":
            seq = content_order(keys, seed, epoch)
        else:
            rng.shuffle(seq)
        avg = epoch >= start
        if epoch == start:
            b_start = list(b)
        for i in seq:
            cols, y = rows[i]
            s = sw[i]
            if s <= 0.0:
                continue
            if avg:
                step += 1
                for j in cols:
                    c = step - last[j]
                    a0[j] += c * w0[j]
                    a1[j] += c * w1[j]
                    a2[j] += c * w2[j]
                    a3[j] += c * w3[j]
                    last[j] = step
            z0, z1, z2, z3 = b
            for j in cols:
                z0 += w0[j]
                z1 += w1[j]
                z2 += w2[j]
                z3 += w3[j]
            m = max(z0, z1, z2, z3)
            e0, e1, e2, e3 = exp(z0 - m), exp(z1 - m), exp(z2 - m), exp(z3 - m)
            tot = e0 + e1 + e2 + e3
            d0 = e0 / tot - (1.0 if y == 0 else 0.0)
            d1 = e1 / tot - (1.0 if y == 1 else 0.0)
            d2 = e2 / tot - (1.0 if y == 2 else 0.0)
            d3 = e3 / tot - (1.0 if y == 3 else 0.0)
            if s != 1.0:
                d0, d1, d2, d3 = s * d0, s * d1, s * d2, s * d3
            for k, d in enumerate((d0, d1, d2, d3)):
                gb[k] += d * d
                b[k] -= rate * d / sqrt(gb[k])
            for j in cols:
                w = w0[j]
                d = d0 + l2 * w
                g = g0[j] = g0[j] + d * d
                w0[j] = w - rate * d / sqrt(g)
                w = w1[j]
                d = d1 + l2 * w
                g = g1[j] = g1[j] + d * d
                w1[j] = w - rate * d / sqrt(g)
                w = w2[j]
                d = d2 + l2 * w
                g = g2[j] = g2[j] + d * d
                w2[j] = w - rate * d / sqrt(g)
                w = w3[j]
                d = d3 + l2 * w
                g = g3[j] = g3[j] + d * d
                w3[j] = w - rate * d / sqrt(g)
            if avg:
                ab[0] += b[0]
                ab[1] += b[1]
                ab[2] += b[2]
                ab[3] += b[3]
    if step:
        # The iterates from the start of the window to the end: step + 1 of them.  A weight's sum lacks the
        # iterates since it last changed; the bias's lacks the one at the start.
        total = step + 1
        for j in range(n):
            c = total - last[j]
            w0[j] = (a0[j] + c * w0[j]) / total
            w1[j] = (a1[j] + c * w1[j]) / total
            w2[j] = (a2[j] + c * w2[j]) / total
            w3[j] = (a3[j] + c * w3[j]) / total
        b = [(ab[k] + b_start[k]) / total for k in range(4)]
    bias = [b[k] - b[0] for k in (1, 2, 3)]
    rel = {f: [w1[j] - w0[j], w2[j] - w0[j], w3[j] - w0[j]] for j, f in enumerate(names)}
    return bias, rel


BUILTIN_ANCHORS = Path(__file__).with_name("screen_anchors.txt")


def read_anchors(path: Path = BUILTIN_ANCHORS) -> frozenset[str]:
    """The curated anchor words: whitespace-separated, '#' starts a comment."""
    return frozenset(w for line in path.read_text(encoding="utf-8").splitlines()
                     for w in line.partition("#")[0].split())


def to_json(bias: Sequence[float], weights: Mapping[str, Sequence[float]], threshold: float,
            anchor_weight: float, data: Sequence[tuple[list[str], int]], anchor_share: float = 0.75,
            keep: float = 0.02, trained_on: Sequence[str] = (),
            curated: frozenset[str] | None = None) -> dict[str, object]:
    """Compact model data: weights rounded to 3 places, features whose weights are all below ``keep``
    dropped.  Anchors: the ``curated`` words when given (see screen_anchors.txt); otherwise single words
    (negated or not) with a weight of at least ``anchor_weight`` for a risk class, seen in at least two
    risk sentences and at least ``anchor_share`` of whose sentences are risk sentences."""
    w = {f: [round(x, 3) for x in v] for f, v in sorted(weights.items()) if max(abs(x) for x in v) >= keep}
    risk: dict[str, int] = {}
    total: dict[str, int] = {}
    for feats, y in data:
        for f in set(feats):
            if " " in f or f.startswith("#"):
                continue
            f = f.removeprefix("NOT_")
            total[f] = total.get(f, 0) + 1
            if y:
                risk[f] = risk.get(f, 0) + 1
    learned = {f.removeprefix("NOT_") for f, v in w.items()
               if " " not in f and not f.startswith("#") and max(v) >= anchor_weight}
    anchors = sorted(curated if curated is not None else
                     learned & {f for f, n in risk.items() if n >= 2 and n >= anchor_share * total[f]})
    return {"about": "journal_relay statistical second opinion (softmax regression; weights relative to none)",
            "classes": list(RISK), "threshold": threshold, "trained_on": list(trained_on),
            "bias": [round(x, 3) for x in bias], "anchors": anchors, "weights": w}
