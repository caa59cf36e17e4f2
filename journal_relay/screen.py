"""Screen stage: text -> explained risk findings (pure, no I/O beyond loading the lexicon).

Pipeline for one entry (see docs/screening.md):

1. Fold the text (lower-case; accents, homoglyphs and zero-width characters folded).
2. A cheap first pass over the raw entry (its runs of a-z, looked up as sets in C) finds the raw words
   that can become a trigger (slang and contraction pieces included), raw word pairs for two-word
   triggers and two-word slang (within two words), and obfuscated stretches.  An entry with none of
   them is done; otherwise it is split into sentences (lines quoted from an earlier message, "> ...",
   are marked as quoted) and only the sentences holding them are candidates.  Other sentences are
   never tokenised.
3. Candidate sentences are tokenised with normalisation: contractions expanded, slang mapped
   ("kms" -> "kill myself"), leetspeak and separators undone ("k1ll", "s.u.i.c.i.d.e"), repeated
   letters collapsed and common misspellings of the core stems corrected (cached per token).  Where each
   word stands in the sentence is worked out only for a sentence with a match.
4. A trigger index (word or adjacent word pair -> rules) selects the candidate rules, so the cost per
   sentence does not grow with the size of the lexicon.  A pattern is scanned only if the sentence has
   the words it needs: from each regex the lexicon's loading works out sets of whole words of which every
   match holds one each ("word clauses", _word_clauses), checked with C-level set operations (see
   _Gate); the same gates the exceptions and the sentence-level context patterns.  Which of a rule's
   patterns pass depends only on which of its clause words the sentence holds: the answer is kept per
   such combination (_Gate.passing), as the same few come back sentence after sentence.
5. Every match is checked against its context: rule exceptions (idioms, double meanings), negation
   scope, grammatical person, reported speech and media, past resolved history, hypotheticals and the
   therapist's own question quoted back.  A finding that fails a check is kept as a low-level
   ``discounted`` note carrying the reason.
6. Severity is combined per category over the whole entry: ideation plus means, intent, a time or
   preparation raises the top finding one level for each.  Modifiers (means, intent, time) are looked for only
   when the entry has a flag, and only until the first one of each kind is found.

Nothing here logs or prints text.
"""

from __future__ import annotations

import bisect
import json
import re
import re._constants as _sre
import re._parser as _sre_parse
import tomllib
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache, partial
from itertools import accumulate, chain
from pathlib import Path
from typing import Any, TypeAlias

SEVERITIES = ("low", "medium", "high", "urgent")  # ascending
_RANK = {s: i for i, s in enumerate(SEVERITIES)}
CATEGORIES = ("self", "others", "danger")
# What a rule finds.  Flags have a kind; modifiers (which never flag on their own) have one of the
# escalating kinds and raise the severity of a flag found elsewhere in the same entry.
KINDS = (
    "ideation", "passive", "method", "plan", "injury", "preparation",  # self
    "threat", "intrusive",  # others
    "violence", "fear",  # danger
    "means", "intent", "time", "distress",
)
ESCALATORS = ("means", "intent", "time", "preparation")
PERSONS = ("first", "agent", "any")

BUILTIN_LEXICON = Path(__file__).with_name("lexicon.toml")


class LexiconError(ValueError):
    """The lexicon or a practice file is unusable; the message says what to fix (one line)."""


@dataclass(frozen=True)
class Finding:
    category: str  # "self" | "others" | "danger"
    severity: str  # one of SEVERITIES
    rule: str  # rule id from the lexicon
    match: str  # the words matched
    sentence: str  # the sentence they stand in
    context: tuple[str, ...] = ()  # what was considered, e.g. ("negation: not",)


@dataclass(frozen=True)
class Screening:
    flags: tuple[Finding, ...]  # findings that count as risk
    discounted: tuple[Finding, ...] = ()  # negated / idiom / third person / past: shown as notes

    @property
    def top_severity(self) -> str | None:
        if not self.flags:
            return None
        return max((f.severity for f in self.flags), key=SEVERITIES.index)

    @property
    def top_category(self) -> str | None:
        """Category of the most severe flag (the first one on a tie), or None."""
        if not self.flags:
            return None
        best = max(range(len(self.flags)), key=lambda i: (SEVERITIES.index(self.flags[i].severity), -i))
        return self.flags[best].category

    def reaches(self, severity: str) -> bool:
        top = self.top_severity
        return top is not None and SEVERITIES.index(top) >= SEVERITIES.index(severity)


class Pattern:
    """A lexicon regular expression, compiled the first time it is needed.

    The built-in lexicon holds about 2,000 of them, and compiling them all (with the word analysis of
    _gate) took 6 seconds at start-up on a slow machine: the ``screen`` command paid it before reading a
    line, and the service in each of its processes.  Most rules are never a candidate in a given run.
    A practice file's patterns are compiled when it is loaded, so a bad one is refused then.
    """

    __slots__ = ("pattern", "_rx")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._rx: re.Pattern[str] | None = None

    def compiled(self) -> re.Pattern[str]:
        rx = self._rx
        if rx is None:
            rx = self._rx = re.compile(self.pattern)
        return rx

    def search(self, text: str, pos: int = 0) -> re.Match[str] | None:
        return self.compiled().search(text, pos)

    def __repr__(self) -> str:
        return f"Pattern({self.pattern!r})"


@dataclass(frozen=True, eq=False)
class Rule:
    id: str
    category: str
    severity: str
    kind: str
    triggers: tuple[str, ...]
    patterns: tuple[Pattern, ...]
    exceptions: tuple[Pattern, ...] = ()  # idioms / double meanings overlapping the match
    unless: tuple[Pattern, ...] = ()  # anywhere in the sentence: discount as idiom/other use
    person: str = "first"
    negatable: bool = True
    modifier: bool = False
    description: str = ""
    examples: tuple[str, ...] = ()
    counter_examples: tuple[str, ...] = ()
    source: str = "built-in"
    # Searched in the whole lower-cased entry: the rule counts only if one matches (e.g. a weapon
    # mentioned in another sentence for "I'm going to use it on him").
    entry_requires: tuple[Pattern, ...] = ()
    requires: tuple[Pattern, ...] = ()  # the same, in the normalised sentence (before or after the match)
    # Its _Gate, once worked out (see _gate): kept with the rule, so a practice file's lexicon, which shares the
    # built-in rules (and a re-weighted copy, made by dataclasses.replace, shares the list), works it out once.
    gate: list[_Gate] = field(default_factory=list, repr=False, compare=False)


@dataclass(frozen=True)
class SafetyExample:
    text: str
    category: str
    min_severity: str


@dataclass(frozen=True, eq=False)
class Lexicon:
    rules: tuple[Rule, ...]
    index: Mapping[str, tuple[int, ...]]  # trigger token -> rule positions
    norm: _Normaliser
    ctx: _Context
    safety: tuple[SafetyExample, ...] = ()
    sources: tuple[str, ...] = ()
    # Built by _assemble: flagging rules and modifiers are indexed and pre-checked separately, because
    # modifiers only matter once an entry has a flag.
    rule_index: Mapping[str, tuple[int, ...]] = field(default_factory=dict, repr=False)
    mod_index: Mapping[str, tuple[int, ...]] = field(default_factory=dict, repr=False)
    pre_rules: _Prefilter | None = field(default=None, repr=False)
    pre_mods: _Prefilter | None = field(default=None, repr=False)
    # Two-word triggers as word pairs: (first, second) -> rule positions (those of rule_index / mod_index)
    rule_pairs: Mapping[tuple[str, str], tuple[int, ...]] = field(default_factory=dict, repr=False)
    mod_pairs: Mapping[tuple[str, str], tuple[int, ...]] = field(default_factory=dict, repr=False)
    all_keys: frozenset[str] = field(default=frozenset(), repr=False)  # pre_rules' and pre_mods' keys
    # pre_rules' and pre_mods' pairs and their first words: an entry's word pairs are looked up once for both
    all_pairs: frozenset[tuple[str, str]] = field(default=frozenset(), repr=False)
    all_firsts: frozenset[str] = field(default=frozenset(), repr=False)
    mod_rules_of: Mapping[str, frozenset[int]] = field(default_factory=dict, repr=False)  # raw word -> modifiers

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)


# --------------------------------------------------------------------------------------------------
# Character folding and normalisation
# --------------------------------------------------------------------------------------------------

_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_HOMOGLYPHS = {
    # Cyrillic and Greek letters that look like Latin ones.
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s",
    "к": "k", "м": "m", "т": "t", "н": "h", "в": "b", "ο": "o", "ι": "i", "κ": "k", "α": "a", "ε": "e",
    "ß": "s", "ı": "i", "ł": "l", "ø": "o", "đ": "d",
    "\u2018": "'", "\u2019": "'", "\u201b": "'", "\u02bc": "'", "`": "'", "\u00b4": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
}


class _FoldMap(dict):  # type: ignore[type-arg]
    """str.translate table folding any character to at most one lower-case ASCII-ish character."""

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        if ch in _ZERO_WIDTH:
            out = "\u00b7"  # joiner inside a word: removed by the tokeniser
        elif ch.lower() in _HOMOGLYPHS:
            out = _HOMOGLYPHS[ch.lower()]
        elif ch.isspace():
            out = " " if ch not in "\n\r\u2028\u2029\x0b\x0c\x85" else "\n"
        else:
            decomposed = unicodedata.normalize("NFKD", ch)
            base = "".join(c for c in decomposed if not unicodedata.combining(c))
            out = base.lower()[:1] if base else " "
            if not out or (not out.isascii() and not out.isalnum()):
                out = " "
        self[code] = out
        return out


_FOLD = _FoldMap()


def _fold(text: str) -> str:
    """Lower-case and fold; the result has exactly the length of ``text`` (offsets are shared)."""
    if text.isascii():
        return text.lower()
    folded = text.translate(_FOLD)
    if len(folded) != len(text):  # defensive: a mapping must never change the length
        folded = "".join((_FOLD[ord(c)] or " ")[:1] for c in text)
    return folded


# A token: letters/digits with separators, leetspeak symbols and apostrophes allowed *inside* it,
# or one punctuation mark that matters for scope (comma, quote, question mark, dash, ...).
# (Written as runs of word characters with joiners between them, rather than one character at a time,
# so the regex engine takes each run in one tight loop.)
_TOKEN_RE = re.compile(
    r"[a-z0-9@$\u00b7][a-z0-9@$\u00b7]*(?:['*!|.\-_~+](?=[a-z0-9@$*\u00b7])[a-z0-9@$\u00b7]*)*\*?"
    r"|[,;:\"()?]|(?<=\s)[-\u2013\u2014](?=\s)|[\u2013\u2014]"
    r"|[^\W\d_][^\W_]*(?:'(?=[^\W_])[^\W_]*)*"
)


_GROUP = re.Match.group  # (mapped over match objects in C instead of a comprehension)
_SPAN = re.Match.span


class _LettersMap(dict):  # type: ignore[type-arg]
    """str.translate table keeping a-z and turning everything else into a space."""

    def __missing__(self, code: int) -> str:
        out = self[code] = chr(code) if 97 <= code <= 122 else " "
        return out


_LETTERS = _LettersMap()


def _raw_words(folded: str) -> list[str]:
    """The maximal runs of a-z (what ``re.findall("[a-z]+")`` gives, about three times faster)."""
    return folded.translate(_LETTERS).split()


def _letters(folded: str) -> str:
    """``folded`` with every character but a-z a space, and a space added at both ends: a raw word ``w``
    starts at ``i`` in ``folded`` exactly where ``" w "`` starts at ``i`` here."""
    return f" {folded.translate(_LETTERS)} "


# Cheap looks before the full _WEIRD_RE: characters that only leetspeak and separators use.
_ODD_RE = re.compile(r"[0-9@$|*\u00b7]")
_BANG_RE = re.compile(r"[a-z]![a-z]")
# Obfuscation that the word-set check cannot see: leet inside a word, tripled letters, spaced letters.
_WEIRD_RE = re.compile(
    r"[a-z][0-9@$!*|\u00b7][a-z]|[@$][a-z]{2}|[a-z]{2}[0-9]|([a-z])\1\1"
    r"|(?<![a-z0-9])(?:[a-z0-9@$][ .\-_*~]){2,}[a-z0-9@$](?![a-z0-9])"
)
_WEIRD_ODD_RE = re.compile(r"[a-z][0-9@$!*|\u00b7][a-z]|[@$][a-z]{2}|[a-z]{2}[0-9]")
# The part of _WEIRD_RE that needs none of those characters: tripled and spaced letters.  Tripled and
# spaced letters cannot overlap, so the two are found apart; the spaced ones from their first separator,
# which lets the regex engine skip to the (rarer) separators instead of trying at every letter.
# Any character three times is found faster than a letter three times; non-letters are then dropped
# (runs of different characters cannot overlap, so the letters' matches are the same).
_TRIPLED_RE = re.compile(r"(.)\1\1")
_SPACED_RE = re.compile(r"[ .\-_*~](?=[a-z0-9@$][ .\-_*~])(?<=(?<![a-z0-9])[a-z0-9@$][ .\-_*~])"
                        r"(?:[a-z0-9@$][ .\-_*~])+[a-z0-9@$](?![a-z0-9])")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s",
                       "!": "i", "|": "l", "8": "b", "9": "g", "+": "t"})
_LEET_L = str.maketrans({"1": "l", "!": "l", "|": "i"})
_REPEAT3 = re.compile(r"(.)\1{2,}")
_REPEAT2 = re.compile(r"(.)\1+")
_PUNCT_TOKENS = frozenset(',;:"()?-\u2013\u2014')
_PUNCT_MAP = {p: ("," if p in "-\u2013\u2014()" else p,) for p in _PUNCT_TOKENS}
# Three one-character tokens in a row ("k i l l"): only then is the spelled-out-letters pass needed.
_SPELLED_RE = re.compile(r"(?<![\w@$\u00b7])[\w@$\u00b7](?:[^\w@$\u00b7]{1,2}[\w@$\u00b7](?![\w@$\u00b7])){2}")

_NT_BASE = {"can": "can", "won": "will", "ain": "is", "shan": "shall", "don": "do", "doesn": "does",
            "didn": "did", "isn": "is", "wasn": "was", "aren": "are", "weren": "were", "haven": "have",
            "hasn": "has", "hadn": "had", "couldn": "could", "wouldn": "would", "shouldn": "should",
            "mustn": "must", "needn": "need", "mightn": "might", "ca": "can", "wo": "will", "sha": "shall"}
_S_IS = frozenset("he she it that there what who where here how everything nothing something".split())
_SUFFIX = {"m": ("am",), "re": ("are",), "ve": ("have",), "ll": ("will",), "d": ("would",)}


class _Normaliser:
    """Maps raw (folded) tokens to normalised words; built from the lexicon's [normalise] table."""

    def __init__(self, vocab: set[str], direct: dict[str, tuple[str, ...]],
                 bigrams: dict[tuple[str, str], tuple[str, ...]], core: set[str]):
        self.vocab = frozenset(vocab)
        self.direct = direct
        self.bigrams = bigrams
        self.by_len: dict[int, list[str]] = {}
        for w in core:
            self.by_len.setdefault(len(w), []).append(w)
        # Punctuation tokens map to themselves (dashes and brackets to a comma): in the cache from the
        # start, so a token is one look-up.
        self._cache: dict[str, tuple[str, ...]] = dict(_PUNCT_MAP)
        self._bigram_keys = frozenset(bigrams)
        self._bigram_firsts = frozenset(a for a, _b in bigrams)  # (a cheaper first look than every word pair)
        # Output words that mix word characters with others ("'s"): only in a sentence holding one are the
        # runs of word characters more than its words (see _run).  Bounded: past the bound, always ask.
        self.mixed: set[str] = {w for rep in bigrams.values() for w in rep if _MIXED_RE.search(w)}
        self.mixed_unknown = False
        # Slang verbs that mean killing oneself when no object follows ("i want to unalive" -> "i want to kill
        # myself") and killing whoever follows otherwise ("unalive him" -> "kill him"): raw word -> words
        # when bare; ``objects``: the words (normalised) after which the plain mapping stands.
        self.reflexive: dict[str, tuple[str, ...]] = {}
        self.objects: frozenset[str] = frozenset()
        self.others: frozenset[str] = frozenset()  # someone else as the subject: the verb stays plain

    # -- single tokens ---------------------------------------------------------------------------
    def word(self, raw: str) -> tuple[str, ...]:
        hit = self._cache.get(raw)
        if hit is None:
            hit = self._word(raw)
            if len(self._cache) < 200_000:
                self._cache[raw] = hit
            for w in hit:
                if w not in self.mixed and _MIXED_RE.search(w):
                    if len(self.mixed) >= 50_000:
                        self.mixed_unknown = True
                    else:
                        self.mixed.add(w)
        return hit

    def resolve(self, w: str) -> tuple[str, ...] | None:
        if w in self.direct:
            return self.direct[w]
        if w in self.vocab:
            return (w,)
        if _REPEAT3.search(w):
            w2 = _REPEAT3.sub(r"\1\1", w)
            got = self.direct.get(w2) or ((w2,) if w2 in self.vocab else None)
            if got:
                return got
            w1 = _REPEAT2.sub(r"\1", w)
            return self.direct.get(w1) or ((w1,) if w1 in self.vocab else None)
        return None

    def _word(self, t: str) -> tuple[str, ...]:
        t = t.replace("\u00b7", "")
        if not t:
            return ()
        got = self.direct.get(t)
        if got is not None:
            return got
        if t.isalpha() and t.isascii():
            got = self.resolve(t)
            if got:
                return got
            return (_REPEAT3.sub(r"\1\1", t),) if _REPEAT3.search(t) else (t,)
        if "'" in t:
            return self._contraction(t)
        # Separators inside the word: "k.i.l.l" / "s-u-i-c-i-d-e" are joined, "self-harm" is split.
        parts = [p for p in re.split(r"[.\-_~]+", t) if p]
        if len(parts) > 1:
            if all(len(p) == 1 for p in parts):
                joined = self._deobfuscate("".join(parts))
                if joined:
                    return joined
            out: list[str] = []
            for p in parts:
                out.extend(self.word(p))
            return tuple(out)
        got = self._deobfuscate(t)
        if got:
            return got
        stripped = re.sub(r"[^a-z0-9]+", "", t) or t
        return (stripped,)

    def _deobfuscate(self, t: str) -> tuple[str, ...] | None:
        got = self.resolve(t)
        if got:
            return got
        if re.search(r"[0-9@$!|+]", t) and re.search(r"[a-z]", t + "a"):
            for cand in (t.translate(_LEET), t.translate(_LEET_L).translate(_LEET)):
                got = self.resolve(cand)
                if got:
                    return got
        if "*" in t and len(t) >= 3:
            pat = re.compile(re.escape(t.translate(_LEET)).replace(r"\*", "[a-z]") + r"\Z")
            hits = [w for w in self.by_len.get(len(t), ()) if pat.match(w)]
            if len(hits) == 1:
                return self.resolve(hits[0])
        return None

    def _contraction(self, t: str) -> tuple[str, ...]:
        if t.endswith("n't"):
            base = t[:-3]
            return (_NT_BASE.get(base, base), "not") if base else ("not",)
        base, _, suf = t.rpartition("'")
        if not base:
            return self.word(suf) if suf else ()
        if suf in _SUFFIX:
            return self.word(base) + _SUFFIX[suf]
        if suf == "s":
            if base == "let":
                return ("let", "us")
            return self.word(base) + (("is",) if base in _S_IS else ("'s",))
        return self.word(base + suf)

    # -- whole sentences -------------------------------------------------------------------------
    def tokens(self, folded: str) -> tuple[list[str], list[tuple[int, int]]]:
        ms = list(_TOKEN_RE.finditer(folded))
        raws: list[str] = list(map(_GROUP, ms))
        rspans: list[tuple[int, int]] = list(map(_SPAN, ms))
        # Letters spelled out with spaces: "k i l l myself", "s u i c i d e" (before any mapping).  Only three
        # one-character tokens (not punctuation) can be joined: with fewer, the regex is not even asked.
        if _singles(raws) >= 3 and _SPELLED_RE.search(folded):
            i = 0
            while i < len(raws):
                j = i
                while (j < len(raws) and len(raws[j]) == 1 and raws[j] not in _PUNCT_TOKENS
                       and (j == i or rspans[j][0] - rspans[j - 1][1] <= 2)):
                    j += 1
                if j - i >= 3:
                    joined = "".join(raws[i:j])
                    if self._deobfuscate(joined):
                        raws[i:j] = [joined]
                        rspans[i:j] = [(rspans[i][0], rspans[j - 1][1])]
                        i += 1
                        continue
                i = max(j, i + 1)
        get = self._cache.get
        outs = [get(r) or self.word(r) for r in raws]
        if self.reflexive and not self.reflexive.keys().isdisjoint(raws):
            self._reflexive(raws, outs)
        words = list(chain.from_iterable(outs))
        if len(words) == len(raws) and () not in outs:
            spans = rspans  # one word per token: the usual case
        else:
            spans = [sp for o, sp in zip(outs, rspans, strict=True) for _ in o]
        self._join_pairs(words, spans, outs)
        return words, spans

    def words(self, folded: str) -> list[str]:
        """``tokens(folded)[0]``, without working out the spans (most sentences never need them)."""
        raws: list[str] = _TOKEN_RE.findall(folded)  # (no groups in the regex: the whole tokens)
        if _singles(raws) >= 3 and _SPELLED_RE.search(folded):
            return self.tokens(folded)[0]  # letters spelled out: joining them looks at the spans
        get = self._cache.get
        outs = [get(r) or self.word(r) for r in raws]
        if self.reflexive and not self.reflexive.keys().isdisjoint(raws):
            self._reflexive(raws, outs)
        words = list(chain.from_iterable(outs))
        self._join_pairs(words, None, outs)
        return words

    def _reflexive(self, raws: list[str], outs: list[tuple[str, ...]]) -> None:
        """A bare reflexive slang verb ("i want to unalive", "unalive thoughts") reads as its reflexive
        form ("kill myself"); followed by an object ("unalive him", "unalive myself") it keeps its plain
        mapping ("kill")."""
        for t, r in enumerate(raws):
            rep = self.reflexive.get(r)
            if rep is None:
                continue
            nxt = outs[t + 1] if t + 1 < len(outs) else ()
            if nxt and nxt[0] in self.objects:
                continue
            # The nearest subject before it: someone else's ("my friend wants to unalive") stays plain.
            who = next((w for o in reversed(outs[:t]) for w in reversed(o)
                        if w in ("i", "me", "myself") or w in self.others), "i")
            if who not in self.others:
                outs[t] = rep

    def _join_pairs(self, words: list[str], spans: list[tuple[int, int]] | None,
                    outs: list[tuple[str, ...]]) -> None:
        """Two-word slang and split words, in place: "my self" -> "myself", "sewer slide" -> "suicide"
        (a pair's span covers both words).  Each word with the next is looked up in C first.  ``outs``: the
        words of each raw token.  The first word of a token that became several ("sh" -> "self harm") is not
        joined with the word before it: "my sh" is "my self harm", not "myself harm"."""
        if (self._bigram_firsts.isdisjoint(words)
                or self._bigram_keys.isdisjoint(zip(words, words[1:], strict=False))):
            return
        # per word: its token, and whether that token became more than one word
        tok = [t for t, o in enumerate(outs) for _ in o]
        multi = [len(o) > 1 for o in outs for _ in o]
        i = 0
        while i < len(words) - 1:
            rep = self.bigrams.get((words[i], words[i + 1]))
            if rep is None or (tok[i] != tok[i + 1] and multi[i + 1]):
                i += 1
                continue
            words[i:i + 2] = list(rep)
            tok[i:i + 2] = [tok[i]] * len(rep)
            multi[i:i + 2] = [False] * len(rep)
            if spans is not None:
                spans[i:i + 2] = [(spans[i][0], spans[i + 1][1])] * len(rep)
            i += len(rep)


def _singles(raws: list[str]) -> int:
    """How many of the raw tokens are one character and not punctuation (counted in C)."""
    n = list(map(len, raws)).count(1)
    return n - sum(map(_PUNCT_TOKENS.__contains__, raws)) if n >= 3 else n


def _inflect(stem: str) -> set[str]:
    """Crude English inflections of a trigger stem ("kill*" -> kill, kills, killed, killing, ...)."""
    out = {stem, stem + "s", stem + "es", stem + "ed", stem + "ing", stem + "in", stem + "er", stem + "d"}
    if stem.endswith("e"):
        out |= {stem[:-1] + "ing", stem[:-1] + "in"}
    if stem.endswith("ie"):
        out |= {stem[:-2] + "ying", stem[:-2] + "yin"}
    if stem.endswith("y"):
        out |= {stem[:-1] + "ies", stem[:-1] + "ied"}
    if len(stem) >= 3 and stem[-1] not in "aeiouwxy" and stem[-2] in "aeiou" and stem[-3] not in "aeiou":
        out |= {stem + stem[-1] + "ing", stem + stem[-1] + "ed", stem + stem[-1] + "in"}
    return out


def _typo_variants(word: str, strong: bool) -> set[str]:
    """Misspellings of a core word: swapped neighbours, one letter dropped or doubled, (strong) one letter
    changed or one added ("sucicide")."""
    out: set[str] = set()
    n = len(word)
    for i in range(n - 1):
        if word[i] != word[i + 1] and n >= 4:
            out.add(word[:i] + word[i + 1] + word[i] + word[i + 2:])
    for i in range(n):
        out.add(word[:i] + word[i] + word[i:])  # doubled letter
        if n >= 6:
            out.add(word[:i] + word[i + 1:])
        if strong and n >= 7:
            for c in "abcdefghijklmnopqrstuvwxyz":
                if c != word[i]:
                    out.add(word[:i] + c + word[i + 1:])
                out.add(word[:i] + c + word[i:])
    out.discard(word)
    return out


# --------------------------------------------------------------------------------------------------
# Strings a pattern needs
# --------------------------------------------------------------------------------------------------

_Needs: TypeAlias = "tuple[str, ...] | None"
_Strings: TypeAlias = frozenset[str]
_NEEDS_MAX = 32  # most strings in one set: beyond that the ``in`` checks cost about what a regex scan does
_EMPTY: _Strings = frozenset({""})
# Numbered or named back-references and conditionals: in the probe (all patterns in one alternation)
# they would point at another pattern's groups.
_GROUP_REF_RE = re.compile(r"\\[1-9]|\(\?P=|\(\?\(")


@lru_cache(maxsize=64)
def _parsed(text: str, flags: int) -> Any:
    """re's parse tree of a pattern (internal to re, read-only here); kept only while a pattern is being
    read by _needs and _word_clauses, one after the other."""
    return _sre_parse.parse(text, flags)


def _needs(pattern: re.Pattern[str]) -> _Needs:
    """Strings of which every match of ``pattern`` contains at least one; None when none are known.

    Worked out from the parsed pattern: literal runs, small character classes and alternations of them
    (``\\b(?:kill|end) myself`` needs "kill myself" or "end myself").  Anything not understood makes the
    answer None (the pattern is then always run), never a wrong set: a text holding none of the strings
    cannot match, so skipping the scan changes no result.
    """
    if pattern.flags & re.IGNORECASE:
        return None
    try:
        _exact, need = _seq_strings(_parsed(pattern.pattern, pattern.flags).data)
    except Exception:  # noqa: BLE001  # re's parser is internal: if its shape changes, patterns just always run
        return None
    if not need:
        return None
    # A string containing another one adds nothing to the check.
    need = frozenset(n for n in need if not any(m != n and m in n for m in need))
    return tuple(sorted(need)) if _check_cost(need) < 75 else None


def _seq_strings(items: Any) -> tuple[_Strings | None, _Strings | None]:
    """For a sequence of parsed items: (all it can match, if few; strings one of which each match holds)."""
    options: list[_Strings] = []
    run = _EMPTY  # what the current stretch of fully known items can match, in order
    literal = ""  # the current stretch of items that match one fixed string
    broken = False
    for op, av in items:
        exact, need = _node_strings(op, av)
        if need is not None and op is not _sre.LITERAL:  # (a literal's own need is never better than its run)
            options.append(need)
        if exact is not None and len(exact) == 1:
            literal += next(iter(exact))
        else:
            options.append(frozenset({literal}))
            literal = ""
        if exact is not None:
            longer = frozenset(a + b for a in run for b in exact)
            if len(longer) <= _NEEDS_MAX:
                run = longer
                continue
        options.append(run)
        run = exact if exact is not None else _EMPTY
        broken = True
    options += [run, frozenset({literal})]
    usable = [o for o in options if o and "" not in o]
    best = min(usable, key=lambda o: (_check_cost(o), -min(map(len, o))), default=None)
    return (None if broken else run), best


_CHANCE = {1: 1.0, 2: 0.5, 3: 0.15, 4: 0.04}  # rough chance that a string of this length is in a sentence


def _check_cost(strings: _Strings) -> float:
    """Rough cost of a needs check over a sentence, in ``in`` checks: one per string, plus a regex scan
    (worth about 75) as often as one of the strings is there by chance (short strings often are)."""
    chance = sum(_CHANCE.get(len(s), 0.01) for s in strings)
    return len(strings) + 75 * min(1.0, chance)


def _class_chars(av: Any, *, widest_range: int) -> set[str] | None:
    """The characters a parsed character class [...] matches, or None when it is not a plain list of
    characters and ranges narrower than `widest_range` (negated, \\w-like categories, wide ranges)."""
    chars: set[str] = set()
    for iop, iav in av:
        if iop is _sre.LITERAL:
            chars.add(chr(iav))
        elif iop is _sre.RANGE and iav[1] - iav[0] < widest_range:
            chars.update(chr(c) for c in range(iav[0], iav[1] + 1))
        else:
            return None
    return chars


def _node_strings(op: Any, av: Any) -> tuple[_Strings | None, _Strings | None]:
    if op is _sre.LITERAL:
        one = _char_set(av)
        return one, one
    if op is _sre.IN:
        chars = _class_chars(av, widest_range=8)
        return (frozenset(chars),) * 2 if chars is not None and len(chars) <= 8 else (None, None)
    if op is _sre.AT or op is _sre.ASSERT or op is _sre.ASSERT_NOT:
        return _EMPTY, None  # takes no characters
    if op is _sre.SUBPATTERN:
        _group, add_flags, _del_flags, sub = av
        return (None, None) if add_flags & re.IGNORECASE else _seq_strings(sub)
    if op is _sre.ATOMIC_GROUP:
        return _seq_strings(av)
    if op is _sre.BRANCH:
        exact: set[str] | None = set()
        need: set[str] | None = set()
        for sub in av[1]:
            e, n = _seq_strings(sub)
            exact = None if exact is None or e is None or len(exact) + len(e) > _NEEDS_MAX else exact | e
            need = None if need is None or n is None or len(need) + len(n) > _NEEDS_MAX else need | n
        return (None if exact is None else frozenset(exact)), (None if need is None else frozenset(need))
    if op is _sre.MAX_REPEAT or op is _sre.MIN_REPEAT or op is _sre.POSSESSIVE_REPEAT:
        lo, hi, sub = av
        e, n = _seq_strings(sub)
        if lo == 0:
            return (e | _EMPTY if hi == 1 and e is not None else None), None
        return (e if lo == hi == 1 else None), n
    return None, None


@lru_cache(maxsize=1024)
def _char_set(code: int) -> _Strings:
    return frozenset({chr(code)})


def _contains_any(text: str, needs: tuple[str, ...]) -> bool:
    for n in needs:
        if n in text:
            return True
    return False


# --------------------------------------------------------------------------------------------------
# Words a pattern needs
# --------------------------------------------------------------------------------------------------
#
# Most patterns are words with spaces and word boundaries between them: a match of
# ``\b(?:kill|end) (?:him|her)\b`` has "kill" or "end" as a whole word (a maximal run of word characters)
# and "him" or "her" as another.  Those sets ("clauses") are worked out once per pattern; per sentence,
# the set of its words answers each with one C-level ``isdisjoint``, and a pattern whose clauses are not
# all answered is not scanned.  Whatever is not understood yields no clause (the pattern is then always
# run), never a wrong one.

_Clauses: TypeAlias = "tuple[frozenset[str], ...]"
_WORDS_MAX = 512  # most strings followed for one part of a pattern
_MARK = "\x00"  # stands for a zero-width word boundary inside those strings
_BOUNDING = frozenset((_sre.AT_BOUNDARY, _sre.AT_UNI_BOUNDARY, _sre.AT_BEGINNING, _sre.AT_BEGINNING_STRING,
                       _sre.AT_BEGINNING_LINE, _sre.AT_END, _sre.AT_END_STRING, _sre.AT_END_LINE))
_WORD_RUN_RE = re.compile(r"\w+")
_MIXED_RE = re.compile(r"\w[^\w ]|[^\w ]\w")
_FLAGS_NOT_FOLLOWED = re.IGNORECASE | re.ASCII | re.LOCALE


def _isword(c: str) -> bool:
    return c.isalnum() or c == "_"  # what \w and \b mean for str patterns


@dataclass(frozen=True)
class _Shape:
    """What a parsed item can match: its strings if few (None otherwise), whether it can match nothing,
    whether every non-empty match starts / ends with a non-word character, and whether it takes no
    characters (``bound``: a word boundary, start or end; ``zero``: a look-around or \\B)."""

    exact: frozenset[str] | None
    empty: bool
    first_sep: bool
    last_sep: bool
    bound: bool = False
    zero: bool = False


_UNKNOWN = _Shape(None, True, False, False)


def _strings_shape(strings: Iterable[str]) -> _Shape:
    exact = frozenset(strings)
    body = [x.replace(_MARK, "") for x in exact]
    full = [x for x in body if x]
    return _Shape(exact, len(full) < len(body), all(not _isword(x[0]) for x in full),
                  all(not _isword(x[-1]) for x in full))


_Memo: TypeAlias = "dict[int, _Shape]"  # id of a parsed sequence -> its shape, for one pattern's analysis


@lru_cache(maxsize=1024)
def _char_shape(code: int) -> _Shape:
    return _strings_shape((chr(code),))


def _shape(op: Any, av: Any, memo: _Memo) -> _Shape:
    if op is _sre.LITERAL:
        return _char_shape(av)
    if op is _sre.IN:
        chars = _class_chars(av, widest_range=64)
        if chars is None:
            return _Shape(None, False, False, False)
        if len(chars) <= 64:
            return _strings_shape(chars)
        sep = not any(_isword(c) for c in chars)
        return _Shape(None, False, sep, sep)
    if op is _sre.AT:
        if av in _BOUNDING:
            return _Shape(frozenset({_MARK}), True, True, True, bound=True)
        return _Shape(_EMPTY, True, True, True, zero=True)
    if op is _sre.ASSERT or op is _sre.ASSERT_NOT:
        return _Shape(_EMPTY, True, True, True, zero=True)
    if op is _sre.SUBPATTERN:
        return _UNKNOWN if av[1] & _FLAGS_NOT_FOLLOWED else _seq_shape(av[3].data, memo)
    if op is _sre.ATOMIC_GROUP:
        return _seq_shape(av.data, memo)
    if op is _sre.BRANCH:
        alts = [_seq_shape(a.data, memo) for a in av[1]]
        exact: frozenset[str] | None = frozenset()
        for a in alts:
            exact = None if exact is None or a.exact is None or len(exact) + len(a.exact) > _WORDS_MAX \
                else exact | a.exact
        return _Shape(exact, any(a.empty for a in alts), all(a.first_sep for a in alts),
                      all(a.last_sep for a in alts))
    if op is _sre.MAX_REPEAT or op is _sre.MIN_REPEAT or op is _sre.POSSESSIVE_REPEAT:
        lo, hi, sub = av
        one = _seq_shape(sub.data, memo)
        exact = None
        if one.exact is not None and hi == 1:
            exact = one.exact | _EMPTY if lo == 0 else one.exact
        return _Shape(exact, lo == 0 or one.empty, one.first_sep, one.last_sep)
    return _UNKNOWN


def _product(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    if a is None or b is None or len(a) * len(b) > _WORDS_MAX:
        return None
    return frozenset(x + y for x in a for y in b)


def _seq_shape(items: Any, memo: _Memo) -> _Shape:
    got = memo.get(id(items))
    if got is not None:
        return got
    shapes = [_shape(op, av, memo) for op, av in items]
    exact: frozenset[str] | None = _EMPTY
    for sh in shapes:
        exact = _product(exact, sh.exact)
    first_sep = last_sep = True
    for sh in shapes:  # the first item that takes characters decides (and the next if it can take none)
        if not (sh.zero or sh.bound):
            first_sep = first_sep and sh.first_sep
            if not sh.empty:
                break
    for sh in reversed(shapes):
        if not (sh.zero or sh.bound):
            last_sep = last_sep and sh.last_sep
            if not sh.empty:
                break
    got = memo[id(items)] = _Shape(exact, all(sh.empty for sh in shapes), first_sep, last_sep)
    return got


def _whole_words(text: str, left: bool, right: bool) -> list[str]:
    """Runs of word characters in ``text`` with a non-word character (or a mark) on both sides; ``left``
    and ``right`` say whether one is known to stand before / after the text itself."""
    end = len(text)
    return [m.group() for m in _WORD_RUN_RE.finditer(text)
            if (left or m.start() > 0) and (right or m.end() < end)]


def _seq_clauses(items: Any, left: bool, right: bool, memo: _Memo) -> list[frozenset[str]]:
    """Clauses of a sequence of parsed items; ``left`` / ``right``: a non-word character (or the edge of
    the text) is known to stand just before / after it."""
    shapes = [_shape(op, av, memo) for op, av in items]
    n = len(shapes)
    # lefts[i] / rights[i]: a non-word character (or the edge) is known to stand just before / at item i.
    lefts = [left] + [False] * n
    for i, sh in enumerate(shapes):
        lefts[i + 1] = (True if sh.bound else lefts[i] if sh.zero
                        else sh.last_sep and (lefts[i] or not sh.empty))
    rights = [False] * n + [right]
    for i in range(n - 1, -1, -1):
        sh = shapes[i]
        rights[i] = (True if sh.bound else rights[i + 1] if sh.zero
                     else sh.first_sep and (rights[i + 1] or not sh.empty))
    clauses: list[frozenset[str]] = []

    def stretch(strings: frozenset[str] | None, i0: int, i1: int) -> None:
        """Items i0..i1-1 together match one of ``strings``: one whole word of each is needed."""
        if strings is None:
            return
        firsts: set[str] = set()
        lasts: set[str] = set()
        for x in strings:
            found = _whole_words(x, lefts[i0], rights[i1])
            if not found:
                return
            firsts.add(found[0])
            lasts.add(found[-1])
        clauses.extend((frozenset(firsts), frozenset(lasts)))

    run: frozenset[str] | None = None  # the strings of the current stretch of items whose strings are known
    start = 0
    for i, ((op, av), sh) in enumerate(zip(items, shapes, strict=True)):
        if sh.exact is None:
            stretch(run, start, i)
            run = None
            clauses += _item_clauses(op, av, lefts[i], rights[i + 1], memo)
            continue
        longer = None if run is None else _product(run, sh.exact)
        if longer is None:  # a new stretch starts here (the first one, or the strings grew too many)
            stretch(run, start, i)
            run, start = sh.exact, i
        else:
            run = longer
    stretch(run, start, n)
    return clauses


def _item_clauses(op: Any, av: Any, left: bool, right: bool, memo: _Memo) -> list[frozenset[str]]:
    """Clauses of one item whose strings are too many to list."""
    if op is _sre.SUBPATTERN:
        return [] if av[1] & _FLAGS_NOT_FOLLOWED else _seq_clauses(av[3].data, left, right, memo)
    if op is _sre.ATOMIC_GROUP:
        return _seq_clauses(av.data, left, right, memo)
    if op is _sre.BRANCH:
        # Each alternative's smallest clause, together: whichever alternative matches holds one of them.
        union: set[str] = set()
        for alt in av[1]:
            own = _seq_clauses(alt.data, left, right, memo)
            if not own:
                return []
            union |= min(own, key=len)
        return [frozenset(union)]
    if op is _sre.MAX_REPEAT or op is _sre.MIN_REPEAT or op is _sre.POSSESSIVE_REPEAT:
        lo, hi, sub = av
        if lo == 0:
            return []
        # The first repetition is always there; another may follow it.
        after = right if hi == 1 else right and _seq_shape(sub.data, memo).first_sep
        return _seq_clauses(sub.data, left, after, memo)
    return []


def _word_clauses(pattern: re.Pattern[str]) -> _Clauses:
    """Sets of words of which every match of ``pattern`` holds one each as a whole word (smallest first)."""
    if pattern.flags & _FLAGS_NOT_FOLLOWED:
        return ()
    try:
        found = _seq_clauses(_parsed(pattern.pattern, pattern.flags).data, False, False, {})
    except Exception:  # noqa: BLE001  # re's parser is internal: if its shape changes, patterns just always run
        return ()
    return _ordered(found)


def _ordered(clauses: Iterable[frozenset[str]]) -> _Clauses:
    """Most telling first: the fewest words, then the longest shortest word (long words are rarer)."""
    return tuple(sorted(set(clauses), key=lambda c: (len(c), -min(map(len, c)), sorted(c))))


def _alternative_clauses(pattern: re.Pattern[str]) -> tuple[_Clauses, ...]:
    """Clauses per top-level alternative (``\\b(?:in recovery|got better|...)\\b``: one set of clauses each):
    the pattern can match only where one alternative's clauses all hold, which is much more telling than
    one clause for the whole alternation.  A single entry when the pattern is not such an alternation;
    an entry without clauses means that alternative can always match."""
    if pattern.flags & _FLAGS_NOT_FOLLOWED:
        return ((),)
    try:
        items = list(_parsed(pattern.pattern, pattern.flags).data)
        branches = [k for k, (op, _av) in enumerate(items) if op is _sre.BRANCH]
        if len(branches) != 1:
            return (_word_clauses(pattern),)
        k = branches[0]
        out = []
        for alt in items[k][1][1]:
            found = _seq_clauses(items[:k] + list(alt.data) + items[k + 1:], False, False, {})
            out.append(_ordered(found))
        return tuple(out)
    except Exception:  # noqa: BLE001  # re's parser is internal: if its shape changes, patterns just always run
        return ((),)


@dataclass(frozen=True, eq=False)
class _Either:
    """Word clauses per alternative (see _alternative_clauses), indexed like a rule's patterns in _Gate:
    each alternative's first clause by word, so one set intersection leaves the alternatives to look at."""

    first_words: frozenset[str]
    by_word: Mapping[str, int]  # word -> bit mask of the alternatives whose first clause holds it
    open: bool  # some alternative has no clause: the pattern can always match
    rest: tuple[_Clauses, ...]  # per alternative, its other clauses

    @classmethod
    def of(cls, pattern: re.Pattern[str]) -> _Either:
        alts = _alternative_clauses(pattern)
        by_word: dict[str, int] = {}
        for i, clauses in enumerate(alts):
            for w in clauses[0] if clauses else ():
                by_word[w] = by_word.get(w, 0) | 1 << i
        return cls(frozenset(by_word), by_word, any(not c for c in alts), tuple(c[1:] for c in alts))

    def possible(self, runs: set[str]) -> bool:
        if self.open:
            return True
        mask = 0
        for w in self.first_words.intersection(runs):
            mask |= self.by_word[w]
        for rest in self.rest:
            if not mask:
                break
            if mask & 1 and _has_words(runs, rest):
                return True
            mask >>= 1
        return False


def _has_words(runs: set[str], clauses: _Clauses) -> bool:
    for c in clauses:
        if runs.isdisjoint(c):
            return False
    return True


_Checked: TypeAlias = "tuple[tuple[re.Pattern[str], _Clauses, _Needs], ...]"


@dataclass(frozen=True, eq=False)
class _Gate:
    """What rules a rule's patterns out of a sentence before they are scanned (see _needs, _word_clauses).

    ``first_words`` holds the words of every pattern's first clause and ``by_word`` maps each to the bit mask
    of the patterns whose first clause holds it, so one set intersection with the sentence's words leaves
    the patterns worth a closer look; ``unclaused`` marks the patterns without clauses.  ``patterns``,
    ``exceptions`` and ``unless`` pair each pattern with its clauses and needed strings.
    """

    first_words: frozenset[str]
    by_word: Mapping[str, int]
    unclaused: int
    patterns: _Checked
    exceptions: _Checked
    unless: _Checked
    # Every exception's (unless pattern's) first clause together, when each has one: a sentence holding none
    # of these words needs no look at any of them.
    exception_words: frozenset[str] | None
    unless_words: frozenset[str] | None
    # All patterns in one alternation: one scan says "none matches" (None when they cannot be joined).
    probe: re.Pattern[str] | None
    # The probe matches exactly where some pattern does (no group reference that the alternation would
    # renumber): then it says no more than the patterns' own scans.
    probe_exact: bool
    # The patterns' other clauses as bits: ``rest_bits`` maps a word to the bits of the clauses holding it,
    # and ``rest`` pairs each pattern with the bits of its own other clauses and its needed strings.  One
    # set intersection with the sentence's words then answers every clause of the rule at once.
    rest_words: frozenset[str] = frozenset()
    rest_bits: Mapping[str, int] = field(default_factory=dict)
    rest: tuple[tuple[re.Pattern[str], int, _Needs], ...] = ()
    # The same for all the clauses of the exceptions and of the unless patterns (in one bit space).
    other_words: frozenset[str] = frozenset()
    other_bits: Mapping[str, int] = field(default_factory=dict)
    exception_rest: tuple[tuple[re.Pattern[str], int, _Needs], ...] = ()
    unless_rest: tuple[tuple[re.Pattern[str], int, _Needs], ...] = ()
    # Every word of the patterns' clauses (first and other ones): which patterns pass the clause checks
    # depends only on which of these a sentence holds, and the same few combinations come back sentence
    # after sentence, so the answer is kept per combination in ``passing`` (see _passing).
    clause_words: frozenset[str] = frozenset()
    passing: dict[frozenset[str], tuple[tuple[re.Pattern[str], _Needs], ...]] = field(default_factory=dict)


_PASSING_MAX = 2048  # most combinations kept per rule: past it the memo starts again (bounded memory)


def _passing(gate: _Gate, held: frozenset[str]) -> tuple[tuple[re.Pattern[str], _Needs], ...]:
    """The rule's patterns (with their needed strings, in order) whose clauses all hold one of the words
    ``held`` (the sentence's words among ``gate.clause_words``), and those without clauses; worked out
    and kept in ``gate.passing`` (which the caller looks in first)."""
    mask = gate.unclaused
    for w in gate.first_words.intersection(held):
        mask |= gate.by_word[w]
    sat = 0  # the other clauses that hold one of the words
    for w in gate.rest_words.intersection(held):
        sat |= gate.rest_bits[w]
    out = []
    for pat, bits, need in gate.rest:
        if not mask:
            break
        if mask & 1 and (sat & bits) == bits:
            out.append((pat, need))
        mask >>= 1
    got = tuple(out)
    if len(gate.passing) >= _PASSING_MAX:
        gate.passing.clear()
    gate.passing[held] = got
    return got


def _gate(rule: Rule) -> _Gate:
    """The rule's gate, worked out the first time the rule is a candidate (see Pattern: why not at load) and
    kept in ``rule.gate``."""
    if rule.gate:
        return rule.gate[0]

    def checked(pats: tuple[Pattern, ...]) -> _Checked:
        out = []
        for lazy in pats:
            p = lazy.compiled()
            clauses = _word_clauses(p)
            out.append((p, clauses, _needs(p)))
        return tuple(out)

    patterns = checked(rule.patterns)
    by_word: dict[str, int] = {}
    unclaused = 0
    for i, (_p, clauses, _n) in enumerate(patterns):
        if clauses:
            for w in clauses[0]:
                by_word[w] = by_word.get(w, 0) | 1 << i
        else:
            unclaused |= 1 << i
    exceptions, unless = checked(rule.exceptions), checked(rule.unless)

    def together(group: _Checked) -> frozenset[str] | None:
        return frozenset().union(*(c[0] for _p, c, _n in group)) if all(c for _p, c, _n in group) else None

    rest_bits: dict[str, int] = {}
    rest: list[tuple[re.Pattern[str], int, _Needs]] = []
    bit = 1
    for p, clauses, need in patterns:
        own = 0
        for c in clauses[1:]:
            for w in c:
                rest_bits[w] = rest_bits.get(w, 0) | bit
            own |= bit
            bit <<= 1
        rest.append((p, own, need))
    other_bits: dict[str, int] = {}
    bit = 1

    def as_bits(group: _Checked) -> tuple[tuple[re.Pattern[str], int, _Needs], ...]:
        nonlocal bit
        out = []
        for p, clauses, need in group:
            own = 0
            for c in clauses:
                for w in c:
                    other_bits[w] = other_bits.get(w, 0) | bit
                own |= bit
                bit <<= 1
            out.append((p, own, need))
        return tuple(out)

    exception_rest, unless_rest = as_bits(exceptions), as_bits(unless)

    got = _Gate(
        first_words=frozenset(by_word), by_word=by_word, unclaused=unclaused,
        patterns=tuple((p, clauses[1:], need) for p, clauses, need in patterns),
        exceptions=exceptions, unless=unless,
        exception_words=together(exceptions), unless_words=together(unless),
        probe=_probe(tuple(p for p, _c, _n in patterns)),
        probe_exact=(len(rule.patterns) == 1
                     or not any(_GROUP_REF_RE.search(p.pattern) for p in rule.patterns)),
        rest_words=frozenset(rest_bits), rest_bits=rest_bits, rest=tuple(rest),
        other_words=frozenset(other_bits), other_bits=other_bits, exception_rest=exception_rest,
        unless_rest=unless_rest, clause_words=frozenset(by_word) | frozenset(rest_bits),
    )
    rule.gate.append(got)
    return got


@dataclass(frozen=True, eq=False)
class _Rx:
    """A context pattern with the strings it needs: most sentences hold none of them."""

    rx: re.Pattern[str]
    needs: _Needs = None
    words: _Either | None = None

    @classmethod
    def of(cls, rx: re.Pattern[str]) -> _Rx:
        words = _Either.of(rx)
        return cls(rx, _needs(rx), None if words.open else words)

    def search_sentence(self, norm: str, runs: set[str]) -> re.Match[str] | None:
        """search() over a normalised sentence whose word runs are ``runs``."""
        if self.words is not None:
            return self.rx.search(norm) if self.words.possible(runs) else None
        return self.search(norm)

    def search(self, text: str, pos: int = 0) -> re.Match[str] | None:
        if self.needs is not None and not _contains_any(text, self.needs):
            return None
        return self.rx.search(text, pos)

    def match(self, text: str) -> re.Match[str] | None:
        if self.needs is not None and not _contains_any(text, self.needs):
            return None
        return self.rx.match(text)


# --------------------------------------------------------------------------------------------------
# Context configuration
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Context:
    negation: _Rx
    pseudo_negation: re.Pattern[str]
    boundaries: frozenset[str]
    subjects: frozenset[str]
    first_person: frozenset[str]
    third_person: frozenset[str]
    agents: frozenset[str]
    media: re.Pattern[str]
    not_media: re.Pattern[str]  # a media word in another use, matched at the word: "shows up", "bad news"
    reported: _Rx
    quote_intro: re.Pattern[str]
    quote_outro: re.Pattern[str]  # what names a quotation after it ("'...' is the first line of the song")
    past: _Rx
    recent: _Rx
    resolved: _Rx
    recent_event: _Rx  # a harm dated recently ("last night", "yesterday"): overrides a resolved marker
    relapse: _Rx
    past_act: _Rx  # a finished act in the flagged sentence ...
    resolved_next: _Rx  # ... said to be over in the next sentence ("I'm in a much better place now")
    jest_next: _Rx  # a threat against someone laughed off in the sentences after it ("We laughed about it.")
    not_jest: _Rx  # ... unless the writer says they mean it ("I'm not joking.")
    meant_after: _Rx  # words said to be about something else after them ("I've given up. On the sourdough, I mean.")
    back_reference: _Rx  # a next sentence that dates the act ("That was twelve years ago.")
    continuation: _Rx  # a fragment that goes on from the sentence before ("Pages of wanting to die.")
    current: _Rx  # the writer's own present wish or plan, said with the match ("... but I want to die")
    current_same: _Rx  # ... or later in the sentence, about the same harm ("... and I'm planning another")
    never_again: _Rx  # "again" said of what will not happen: not a recent marker ("I'll never do that again")
    habitual: _Rx  # a present, repeated harm over the match ("he hits me every week")
    threat_continues: _Rx  # the person who hurt the writer is free, near or in touch ("he's out of prison now")
    hypothetical: _Rx
    question: _Rx
    affirm_next: _Rx
    affirm_same: _Rx
    # A danger match the writer does to their own body on purpose is read as self-harm (see _by_writer).
    own_body: re.Pattern[str] = re.compile(r"(?!x)x")
    deliberate: re.Pattern[str] = re.compile(r"(?!x)x")
    # Words before the writer's "I" that withdraw the negation after it: "I can't promise | I won't hurt him".
    unsure_negation: re.Pattern[str] = re.compile(r"(?!x)x")
    # A negation said before the writer's "I" that opens the clause of the match: "no way I would ever ...",
    # "never would I ...", "not a chance I'd ...".
    fronted_negation: re.Pattern[str] = re.compile(r"(?!x)x")
    # A negative answer right after the match, as in a check-in list: "suicidal thoughts: none".
    answer_after: re.Pattern[str] = re.compile(r"(?!x)x")
    # The harm named, then said to be absent or over: "the urges to cut haven't come back", "the suicidal
    # thoughts are gone" (a match inside the phrase only).
    absent: _Rx = field(default_factory=lambda: _Rx.of(re.compile(r"(?!x)x")))
    absent_doubt: re.Pattern[str] = re.compile(r"(?!x)x")  # ... unless doubted: "I'm not sure the urges are gone"
    # A negative answer to the therapist's quoted question: it outweighs an affirmation ("the honest answer is no").
    deny_answer: re.Pattern[str] = re.compile(r"(?!x)x")
    # A clause with its own subject after one of these starts something else (see _split_off).
    clause_breaks: frozenset[str] = frozenset()
    clause_subjects: frozenset[str] = frozenset()
    past_forms: frozenset[str] = frozenset()
    # After a clause break, these go on with what was asked or said (", whether he ..."): no clause of its own.
    subordinate: frozenset[str] = frozenset()
    # Words of comment passed over on the way to a clause's verb ("... and I just really want to ...").
    comment_words: frozenset[str] = frozenset()
    # Bare third persons: as a rule's unless cue, someone else doing it (see _pronoun_elsewhere).
    cue_pronouns: frozenset[str] = frozenset()
    # Words by which a match points back to a cue in an earlier clause ("... and I'm planning another attempt").
    points_back: frozenset[str] = frozenset()
    # Someone else's screening question reported by the writer ("the midwife asked if I'd had thoughts of harming
    # myself", "people keep asking if I'm suicidal") and a plain no to it ("I said no", "I'm not", "honestly, no").
    asked_question: re.Pattern[str] = re.compile(r"(?!x)x")
    plain_no: re.Pattern[str] = re.compile(r"(?!x)x")
    # A yes after the match keeps the flag, whatever no is said too.
    plain_yes: re.Pattern[str] = re.compile(r"(?!x)x")
    negation_window: int = 6
    agent_window: int = 6
    # Negators that are prepositions ("without"): they negate only their own phrase ("three months without
    # cutting", "without any thought of suicide"), not a later verb ("went out without a coat hoping to die").
    phrase_negators: frozenset[str] = frozenset()
    phrase_negator_reach: int = 3
    # The negation's needs cut to their longest piece without a space: those survive pseudo-negations
    # being blanked out (blanking only adds spaces), so no piece in the text means no negation after it.
    negation_pieces: _Needs = None
    # The media words when they are plain words: a set look-up instead of a fullmatch per word.
    media_words: frozenset[str] | None = None


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------

_MACRO_RE = re.compile(r"\{([A-Z][A-Z0-9_]*)\}")
_PLAIN_WORDS_RE = re.compile(r"[a-z]+(?: [a-z]+)*")
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")


def _expand(pattern: str, macros: Mapping[str, str], where: str, depth: int = 0) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in macros:
            raise LexiconError(f"{where}: unknown macro {{{name}}} (define it under [macros])")
        if depth > 8:
            raise LexiconError(f"{where}: macro {{{name}}} expands into itself")
        return "(?:" + _expand(macros[name], macros, where, depth + 1) + ")"

    return _MACRO_RE.sub(sub, pattern)


def _compile(pattern: str, macros: Mapping[str, str], where: str, *, now: bool) -> Pattern:
    """``now``: compile it at once (a practice file: a bad pattern is refused at load); the built-in
    lexicon's are compiled on first use (tests compile them all)."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise LexiconError(f"{where}: a pattern must be a non-empty string")
    got = Pattern(_expand(pattern, macros, where))
    if now:
        try:
            got.compiled()
        except re.error as exc:
            raise LexiconError(f"{where}: pattern {pattern!r} is not a valid regular expression ({exc})") from None
    return got


def _strlist(value: Any, where: str, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LexiconError(f"{where}: '{key}' must be a list of strings")
    return list(value)


def _words_regex(words: Iterable[str]) -> str:
    alts = sorted({w.strip() for w in words if w.strip()}, key=len, reverse=True)
    return r"\b(?:" + "|".join(alts) + r")\b" if alts else r"(?!x)x"


_RULE_KEYS = {"id", "category", "severity", "kind", "triggers", "patterns", "exceptions", "unless", "person",
              "negatable", "modifier", "description", "examples", "counter_examples", "entry_requires", "requires"}


def _build_rule(raw: Any, macros: Mapping[str, str], source: str, *, now: bool) -> Rule:
    if not isinstance(raw, dict):
        raise LexiconError(f"{source}: each [[rule]] must be a table")
    rid = raw.get("id")
    if not isinstance(rid, str) or not _ID_RE.match(rid):
        raise LexiconError(f"{source}: rule id {rid!r} must look like 'category.name' (lower case, dots)")
    where = f"{source}: rule '{rid}'"
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise LexiconError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} "
                           f"(allowed: {', '.join(sorted(_RULE_KEYS))})")
    modifier = raw.get("modifier", False)
    if not isinstance(modifier, bool):
        raise LexiconError(f"{where}: 'modifier' must be true or false")
    category = raw.get("category")
    allowed_cat = CATEGORIES + (("any",) if modifier else ())
    if category not in allowed_cat:
        raise LexiconError(f"{where}: category {category!r} must be one of {', '.join(allowed_cat)}")
    severity = raw.get("severity", "low" if modifier else None)
    if severity not in SEVERITIES:
        raise LexiconError(f"{where}: severity {severity!r} must be one of {', '.join(SEVERITIES)}")
    kind = raw.get("kind", "distress")
    if kind not in KINDS:
        raise LexiconError(f"{where}: kind {kind!r} must be one of {', '.join(KINDS)}")
    if modifier and kind not in ESCALATORS:
        raise LexiconError(f"{where}: a modifier's kind must be one of {', '.join(ESCALATORS)}")
    person = raw.get("person", "first")
    if person not in PERSONS:
        raise LexiconError(f"{where}: person {person!r} must be one of {', '.join(PERSONS)}")
    negatable = raw.get("negatable", True)
    if not isinstance(negatable, bool):
        raise LexiconError(f"{where}: 'negatable' must be true or false")
    triggers: set[str] = set()
    for t in _strlist(raw.get("triggers"), where, "triggers"):
        t = " ".join(t.lower().split())
        if not re.fullmatch(r"[a-z]+\*?(?: [a-z]+\*?)?", t):
            raise LexiconError(f"{where}: trigger {t!r} must be one or two lower-case words, each optionally "
                               f"ending in *")
        forms = [_inflect(x[:-1]) if x.endswith("*") else {x} for x in t.split()]
        triggers |= forms[0] if len(forms) == 1 else {f"{a} {b}" for a in forms[0] for b in forms[1]}
    if not triggers:
        raise LexiconError(f"{where}: needs at least one trigger word (the index that selects the rule)")
    patterns = tuple(_compile(p, macros, where, now=now) for p in _strlist(raw.get("patterns"), where, "patterns"))
    if not patterns:
        raise LexiconError(f"{where}: needs at least one pattern")
    desc = raw.get("description", "")
    if not isinstance(desc, str):
        raise LexiconError(f"{where}: 'description' must be a string")
    return Rule(
        id=rid, category=category, severity=severity, kind=kind, triggers=tuple(sorted(triggers)),
        patterns=patterns,
        exceptions=tuple(_compile(p, macros, where, now=now)
                         for p in _strlist(raw.get("exceptions"), where, "exceptions")),
        unless=tuple(_compile(p, macros, where, now=now) for p in _strlist(raw.get("unless"), where, "unless")),
        person=person, negatable=negatable, modifier=modifier, description=desc,
        examples=tuple(_strlist(raw.get("examples"), where, "examples")),
        counter_examples=tuple(_strlist(raw.get("counter_examples"), where, "counter_examples")),
        source=source,
        entry_requires=tuple(_compile(p, macros, where, now=now)
                             for p in _strlist(raw.get("entry_requires"), where, "entry_requires")),
        requires=tuple(_compile(p, macros, where, now=now) for p in _strlist(raw.get("requires"), where, "requires")),
    )


def _probe(patterns: tuple[re.Pattern[str], ...]) -> re.Pattern[str] | None:
    if len(patterns) == 1:
        return patterns[0]
    try:
        return re.compile("|".join(f"(?:{p.pattern})" for p in patterns))
    except re.error:  # e.g. a group name used twice: the patterns are simply tried one by one
        return None


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise LexiconError(f"{what} {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise LexiconError(f"{what} {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise LexiconError(f"{what} {path} cannot be read: {exc.strerror}") from None


def _build_normaliser(data: Mapping[str, Any], triggers: set[str]) -> _Normaliser:
    where = "lexicon [normalise]"
    direct: dict[str, tuple[str, ...]] = {}
    bigrams: dict[tuple[str, str], tuple[str, ...]] = {}
    vocab = set(triggers)
    keep = set(_strlist(data.get("not_typos"), where, "not_typos"))
    fuzzy = _strlist(data.get("fuzzy"), where, "fuzzy")
    strong = _strlist(data.get("fuzzy_strong"), where, "fuzzy_strong")
    vocab |= set(fuzzy) | set(strong)
    for group in (fuzzy, strong):
        for w in group:
            for v in _typo_variants(w, strong=group is strong):
                if v not in vocab and v not in keep:
                    direct.setdefault(v, (w,))
    for key in ("slang", "contractions", "misspellings"):
        table = data.get(key, {})
        if not isinstance(table, dict):
            raise LexiconError(f"{where}: '{key}' must be a table of \"word\" = \"replacement\"")
        for k, v in table.items():
            if not isinstance(v, str):
                raise LexiconError(f"{where}.{key}: value for {k!r} must be a string")
            src = k.strip().lower().split()
            rep = tuple(v.strip().lower().split())
            if len(src) == 1:
                direct[src[0]] = rep
                vocab.add(src[0])
            elif len(src) == 2:
                bigrams[(src[0], src[1])] = rep
            else:
                raise LexiconError(f"{where}.{key}: {k!r} has more than two words (write a rule instead)")
    unmarked = data.get("unmarked", {})
    if not isinstance(unmarked, dict) or not all(isinstance(v, str) and len(k.split()) == 1
                                                 for k, v in unmarked.items()):
        raise LexiconError(f"{where}: 'unmarked' must be a table of one \"word\" = \"replacement\"")
    for verb in _strlist(data.get("unmarked_verbs"), where, "unmarked_verbs"):
        for k, v in unmarked.items():
            bigrams.setdefault((k.strip().lower(), verb), (*v.strip().lower().split(), verb))
    norm = _Normaliser(vocab, direct, bigrams, set(fuzzy) | set(strong))
    table = data.get("reflexive", {})
    if not isinstance(table, dict):
        raise LexiconError(f"{where}: 'reflexive' must be a table of \"word\" = \"replacement\"")
    norm.objects = frozenset(_strlist(data.get("reflexive_objects"), where, "reflexive_objects"))
    for k, v in table.items():
        if not isinstance(v, str) or len(k.split()) != 1:
            raise LexiconError(f"{where}.reflexive: {k!r} must be one word with a string value")
        norm.reflexive[k.strip().lower()] = tuple(v.strip().lower().split())
    return norm


def _build_context(data: Mapping[str, Any]) -> _Context:
    where = "lexicon [context]"

    def words(key: str) -> list[str]:
        return _strlist(data.get(key), where, key)

    def rx(key: str) -> re.Pattern[str]:
        pats = words(key)
        try:
            return re.compile("|".join(f"(?:{p})" for p in pats) if pats else r"(?!x)x")
        except re.error as exc:
            raise LexiconError(f"{where}: '{key}' has an invalid regular expression ({exc})") from None

    negation = _Rx.of(re.compile(_words_regex(words("negators"))))
    pieces = (None if negation.needs is None
              else tuple(sorted({max(n.split(" "), key=len) for n in negation.needs})))
    media = words("media")
    return _Context(
        negation=negation,
        pseudo_negation=rx("pseudo_negations"),
        boundaries=frozenset(words("clause_boundaries")),
        subjects=frozenset(words("subjects")),
        clause_breaks=frozenset(words("clause_breaks")),
        clause_subjects=frozenset(words("clause_subjects")),
        past_forms=frozenset(words("past_forms")),
        subordinate=frozenset(words("subordinate")),
        comment_words=frozenset(words("comment_words")),
        cue_pronouns=frozenset(words("cue_pronouns")),
        points_back=frozenset(words("points_back")),
        first_person=frozenset(words("first_person")),
        third_person=frozenset(words("third_person")),
        agents=frozenset(words("agents")),
        media=re.compile(_words_regex(media)),
        not_media=rx("not_media"),
        reported=_Rx.of(rx("reported_speech")),
        quote_intro=rx("quote_intro"),
        quote_outro=rx("quote_outro"),
        past=_Rx.of(rx("past")),
        recent=_Rx.of(rx("recent")),
        resolved=_Rx.of(rx("resolved")),
        recent_event=_Rx.of(rx("recent_event")),
        relapse=_Rx.of(rx("relapse")),
        past_act=_Rx.of(rx("past_act")),
        resolved_next=_Rx.of(rx("resolved_next")),
        jest_next=_Rx.of(rx("jest_next")),
        not_jest=_Rx.of(rx("not_jest")),
        meant_after=_Rx.of(rx("meant_after")),
        back_reference=_Rx.of(rx("back_reference")),
        continuation=_Rx.of(rx("continuation")),
        current=_Rx.of(rx("current")),
        current_same=_Rx.of(rx("current_same")),
        never_again=_Rx.of(rx("never_again")),
        habitual=_Rx.of(rx("habitual")),
        threat_continues=_Rx.of(rx("threat_continues")),
        hypothetical=_Rx.of(rx("hypothetical")),
        question=_Rx.of(rx("quoted_question")),
        affirm_next=_Rx.of(rx("affirm_next")),
        affirm_same=_Rx.of(rx("affirm_same")),
        own_body=rx("own_body"),
        unsure_negation=rx("unsure_negation"),
        fronted_negation=rx("fronted_negation"),
        answer_after=rx("answer_after"),
        absent=_Rx.of(rx("absent")),
        absent_doubt=rx("absent_doubt"),
        deny_answer=rx("deny_answer"),
        asked_question=rx("asked_question"),
        plain_no=rx("plain_no"),
        plain_yes=rx("plain_yes"),
        deliberate=rx("deliberate"),
        negation_window=int(data.get("negation_window", 6)),
        agent_window=int(data.get("agent_window", 6)),
        phrase_negators=frozenset(words("phrase_negators")),
        phrase_negator_reach=int(data.get("phrase_negator_reach", 3)),
        negation_pieces=pieces if pieces and "" not in pieces else None,
        media_words=(frozenset(w.strip() for w in media)
                     if all(_PLAIN_WORDS_RE.fullmatch(w.strip()) for w in media if w.strip()) else None),
    )


def _safety_examples(raw: Any, source: str) -> list[SafetyExample]:
    out: list[SafetyExample] = []
    if raw is None:
        return out
    if not isinstance(raw, list):
        raise LexiconError(f"{source}: [[safety]] must be an array of tables")
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise LexiconError(f"{source}: each [[safety]] needs text, category and min_severity")
        cat, sev = item.get("category"), item.get("min_severity", "low")
        if cat not in CATEGORIES or sev not in SEVERITIES:
            raise LexiconError(f"{source}: safety example {item['text']!r}: bad category or min_severity")
        out.append(SafetyExample(item["text"], cat, sev))
    return out


def _assemble(rules: list[Rule], norm_data: Mapping[str, Any], ctx_data: Mapping[str, Any],
              safety: list[SafetyExample], sources: tuple[str, ...]) -> Lexicon:
    triggers: set[str] = set()
    index: dict[str, list[int]] = {}
    for i, r in enumerate(rules):
        triggers.update(r.triggers)
        for t in r.triggers:
            index.setdefault(t, []).append(i)
    norm = _build_normaliser(norm_data, triggers)
    norm.others = frozenset(_strlist(ctx_data.get("third_person"), "lexicon [context]", "third_person")) - _POSSESSIVES
    rule_index: dict[str, list[int]] = {}
    mod_index: dict[str, list[int]] = {}
    for i, r in enumerate(rules):
        for t in r.triggers:
            (mod_index if r.modifier else rule_index).setdefault(t, []).append(i)
    pre_rules, pre_mods = _prefilter(set(rule_index), norm), _prefilter(set(mod_index), norm)
    return Lexicon(rules=tuple(rules), index={k: tuple(v) for k, v in index.items()}, norm=norm,
                   ctx=_build_context(ctx_data), safety=tuple(safety), sources=sources,
                   rule_index={k: tuple(v) for k, v in rule_index.items()},
                   mod_index={k: tuple(v) for k, v in mod_index.items()},
                   pre_rules=pre_rules, pre_mods=pre_mods, all_keys=pre_rules.keys | pre_mods.keys,
                   all_pairs=pre_rules.pair_set | pre_mods.pair_set, all_firsts=pre_rules.firsts | pre_mods.firsts,
                   mod_rules_of={raw: frozenset(ri for t in ts for ri in mod_index[t])
                                 for raw, ts in pre_mods.becomes.items()},
                   rule_pairs=_pair_index({k: tuple(v) for k, v in rule_index.items()}),
                   mod_pairs=_pair_index({k: tuple(v) for k, v in mod_index.items()}))


def _pair_index(index: Mapping[str, tuple[int, ...]]) -> dict[tuple[str, str], tuple[int, ...]]:
    out: dict[tuple[str, str], tuple[int, ...]] = {}
    for t, rules in index.items():
        if " " in t:
            a, b = t.split(" ")
            out[(a, b)] = rules
    return out


@dataclass(frozen=True, eq=False)
class _Prefilter:
    """Raw (folded, not yet normalised) words that can become one of a set of trigger words.

    ``keys``: a raw word that alone can become a trigger ("kill", "kms", "slef", "ll" for "will").
    ``pairs``: two raw words that together can (the two-word slang "sewer slide", "my self"); a sentence
    is a candidate only when both are present, so common words such as "my" or "i" cost nothing.
    """

    keys: frozenset[str]
    firsts: frozenset[str]
    pairs: Mapping[str, frozenset[str]]
    # Raw word -> the trigger words it can become (for the second word of a pair: the pair's words).
    becomes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Every (first, second) of ``pairs``: one set intersection finds them among an entry's word pairs.
    pair_set: frozenset[tuple[str, str]] = frozenset()

    def find(self, raw_words: list[str], seen: frozenset[str], seen_pairs: frozenset[tuple[str, str]] | None = None
             ) -> tuple[frozenset[str], frozenset[tuple[str, str]]]:
        """The keys among an entry's raw words (``seen``: those among some larger set of keys), and its pairs
        whose second word follows the first within two words (``seen_pairs``: those among some larger set of
        pairs, see _near_pairs; worked out here when not given)."""
        if seen_pairs is None:
            seen_pairs = _near_pairs(raw_words, self.pair_set, self.firsts)
        return self.keys.intersection(seen), self.pair_set.intersection(seen_pairs)


def _near_pairs(raw_words: list[str], pair_set: frozenset[tuple[str, str]], firsts: frozenset[str]
                ) -> frozenset[tuple[str, str]]:
    """The pairs of ``pair_set`` (whose first words are ``firsts``) among an entry's raw words: the second
    word follows the first within two words (each word with the next one and the one after, built and
    looked up in C)."""
    if firsts.isdisjoint(raw_words):
        return frozenset()
    return pair_set.intersection(chain(zip(raw_words, raw_words[1:], strict=False),
                                       zip(raw_words, raw_words[2:], strict=False)))


def _prefilter(triggers: set[str], norm: _Normaliser) -> _Prefilter:
    """Which raw words (or raw pairs) can become the trigger words or two-word triggers ``triggers``."""
    singles = {t for t in triggers if " " not in t}
    doubles = [tuple(t.split(" ")) for t in triggers if " " in t]
    needed = singles | {w for d in doubles for w in d}

    def forms(w: str) -> set[str]:
        return {w} | {raw for raw, r in norm.direct.items() if r == (w,) and raw.isalpha()}

    # prod[w]: raw words from which normalisation can produce the word w.
    prod: dict[str, set[str]] = {w: {w} for w in needed}
    for raw, rep in norm.direct.items():
        if raw.isalpha():
            for w in needed.intersection(rep):
                prod[w].add(raw)
    # Words that contractions expand to: "she'll" -> "she will", "won't" -> "will not".
    for suf, reps in _SUFFIX.items():
        for w in needed.intersection(reps):
            prod[w].add(suf)
    for base, full in _NT_BASE.items():
        if full in needed:
            prod[full].add(base)
    for raw, rep in norm.reflexive.items():
        for w in needed.intersection(rep):
            prod[w].add(raw)
    for raw, ws in (("t", ("not",)), ("s", ("is", "us"))):
        for w in needed.intersection(ws):
            prod[w].add(raw)
    keys: set[str] = set()
    becomes: dict[str, set[str]] = {}
    for w in singles:
        keys |= prod[w]
        for r in prod[w]:
            becomes.setdefault(r, set()).add(w)
    pairs: dict[str, set[str]] = {}
    # Two-word slang ("my self" -> "myself"): both raw words must be there.
    for (a, b), rep in norm.bigrams.items():
        made = singles.intersection(rep)
        if made:
            for fa in forms(a):
                if fa.isalpha():
                    pairs.setdefault(fa, set()).update(x for x in forms(b) if x.isalpha())
            for fx in forms(a) | forms(b):
                becomes.setdefault(fx, set()).update(made)
        for w in needed.intersection(rep):  # for two-word triggers a superset is enough
            prod[w] |= forms(a) | forms(b)
    # Two-word triggers ("my phone"): both raw words must be there.
    for a, b in doubles:
        for fa in prod[a]:
            pairs.setdefault(fa, set()).update(prod[b])
        for fx in prod[a] | prod[b]:
            becomes.setdefault(fx, set()).add(f"{a} {b}")
    return _Prefilter(frozenset(keys), frozenset(pairs), {k: frozenset(v) for k, v in pairs.items()},
                      {k: frozenset(v) for k, v in becomes.items()},
                      frozenset((a, b) for a, seconds in pairs.items() for b in seconds))


def _parse_rules(data: Mapping[str, Any], macros: Mapping[str, str], source: str, *, now: bool
                 ) -> list[Rule]:
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        raise LexiconError(f"{source}: rules must be written as [[rule]] tables")
    rules = [_build_rule(r, macros, source, now=now) for r in raw_rules]
    seen: set[str] = set()
    for r in rules:
        if r.id in seen:
            raise LexiconError(f"{source}: rule id '{r.id}' is defined twice")
        seen.add(r.id)
    return rules


@lru_cache(maxsize=4)
def _builtin(path: str) -> tuple[Lexicon, dict[str, Any]]:
    data = _read_toml(Path(path), "built-in lexicon")
    macros = data.get("macros", {})
    if not isinstance(macros, dict) or not all(isinstance(v, str) for v in macros.values()):
        raise LexiconError("built-in lexicon: [macros] must map NAME = \"regex\"")
    rules = _parse_rules(data, macros, "built-in lexicon", now=False)
    lex = _assemble(rules, data.get("normalise", {}), data.get("context", {}),
                    _safety_examples(data.get("safety"), "built-in lexicon"), ("built-in",))
    return lex, data


_PRACTICE_KEYS = {"rule", "disable", "severity", "macros", "safety", "normalise"}


def load_lexicon(practice_file: Path | None = None) -> Lexicon:
    """The built-in lexicon, optionally changed by a practice file (see docs/screening.md).

    A practice file may add rules (``[[rule]]``; an existing id replaces that rule), ``disable`` rules and
    re-weight them (``[severity]`` table).  It is refused (LexiconError) when the result no longer flags a
    built-in safety example or a built-in rule's own example at its category and minimum severity.
    """
    base, data = _builtin(str(BUILTIN_LEXICON))
    if practice_file is None:
        return base
    practice_file = Path(practice_file)
    src = f"practice file {practice_file.name}"
    pdata = _read_toml(practice_file, "practice file")
    unknown = set(pdata) - _PRACTICE_KEYS
    if unknown:
        raise LexiconError(f"{src}: unknown top-level key(s) {', '.join(sorted(unknown))} "
                           f"(allowed: {', '.join(sorted(_PRACTICE_KEYS))})")
    macros = dict(data.get("macros", {}))
    pm = pdata.get("macros", {})
    if not isinstance(pm, dict) or not all(isinstance(v, str) for v in pm.values()):
        raise LexiconError(f"{src}: [macros] must map NAME = \"regex\"")
    macros.update(pm)
    rules = {r.id: r for r in base.rules}
    order = [r.id for r in base.rules]
    for r in _parse_rules(pdata, macros, src, now=True):
        if r.id not in rules:
            order.append(r.id)
        rules[r.id] = r
    disable = _strlist(pdata.get("disable"), src, "disable")
    for rid in disable:
        if rid not in rules:
            raise LexiconError(f"{src}: cannot disable unknown rule '{rid}' (check the id in lexicon.toml)")
    weights = pdata.get("severity", {})
    if not isinstance(weights, dict):
        raise LexiconError(f"{src}: [severity] must map \"rule.id\" = \"low|medium|high|urgent\"")
    for rid, sev in weights.items():
        if rid not in rules:
            raise LexiconError(f"{src}: [severity] names unknown rule '{rid}'")
        if sev not in SEVERITIES:
            raise LexiconError(f"{src}: [severity] '{rid}' = {sev!r} must be one of {', '.join(SEVERITIES)}")
        rules[rid] = replace(rules[rid], severity=sev)
    norm_data = dict(data.get("normalise", {}))
    pn = pdata.get("normalise", {})
    if not isinstance(pn, dict):
        raise LexiconError(f"{src}: [normalise] must be a table")
    for key in ("slang", "misspellings", "contractions", "unmarked"):
        if key in pn:
            merged = dict(norm_data.get(key, {}))
            if not isinstance(pn[key], dict):
                raise LexiconError(f"{src}: [normalise.{key}] must be a table")
            merged.update(pn[key])
            norm_data[key] = merged
    for key in ("fuzzy", "fuzzy_strong", "not_typos", "unmarked_verbs"):
        if key in pn:
            norm_data[key] = list(norm_data.get(key, [])) + _strlist(pn[key], src, key)
    safety = list(base.safety) + _safety_examples(pdata.get("safety"), src)
    kept = [rules[rid] for rid in order if rid not in set(disable)]
    lex = _assemble(kept, norm_data, data.get("context", {}), safety, ("built-in", str(practice_file)))
    _check_practice(lex, base, src, disable, weights)
    return lex


def _check_practice(lex: Lexicon, base: Lexicon, src: str, disable: list[str], weights: Mapping[str, str]) -> None:
    changed = (", ".join([f"disabled {d}" for d in disable] + [f"{k} -> {v}" for k, v in weights.items()])
               or "added rules")
    for ex in lex.safety:
        s = screen(ex.text, lexicon=lex)
        if not any(f.category == ex.category and SEVERITIES.index(f.severity) >= SEVERITIES.index(ex.min_severity)
                   for f in s.flags):
            raise LexiconError(f"{src} is refused: safety example {ex.text!r} must be flagged "
                               f"'{ex.category}' at least '{ex.min_severity}' ({changed})")
    for r in base.rules:
        if r.modifier or r.id in disable:  # disabling is allowed as long as the safety examples hold
            continue
        for text in r.examples:
            s = screen(text, lexicon=lex)
            if not any(f.category == r.category for f in s.flags):
                raise LexiconError(f"{src} is refused: built-in example {text!r} of rule {r.id} is no longer "
                                   f"flagged '{r.category}' ({changed}); re-enable it or add a rule that catches it")
    for r in lex.rules:
        if r.source.startswith("built-in") or r.modifier:
            continue
        for text in r.examples:
            if not any(f.rule == r.id for f in screen(text, lexicon=lex).flags):
                raise LexiconError(f"{src}: rule '{r.id}' does not flag its own example {text!r}; "
                                   f"fix its patterns or triggers")
        for text in r.counter_examples:
            if any(f.rule == r.id for f in screen(text, lexicon=lex).flags):
                raise LexiconError(f"{src}: rule '{r.id}' flags its own counter-example {text!r}; "
                                   f"add an exception")


# --------------------------------------------------------------------------------------------------
# Screening
# --------------------------------------------------------------------------------------------------

_SENT_END_RE = re.compile(r"[.!?\u2026]+[\"')\]]*(?=\s|$)")
_QUOTE_LINE_RE = re.compile(r"^\s*(?:>|\|)")
_WROTE_RE = re.compile(r"^\s*(?:on .{0,200}wrote:|-{2,} ?original message ?-{2,}|from: .*)\s*$")


@dataclass(slots=True)
class _Sent:
    start: int
    end: int
    quoted: bool


class _Sentences:
    """An entry's sentences as parallel lists: most are never looked at, so no object per sentence."""

    __slots__ = ("starts", "ends", "quoted")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.quoted: list[bool] = []

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> _Sent:
        return _Sent(self.starts[i], self.ends[i], self.quoted[i])

    def __iter__(self) -> Iterator[_Sent]:
        return map(_Sent, self.starts, self.ends, self.quoted)


def _sentences(text: str, folded: str) -> _Sentences:
    out = _Sentences()
    pos = 0
    quoted_rest = False
    for line in folded.split("\n"):
        lstart = pos
        pos += len(line) + 1
        if not line.strip():
            continue
        if _WROTE_RE.match(line):
            quoted_rest = True
            continue
        q = quoted_rest or bool(_QUOTE_LINE_RE.match(line))
        # Each piece ends in the sentence-ending mark, so none is blank.
        ends = [lstart + m.end() for m in _SENT_END_RE.finditer(line)]
        if line[(ends[-1] - lstart if ends else 0):].strip():
            ends.append(lstart + len(line))
        out.starts += [lstart, *ends[:-1]] if ends else []
        out.ends += ends
        out.quoted += [q] * len(ends)
    return out


@dataclass(slots=True)
class _Normed:
    """A sentence once normalised: its words, their spans in the sentence, the words joined, the set of
    the words (trigger look-up) and the set of its runs of word characters (clause checks)."""

    words: list[str]
    spans: list[tuple[int, int]] | None  # None until a match needs them (see _spans)
    text: str
    present: set[str]
    runs: set[str]


@dataclass(slots=True)
class _Hit:
    rule: Rule
    sent: int
    start: int  # token index
    end: int  # token index (exclusive)
    match: str
    sentence: str
    notes: list[str]
    discount: str | None  # reason, or None when it counts
    nend: int = 0  # end of the match in the normalised sentence


def _window(words: list[str], i0: int, ctx: _Context) -> list[str]:
    """Words of the clause before token i0 (back to a clause boundary)."""
    j = i0
    while j > 0 and words[j - 1] not in ctx.boundaries:
        j -= 1
    return words[j:i0]


_WRITER = frozenset(("i", "me", "myself"))


# A clause after the media word still speaks of it when it starts with one of these ("a film last night, it
# was about ...", "... and the discussion about ...") or lists its topics ("an episode on men and suicide").
_MEDIA_BACKREF = frozenset(("it", "its", "which", "where", "this", "that", "the", "a", "an", "there", "these",
                            "those", "they", "about"))
_MEDIA_TOPIC = frozenset(("about", "on", "of", "called", "titled", "where", "with", "featuring"))


# Someone else's words that are not the subject of what follows (see _subject_like).
_POSSESSIVES = frozenset(("his", "her", "their", "its"))
_OBJECTS = frozenset(("him", "her", "them"))
# Verbs whose object is the subject of what follows ("I watched him cut himself", "found her taking ...").
_SMALL_CLAUSE = frozenset(("saw", "see", "seen", "seeing", "watched", "watch", "watching", "heard", "hear", "found",
                           "find", "finding", "helped", "help", "made", "make", "let", "caught", "noticed", "imagine",
                           "imagined", "picture", "pictured", "picturing", "want", "wanted", "told", "asked", "begged"))
_OBJECT_PREPS = frozenset(("with", "from", "for", "behind", "near", "beside", "past", "at", "into", "onto"))
_DETS = frozenset(("my", "the", "a", "an", "our", "his", "her", "their", "your", "this", "that"))


def _subject_like(before: list[str], k: int, ctx: _Context, matched: list[str]) -> bool:
    """Whether someone else's word ``before[k]`` (the nearest one before the match) can be the one doing
    what the match says.  Not when it is only a possession or an object in an earlier clause: "I took my
    boyfriend's razor into the shower and cut my hip", "I fed her at 3am and then stood staring at my
    pills", "after the argument with my girlfriend and scratched my wrist", "I'll wait for him ... and make
    him bleed"; nor the owner of the means the match names ("lined up all her old pills").  Directly before
    the match it is ("her overdose", "my friend's suicide attempt", "I watched him cut"), and so after "saw",
    "watched", "told" ... ("I saw her take the pills"), or with a relative clause ("my friend who ...")."""
    last = len(before) - 1
    w = before[k]
    nxt = before[k + 1] if k < last else None
    prev = before[k - 1] if k > 0 else ""
    if k == last or nxt in ("who", "that", "which"):
        return True
    if nxt == "'s":
        if k + 2 <= last and before[k + 2] in _AUX:
            return True  # "my husband's been talking about ..." ('s = has / is)
        rest = before[k + 2:]
    elif w in _POSSESSIVES and not (w == "her" and (nxt in _NOT_AFTER_POSSESSIVE or nxt in ctx.boundaries
                                                    or prev in _SMALL_CLAUSE)):
        rest = before[k + 1:]
        if not _NP_LINKS.isdisjoint(rest[:3]):
            return True  # the match is in the possessed phrase: "her recovery from anorexia and self-harm"
    elif w in _OBJECTS:
        if prev in _SMALL_CLAUSE:
            return True
        rest = before[k + 1:]
    elif prev in _OBJECT_PREPS or (prev in _DETS and k > 1 and before[k - 2] in _OBJECT_PREPS):
        rest = before[k + 1:]
    else:
        return True
    if not _MEANS_WORDS.isdisjoint((rest + matched)[:3]):
        return False  # the owner of the means: "her old pills"
    return not any(x in ctx.boundaries for x in rest)  # in an earlier clause, not the subject of the match


_ASIDE_VERBS = frozenset(("think", "guess", "reckon", "believe", "suppose", "assume", "imagine", "know", "heard"))


def _aside(before: list[str], k: int) -> bool:
    """Whether the "i" at ``before[k]`` only stands in an aside about someone else ("a lad called Finn, who I think
    is nineteen, posted ...", "his mate, I reckon, ..."): "i" and a verb of opinion after "who", "which" or a
    comma, not the writer as the subject of what follows."""
    return (k + 1 < len(before) and before[k + 1] in _ASIDE_VERBS and k > 0
            and before[k - 1] in ("who", "whom", "which", ",")
            and (k + 2 >= len(before) or before[k + 2] in (",", "is", "was", "has", "had", "s", "lives", "works")))


# Verbs that introduce what someone else says or thinks ("my brother says he'll regret it").
_REPORTING = frozenset(("said", "says", "say", "told", "tells", "tell", "telling", "swore", "swears", "warned",
                        "warns", "reckons", "reckoned", "thinks", "thought", "threatened", "promised", "promises",
                        "texted", "wrote", "writes", "shouted", "screamed", "yelled", "saying", "keeps", "kept",
                        "posted", "messaged", "believes", "claims", "claimed", "insists", "insisted"))


_QUOTE_LEAD = 10  # words before an opening quote searched for what introduces it
# First-person words that stand for the quote's speaker in a rule whose person is "any": the victim of a
# danger match ("he said he'd break my legs"; "I'll kill you" said to the writer still counts), the doer of
# a self or others match.
_QUOTE_SPEAKER = {"danger": frozenset(("me", "my", "myself", "us", "our")),
                  "self": frozenset(("i", "me", "my", "myself")),
                  "others": frozenset(("i", "me", "my", "myself"))}
_ADDRESSED = frozenset(("you", "your", "yourself"))  # a quotation said to the writer ("you know what ...")


def _quote_source(before: list[str], ctx: _Context) -> tuple[str | None, bool]:
    """What introduces the open quotation that ``before`` ends in as someone's words ("she said", "kept
    saying", "yelling", "things like"; None: nothing does), and whether that someone is the writer: the
    subject of the reporting words, or the nearest subject before them ("I said", "I keep thinking things
    like").  Earlier, closed quotations are left out."""
    q = len(before) - 1 - before[::-1].index('"')
    lead: list[str] = []
    inside = False
    for w in before[:q]:
        if w == '"':
            inside = not inside
        elif not inside:
            lead.append(w)
    lead = lead[-_QUOTE_LEAD:] if len(lead) > _QUOTE_LEAD else lead
    rm = ctx.reported.search(" ".join(lead))
    if rm is None:
        return None, False
    k = " ".join(lead).count(" ", 0, rm.start())
    if lead[k] in ctx.third_person:
        return rm.group().strip(), False
    for w in reversed(lead[:k + 1]):
        if w in ctx.subjects:
            return rm.group().strip(), w in ("i", "we")
    return rm.group().strip(), False


def _quoted_words(rule: Rule, matched: list[str], before: list[str], ctx: _Context) -> str | None:
    """What introduces the quotation a match stands in, when the match is not the writer's own risk (None:
    it is).  Someone else's quotation discounts a self or others rule, and a rule with ``person = "any"``
    whose match holds the speaker's "I" or "my" (the quotation's first person is its speaker), unless a
    danger quotation is said to the writer ("you know what happened to the last one who left me").  The
    writer's own quoted thoughts count ('I keep thinking things like "I want to die"'); the writer's own
    quoted exclamation stays discounted as before ('I said "I want to die" when the printer jammed')."""
    rm, writer = _quote_source(before, ctx)
    if rm is None:
        return None
    if writer:
        return rm if rule.person != "any" and not rm.endswith(" like") else None
    if rule.person != "any":
        return rm
    if _QUOTE_SPEAKER[rule.category].isdisjoint(matched):
        return None
    quoted = before[len(before) - before[::-1].index('"'):]
    return rm if rule.category != "danger" or _ADDRESSED.isdisjoint(quoted) else None


def _own_subject(matched: list[str], ctx: _Context) -> bool:
    """Whether the match begins with its own third-person subject ("he is going to get what is coming",
    "that man deserves to die"): the rule then reads that person as the one the match is about."""
    if not matched:
        return False
    first = matched[0]
    if first in ("he", "she", "they", "someone", "somebody"):
        return True
    return first in ("that", "this", "the", "my") and len(matched) > 1 and matched[1] in ctx.third_person


_CLAUSE_VERBS = frozenset(("think", "thinking", "thought", "feel", "feeling", "felt", "like", "imagine", "imagining",
                           "imagined", "picture", "picturing", "pictured", "swear", "swore", "worry", "worried", "fear",
                           "afraid", "scared", "reckon", "guess", "suspect", "bet", "know", "knew", "hope", "hoping"))
_MODALS = frozenset(("might", "will", "would", "could", "may", "can", "is", "was", "gonna", "going", "has", "had",
                     "wants", "wanted", "does", "did"))


def _subject_inside(matched: list[str]) -> str | None:
    """Someone else as the subject of the match's own verb, after the writer's thinking verb ("I think | he
    might hit her", "I'm scared she will hurt him"): the writer fears or guesses it, someone else would do it."""
    for j in range(1, len(matched) - 1):
        if matched[j] in ("he", "she", "they") and matched[j - 1] in _CLAUSE_VERBS and matched[j + 1] in _MODALS:
            return matched[j]
    return None


def _reports(before: list[str], k: int) -> bool:
    """Whether someone else's word ``before[k]`` introduces what follows as their words or thoughts ("my
    brother says ...", "she told me ...", "he's always saying ...")."""
    for w in before[k + 1:k + 4]:
        if w in _REPORTING:
            return True
        if w not in ("'s", "is", "has", "had", "was", "always", "just", "keeps", "kept", "also", "even",
                     "never", "then", "once", "literally", "actually"):
            return False
    return False


_NOT_AFTER_POSSESSIVE = frozenset((
    "a", "an", "the", "my", "this", "that", "at", "to", "in", "on", "into", "for", "with", "from", "up", "out", "back",
    "off", "down", "over", "again", "about", "i", "it", "he", "she", "they", "we", "you", "is", "was", "and", "or",
))
_NP_LINKS = frozenset(("of", "from", "about", "with", "for", "on"))
_AUX = frozenset(("been", "got", "gone", "going", "just", "always", "never", "not", "had", "started", "done", "said",
                  "told", "tried", "taken", "having", "doing", "being", "still", "now", "really", "also", "back",
                  "finally", "a", "an", "the", "so", "very", "in", "on", "at", "out", "off", "here", "there"))
_MEANS_WORDS = frozenset(("pills", "tablets", "meds", "medication", "medicine", "painkillers", "prescription",
                          "insulin", "razor", "razors", "blade", "blades", "knife", "knives", "rope", "belt", "gun",
                          "pistol", "rifle", "shotgun", "vodka", "whisky", "gin", "morphine", "sleeping"))


# A rule's own requirement (``requires``, ``entry_requires``) not met: the rule is unsure, the words do not
# mean something else, so the model still judges the sentence (score.second_opinion).
_UNSUPPORTED_HERE = "context: nothing in the sentence supports this reading"
_UNSUPPORTED_ENTRY = "context: nothing elsewhere in the entry supports this reading"
UNSUPPORTED = frozenset((_UNSUPPORTED_HERE, _UNSUPPORTED_ENTRY))
_NO_AGENT = "no agent: nobody named as the one doing it"
_WRITER_AGENT = "no agent: the writer is the one doing it"
_OTHER_SENSE = "idiom/other sense: "  # (followed by the cue)
# Discounts after which the model still judges the sentence (score.unread): they say that a rule's words may
# mean something else there (an idiom or other-sense cue: "giving my clothes away to the charity shop"; nobody
# found doing it: "Marcus put his hands round my neck", the name starting the sentence), not that the sentence
# is safe, as a negation, a past, someone else's words or the writer's own accident (_WRITER_AGENT, "I scalded
# my hand with boiling water") do.  Chosen by grouped cross-validation (docs/screening.md, "Round 10").
STILL_JUDGED = (_OTHER_SENSE, _NO_AGENT)


def _by_writer(rule: Rule, words: list[str], i0: int, i1: int, norm: str, discount: str, ctx: _Context
               ) -> Rule | None:
    """The reading of a danger match that the writer does (the doer is the writer, or nobody when the match
    opens the sentence: a diary's dropped "I"), or None.  Done to the writer's own body and said to be
    deliberate (``own_body``, ``deliberate``), it is self-harm ("self.own_body": "I scalded my hand with the
    kettle on purpose", "Scalded my arm under the hot tap on purpose"); done to someone the writer names
    as theirs ("my son", "my mum"), it is harm the writer did ("others.by_writer": "I grabbed my son by the
    throat", "Hit my daughter with the wooden spoon").  Made afresh each time (rare)."""
    if discount == _NO_AGENT and i0 > 0:
        return None
    matched = words[i0:i1]
    if ctx.own_body.search(" ".join(matched)):
        if ctx.deliberate.search(norm) is None:
            return None
        return replace(rule, id="self.own_body", category="self", kind="injury",
                       description=f"the writer harming their own body on purpose (read from {rule.id})")
    if any(w in ctx.agents and j > 0 and matched[j - 1] in ("my", "our") for j, w in enumerate(matched)):
        return replace(rule, id="others.by_writer", category="others", kind="violence",
                       description=f"the writer harming someone (read from {rule.id})")
    return None


_NOT_NAMES = frozenset((
    "i", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january", "february",
    "march", "april", "may", "june", "july", "august", "september", "october", "november", "december",
    "christmas", "easter", "god", "jesus", "english", "british", "ok", "okay", "tv", "uni", "nhs", "a",
))
_PLACE_WORDS = frozenset(("the", "at", "in", "on", "to", "from", "into", "near", "outside", "inside", "by"))


def _named(words: list[str], spans: list[tuple[int, int]], original: str, i0: int, ctx: _Context) -> bool:
    """A person named in the clause before word ``i0`` ("during the row Liam grabbed my throat"): a
    capitalised word that is not the sentence's first, a day, a month or a place after "at", "in" ...
    (names are lower-cased with everything else in the normalised words)."""
    j = i0
    while j > 0 and words[j - 1] not in ctx.boundaries and i0 - j < ctx.agent_window:
        j -= 1
    lead = len(original) - len(original.lstrip())
    for k in range(j, i0):
        a, b = spans[k]
        raw = original[a:b]
        if (a > lead and len(raw) > 1 and raw[0].isupper() and raw[1:].islower() and words[k].isalpha()
                and words[k] not in _NOT_NAMES and (k == 0 or words[k - 1] not in _PLACE_WORDS)):
            return True
    return False


_COORDINATION = frozenset((",", "and", "then"))
# A clause with one of these has a subject of its own ("... and it threw me", ", which touched me").
_OWN_SUBJECT = frozenset(("it", "this", "that", "which", "who", "we", "you", "there", "what"))


def _shared_subject(words: list[str], j: int, ctx: _Context, clauses: int = 1) -> str | None:
    """The subject a clause starting at word ``j`` shares with the clauses before it when it has none of
    its own ("my wife screams at me, throws things at me", "they pulled me out and kicked me"): the
    nearest agent or "i" going back over clauses joined by a comma, "and" or "then" (None: neither)."""
    for _ in range(clauses):
        if j <= 0 or words[j - 1] not in _COORDINATION:
            return None
        while j > 0 and words[j - 1] in _COORDINATION:
            j -= 1
        k = j
        while k > 0 and words[k - 1] not in ctx.boundaries:
            k -= 1
        for w in reversed(words[k:j]):
            if w in ctx.agents:
                return w
            if w in ("i", "we"):
                return "i"
        j = k
    return None


def _media(before: list[str], matched: list[str], ctx: _Context) -> str | None:
    """A film, book, news story ... before the match, in the match's clause (or referred back to: "a film
    last night, it was about ..."), used as a noun (not "he shows up", "bad news"), with the writer not
    the subject after it."""
    plain = ctx.media_words
    if plain is not None and plain.isdisjoint(before):
        return None
    for k in range(len(before) - 1, -1, -1):
        if (before[k] in plain) if plain is not None else ctx.media.fullmatch(before[k]):
            after = before[k + 1:]
            if not _WRITER.isdisjoint(after) or "i" in matched:
                return None
            lead = " ".join(before[max(0, k - 2):k])
            at = len(lead) + 1 if lead else 0
            near = " ".join(before[max(0, k - 2):k + 4] + matched[:3])
            if any(m.start() <= at < m.end() for m in ctx.not_media.finditer(near)):
                continue  # another use of the word: "he shows up", "bad news", "long story short"
            if _how_to(before[max(0, k - 4):k], after + matched):
                return None  # researching how to do it is preparation: "watched a video on how to cut ..."
            ends = [j for j, w in enumerate(after) if w in ctx.boundaries]
            if ends:
                nxt = after[ends[-1] + 1] if ends[-1] + 1 < len(after) else (matched[0] if matched else "")
                topics = after[0] in _MEDIA_TOPIC and all(after[j] in ("and", "or") for j in ends)
                if nxt not in _MEDIA_BACKREF and not topics:
                    # another clause: "I got bad news and want to die", "watched a film and then ..."
                    return None
            return f"media: {before[k]}"
    return None


# Looking something up (the writer's own research, not watching or reading for its own sake) ...
_RESEARCH = frozenset(("watched", "watching", "watch", "googled", "googling", "google", "searched", "searching",
                       "search", "looked", "looking", "found", "find", "read", "reading", "saved", "bookmarked",
                       "downloaded", "studied", "studying", "ordered", "bought", "rewatched", "binged"))
# ... about how to do it: "a video on how to cut brake lines", "videos of how long hanging takes".
_HOW_NEXT = frozenset(("to", "long", "much", "many", "you", "quickly", "fast", "easily", "painlessly", "best", "one"))


def _how_to(lead: list[str], after: list[str]) -> bool:
    """Whether a media word the writer looked up (``lead``: the words before it) is about how to do something
    (``after``: the words after it, the match's included): "watched a video on how to cut brake lines", "googled
    videos of how long hanging takes", "found a video about what you can do to brake pipes"."""
    if _RESEARCH.isdisjoint(lead):
        return False
    head = after[:3]
    for j, w in enumerate(head):
        nxt = after[j + 1] if j + 1 < len(after) else ""
        if w == "how" and (nxt in _HOW_NEXT or not nxt):
            return True
        if w == "what" and nxt in ("you", "it", "happens", "dose", "amount", "would"):
            return True
    return False


def _word_at(norm: str, pos: int) -> int:
    """The index of the word of ``norm`` at or after character ``pos``: a normalised sentence is its words
    joined by single spaces (no word holds one), so the spaces before ``pos`` count the words before it."""
    return norm.count(" ", 0, pos)


def _split_off(words: list[str], lo: int, hi: int, ctx: _Context) -> bool:
    """Whether a clause with its own subject starts among tokens ``lo`` to ``hi``: ", and my brother was
    ...", "but I ...", ", and five years ago I ..." (a break word, then a subject within a few words)."""
    breaks, subjects = ctx.clause_breaks, ctx.clause_subjects
    for k in range(max(lo, 0), min(hi, len(words))):
        if words[k] in breaks:
            # (the subject may follow a time or a word of comment: ", and five years ago I moved ...")
            for w in words[k + 1:k + 1 + _SUBJECT_REACH]:
                if w in subjects:
                    return True
                if w in ctx.boundaries or w in ctx.subordinate:
                    break  # (", whether he ..." goes on with what was asked)
    return False


_SUBJECT_REACH = 4


def _pronoun_elsewhere(words: list[str], norm: str, m: re.Match[str], i0: int, i1: int, ctx: _Context) -> bool:
    """Whether ``m`` (a rule's unless cue) is a bare pronoun, standing for someone else doing what the match
    says, but in another clause than a match the writer is the subject of: "I've got all my tablets out on the
    coffee table while he's at work" (not "she took a handful of pills", "I found her with her tablets out")."""
    if m.group().strip() not in ctx.cue_pronouns:
        return False
    at = _word_at(norm, m.start())
    if i0 <= at < i1:
        return False
    lo, hi = (i1, at) if at >= i1 else (at + 1, i0)
    if not any(w in ctx.boundaries for w in words[lo:hi]):
        return False  # the same clause: "I found her with ..."
    k = i0 if i1 > i0 and words[i0] in ctx.subjects else i0 - 1
    while k >= 0 and words[k] not in ctx.subjects and words[k] not in ctx.boundaries:
        k -= 1
    return k >= 0 and words[k] == "i"


def _since(words: list[str], norm: str, m: re.Match[str], ctx: _Context) -> bool:
    """Whether the past marker ``m`` dates the start of something that goes on: its clause opens with "since"
    ("since my mum died two years ago, I ...", "ever since that year I ..."), so it reaches up to now."""
    k = _word_at(norm, m.start()) - 1
    while k >= 0 and words[k] not in ctx.boundaries:
        k -= 1
    return k >= 0 and words[k] == "since"


def _joined_now(words: list[str], norm: str, m: re.Match[str], i0: int, i1: int, ctx: _Context) -> bool:
    """Whether ``m`` (a past marker, or a rule's unless cue) comes before the match, and the match is in a clause
    of the writer's joined on by "and", "but", "so" ... whose verb is not past: "five years ago I moved to this
    town, and I'm ready to die" (not "five years ago, after my divorce, I took an overdose", "two years ago my
    dad died and I tried to kill myself")."""
    last = _word_at(norm, max(m.end() - 1, m.start()))
    if last >= i0:
        return False
    k = i0 if i1 > i0 and words[i0] == "i" else i0 - 1
    while k > last and words[k] not in ctx.subjects:
        k -= 1
    if k <= last or words[k] != "i":
        return False
    if not any(w in ctx.clause_breaks and w.isalpha() for w in words[max(last + 1, k - 3):k]):
        return False
    for w in words[k + 1:i1]:
        if w not in ctx.comment_words:
            return w not in ctx.past_forms and not (w.endswith("ed") and not w.endswith("eed"))
    return False


def _split_after(words: list[str], norm: str, m: re.Match[str], i1: int, ctx: _Context) -> bool:
    """Whether ``m`` (a match in ``norm``) comes after the rule's match (which ends at token ``i1``), in a clause
    split off from it (see _split_off): "I want to die, and five years ago I moved here"."""
    first = _word_at(norm, m.start())
    return first >= i1 and _split_off(words, i1, first, ctx)


def _clause_bits(gate: _Gate, runs: set[str]) -> int:
    """The gate's word clauses that hold one of the sentence's words, as bits (see _Gate)."""
    sat = 0
    for w in gate.other_words.intersection(runs):
        sat |= gate.other_bits[w]
    return sat


def _inside_word(norm: str, m: re.Match[str]) -> bool:
    """Whether a cue's match begins inside a word: a cue is words, so "trip" is not in "amitriptyline",
    nor "tent" in "intent" (a cue may still end inside one: "travel" stands for "travelling")."""
    k = m.start()
    return k > 0 and norm[k - 1].isalnum() and norm[k].isalnum()


def _check(rule: Rule, gate: _Gate, words: list[str], i0: int, i1: int, norm: str, runs: set[str], mstart: int,
           mend: int, ctx: _Context, sent: _Sent, memo: dict[str, re.Match[str] | None]
           ) -> tuple[str | None, list[str]]:
    """Why the match does not count (None: it counts) and notes.  ``memo`` holds this sentence's look-ups
    that do not depend on the match (past, relapse, ...), shared by every match in it."""
    notes: list[str] = []
    if sent.quoted:
        return "quoted: earlier message, not the client's words", notes
    # The exceptions' and unless patterns' clauses that hold one of the sentence's words, as bits (see _Gate).
    sat = -1
    words_in = gate.exception_words
    for ex, bits, need in gate.exception_rest if words_in is None or not runs.isdisjoint(words_in) else ():
        if sat < 0:
            sat = _clause_bits(gate, runs)
        if (sat & bits) != bits or need is not None and not _contains_any(norm, need):
            continue
        for em in ex.finditer(norm):
            if em.start() < mend and em.end() > mstart and not _inside_word(norm, em):
                return _OTHER_SENSE + em.group().strip(), notes
    words_in = gate.unless_words
    for ex, bits, need in gate.unless_rest if words_in is None or not runs.isdisjoint(words_in) else ():
        if sat < 0:
            sat = _clause_bits(gate, runs)
        if (sat & bits) != bits or need is not None and not _contains_any(norm, need):
            continue
        # A cue in a clause before, with the writer's own present clause joined on, sets no scene for the match
        # ("lol my cat is on my keyboard, and I want to kill myself"), unless the match points back to it
        # ("I failed my driving test and I'm planning another attempt", "the dog barks and I'd love to make it
        # stop for good").
        for um in ex.finditer(norm):
            if _inside_word(norm, um):
                continue
            if _pronoun_elsewhere(words, norm, um, i0, i1, ctx):
                continue
            if not _joined_now(words, norm, um, i0, i1, ctx) or not ctx.points_back.isdisjoint(words[i0:i1]):
                return _OTHER_SENSE + um.group().strip(), notes
    clause = _window(words, i0, ctx)
    matched = words[i0:i1]
    if rule.negatable and not _unsure(clause, matched, ctx):
        if fm := _fronted(clause, matched, ctx):
            return f"negation: {fm}", notes
        if (am := ctx.answer_after.match(" ".join(words[i1:]))) is not None:
            return f"negation: {am.group().strip()}", notes
        if (gone := _absent(ctx, norm, _once(memo, "absent", ctx.absent, norm, runs), mstart, mend)) is not None:
            return f"negation: {gone}", notes
        scope = clause
        if matched and matched[0] in ctx.subjects:
            scope = []  # the match starts its own clause ("... without notice again i am going to ...")
        for k in range(len(scope) - 1, -1, -1):
            if scope[k] in ctx.subjects:
                scope = scope[k + 1:]
                break
        scope = scope[-ctx.negation_window:]
        # The clause before the match, and the match itself ("would never hit my kids"); phrases whose
        # negation word belongs to the risk phrase ("never wake up", "don't feel safe") are blanked.
        # (blanked over the scope and the match together: "not going to | know what hit him"; a comma
        # then marks where the match starts, for prepositional negators)
        s = " ".join(scope + matched)
        if ctx.negation_pieces is None or _contains_any(s, ctx.negation_pieces):
            cut = len(" ".join(scope))
            s = ctx.pseudo_negation.sub(lambda m: " " * len(m.group()), s)
            nm = _negation(ctx, s[:cut] + " , " + s[cut:].lstrip(" ") if scope else " , " + s)
            if nm:
                return f"negation: {nm}", notes
    before = words[:i0]
    if rule.person == "first":
        if _WRITER.isdisjoint(matched):
            # The nearest subject before the match decides: "i" is the writer; possessives and
            # objects ("my", "me") are skipped ("a boy at my school died ...", "she threw it at me").
            # A match that names its own subject ("he is going to regret crossing me", "that man
            # deserves to die") reads that subject as the one it is about (the target); someone else
            # says it only when that someone introduces it ("my brother says he'll regret it").
            own = _own_subject(matched, ctx)
            for k in range(len(before) - 1, -1, -1):
                w = before[k]
                if w in ("i", "myself") and not _aside(before, k):
                    break
                if w in ctx.third_person and (_reports(before, k) if own else _subject_like(before, k, ctx, matched)):
                    return f"someone else: {w}", notes
            if (who := _subject_inside(matched)) is not None:
                return f"someone else: {who}", notes
        media = _media(before, matched, ctx)
        if media:
            return media, notes
    elif rule.person == "agent":
        # (a person the match names as the one it is done to is not the one doing it, "grabbed my son",
        # unless a relative clause names the doer before it: "the babysitter who hurt my son")
        near = clause[-ctx.agent_window:] + (matched if "who" in clause[-2:] else [
            w for j, w in enumerate(matched) if not (j > 0 and matched[j - 1] in ("my", "our"))])
        if not any(w in ctx.agents for w in near):
            who = ("i" if "i" in clause else None if not _OWN_SUBJECT.isdisjoint(clause)
                   else _shared_subject(words, i0 - len(clause), ctx))
            if who is None or who == "i":
                return (_WRITER_AGENT if who == "i" else _NO_AGENT), notes
        media = _media(before, matched, ctx)
        if media:
            return media, notes
    else:
        media = _media(before, matched, ctx)
        if media:
            return media, notes
    # Quoted speech: '... she said "I want to die" ...', '... yelling "I'm going to kill you, Mummy"', 'the
    # trainer read out things like "he said he'd break my legs"' (see _quoted_words).
    if '"' in before and before.count('"') % 2 == 1 and (quoted_by := _quoted_words(rule, matched, before, ctx)):
        return f"reported speech: {quoted_by}", notes
    hm = _once(memo, "hypothetical", ctx.hypothetical, norm, runs) if rule.category != "danger" else None
    if hm:
        return f"hypothetical: {hm.group().strip()}", notes
    # Past or resolved history discounts only when the harm itself is over: a relapse ("relapsed",
    # "after eight months clean", "first time in a year") reports that the harm is back.
    # (the relapse is looked for only when there is a past or resolved marker to weigh it against)
    pm = _once(memo, "past", ctx.past, norm, runs)
    if pm and not _dates_match(words, norm, pm, i0, i1, ctx):
        pm = _past_of_match(words, norm, i0, i1, ctx)
    if pm:
        if "recent" not in memo:
            memo["recent"] = _marked_beyond(ctx, ctx.recent, ctx.past, norm)
        rm = memo["recent"]
        if rm:
            notes.append(f"recent: {rm.group().strip()} (despite past: {pm.group().strip()})")
        elif why := _still_going(memo, words, i0, i1, norm, runs, mstart, mend, ctx):
            notes.append(f"{why} (despite past: {pm.group().strip()})")
        else:
            return f"past: {pm.group().strip()}", notes
    sm = _once(memo, "resolved", ctx.resolved, norm, runs)
    if sm:
        if why := _still_going(memo, words, i0, i1, norm, runs, mstart, mend, ctx):
            notes.append(f"{why} (despite: {sm.group().strip()})")
        else:
            # A harm dated recently ("clean for two years but I cut myself yesterday") is back, not resolved.
            if "recent_event" not in memo:
                memo["recent_event"] = _marked_beyond(ctx, ctx.recent_event, ctx.resolved, norm)
            if ev := memo["recent_event"]:
                notes.append(f"recent: {ev.group().strip()} (despite: {sm.group().strip()})")
            else:
                return f"resolved: {sm.group().strip()}", notes
    return None, notes


def _absent(ctx: _Context, norm: str, first: re.Match[str] | None, mstart: int, mend: int) -> str | None:
    """What says the harm is absent or over when the match lies inside that phrase ("the urges to cut | haven't
    come back"), or None.  Only inside: "I cut last night, the urges have gone" keeps its flag; and not when
    doubted in the six words before the match ("I'm not sure the thoughts of suicide are gone").  ``first``:
    the sentence's first such phrase (looked for once per sentence, see _once), None when it has none."""
    if first is None:
        return None
    for m in ctx.absent.rx.finditer(norm, first.start()):
        if m.start() <= mstart and mend <= m.start("gone"):
            lead = norm[:mstart].split()[-6:]
            if lead and ctx.absent_doubt.search(" ".join(lead)):
                return None
            return m.group("gone").strip()
    return None


def _before_writer(clause: list[str], matched: list[str], ctx: _Context) -> str | None:
    """The clause's words before the writer's "I" that opens the clause of the match (the last subject before
    the match, or the match's own), or None when that subject is someone else or there is nothing before it."""
    head = clause + matched[:1] if matched[:1] == ["i"] else clause
    k = len(head) - 1
    while k >= 0 and head[k] not in ctx.subjects:
        k -= 1
    return " ".join(head[:k]) if k > 0 and head[k] == "i" else None


def _unsure(clause: list[str], matched: list[str], ctx: _Context) -> bool:
    """Whether the writer withdraws the negation of the match ("I can't promise | I won't hurt him", "I can't
    guarantee I won't do something stupid"): ``unsure_negation`` just before the writer's "I" that opens the
    negated clause (the last "I" before the match, or the match's own)."""
    lead = _before_writer(clause, matched, ctx)
    return lead is not None and ctx.unsure_negation.search(lead) is not None


def _fronted(clause: list[str], matched: list[str], ctx: _Context) -> str | None:
    """A negation put before the writer's "I" ("no way I would ever ...", "never would I ...", "not a chance I'd
    ..."): the ordinary scope starts after that "I" and does not see it."""
    lead = _before_writer(clause, matched, ctx)
    fm = ctx.fronted_negation.search(lead) if lead is not None else None
    return fm.group().strip() if fm else None


def _still_going(memo: dict[str, re.Match[str] | None], words: list[str], i0: int, i1: int, norm: str,
                 runs: set[str], mstart: int, mend: int, ctx: _Context) -> str | None:
    """What keeps the harm of a match current despite a past or resolved marker in its sentence, as a note
    ("relapse: ...", "current: ...", "habitual: ..."), or None: a relapse, the writer's present wish or plan
    (_current), a present, repeated harm over the match (_habitual)."""
    if lm := _once(memo, "relapse", ctx.relapse, norm, runs):
        return f"relapse: {lm.group().strip()}"
    if cm := _current(words, i0, i1, ctx):
        return f"current: {cm}"
    if hb := _habitual(norm, mstart, mend, ctx):
        return f"habitual: {hb}"
    return None


def _marked_beyond(ctx: _Context, find: _Rx, marker: _Rx, norm: str) -> re.Match[str] | None:
    """``find`` (a recency marker) in ``norm`` outside the ``marker`` (past, resolved) phrases and outside
    "again" said of what will not happen: "years ago" holds no recency, "never again" is not recent."""
    return find.search(_not_again(ctx, marker.rx.sub(" ", norm)))


_ADVERBS = frozenset(("ever", "even", "once", "really", "so", "much", "actually", "just", "properly", "even once"))
_DETERMINERS = frozenset(("a", "an", "the", "my", "any", "some", "one", "all", "those", "these", "that", "this",
                          "his", "her", "their", "your", "our", "single"))
_ING_NOUNS = frozenset(("thing", "anything", "something", "nothing", "everything", "morning", "evening", "ceiling",
                        "building", "wedding", "sibling", "spring", "string", "during", "bring", "king", "ring",
                        "sting", "wing", "swing", "sling", "clothing", "earring", "earrings", "warning"))


_LINKS = frozenset(("about", "of", "to", "on", "into", "from", "for", "and", "or", "in"))


def _gerund(w: str) -> bool:
    return len(w) > 4 and w.endswith("ing") and w not in _ING_NOUNS


def _negation(ctx: _Context, s: str) -> str | None:
    """The negator that negates the match in ``s`` (the scope before the match, " , ", then the match, with
    pseudo-negations blanked), or None.  A prepositional negator ("without") negates only a match inside
    its own phrase: within ``phrase_negator_reach`` words of it, and not past a noun that a participle
    follows ("without a coat hoping to die": the participle starts a phrase of its own)."""
    for nm in ctx.negation.rx.finditer(s):
        neg = nm.group()
        if neg not in ctx.phrase_negators:
            return neg
        gap_text, comma, match_text = s[nm.end():].partition(" , ")
        if not comma:
            return neg  # inside the match itself ("six months without hurting myself")
        gap = gap_text.split()
        if len(gap) > ctx.phrase_negator_reach:
            continue
        phrase = gap + match_text.split()
        k = 0
        while k < len(phrase) and phrase[k] in _ADVERBS:
            k += 1
        if k < len(phrase) and not _gerund(phrase[k]):
            while k < len(phrase) and phrase[k] in _DETERMINERS:
                k += 1
        # A participle after the phrase's noun or gerund starts another phrase ("without a coat hoping to
        # die", "without saying goodbye hoping ..."); one after "about", "of", "to" ... belongs to it
        # ("without any thought of hurting myself", "without even thinking about killing myself").
        if any(_gerund(w) and phrase[j - 1] not in _LINKS for j, w in enumerate(phrase[:len(gap) + 1]) if j > k):
            continue
        return neg
    return None


def _current(words: list[str], i0: int, i1: int, ctx: _Context) -> str | None:
    """The writer's present wish or plan that the match belongs to ("I want to die like I did at 15",
    "years ago I was abused, and now I want to kill him"): the clause from the nearest subject before the
    match, when that subject is the writer, said in the present (``current``).  None when the nearest
    subject is someone else or the verb is in the past ("when I was 15 I wanted to die").

    Or a present plan later in the sentence about the same harm ("it's three years since my overdose and I'm
    planning another", "I cut for years and I want to do it again"): a clause of the writer's after the match
    whose present verb (``current``) is followed by the harm again (``current_same``: "another", "one more",
    "do it again"), not by something else ("... and I want to talk about it")."""
    if i1 > i0 and words[i0] in ctx.subjects:
        k = i0  # the match holds its own subject ("... at 15 and | i am planning a second attempt")
    else:
        k = i0 - 1
        while k >= 0 and words[k] not in ctx.subjects:
            k -= 1
    if k >= 0 and words[k] == "i":
        cm = ctx.current.match(" ".join(words[k:i1]))
        if cm:
            return cm.group().strip()
    for j in range(i1, len(words)):
        if words[j] != "i":
            continue
        rest = " ".join(words[j:])
        cm = ctx.current.match(rest)
        if cm is None:
            continue
        after = rest[cm.end():].lstrip()
        sm = ctx.current_same.match(after)
        if sm:
            return f"{cm.group().strip()} {sm.group().strip()}"
    return None


def _not_again(ctx: _Context, norm: str) -> str:
    """``norm`` with "again" said of what will not happen blanked ("I'm never going to do that again"): it is not a
    recent marker."""
    return ctx.never_again.rx.sub(" ", norm) if ctx.never_again.search(norm) else norm


def _habitual(norm: str, mstart: int, mend: int, ctx: _Context) -> str | None:
    """A present, repeated harm said over the match ("he hits me every week", "he keeps hitting me",
    "whenever he drinks he hits me"): a past marker elsewhere in the sentence does not make it history.  Only
    where it overlaps the match ("my dad used to beat me, and he visits every week now" stays history)."""
    if ctx.habitual.search(norm) is None:
        return None
    for hm in ctx.habitual.rx.finditer(norm):
        if hm.start() < mend and hm.end() > mstart:
            return hm.group().strip()
    return None


_RELATIVE = frozenset(("who", "whom", "whose"))
_REDUCED_SUBJECTS = frozenset(("i", "we", "he", "she", "they"))
_NOT_HEAD = frozenset(("i", "me", "you", "we", "he", "she", "they", "it", "him", "her", "them", "us", "that", "this",
                       "what", "is", "was", "am", "are", "were", "be", "been", "have", "has", "had", "do", "did",
                       "to", "and", "or", "so", "not", "just", "said", "told", "tell", "says", "know", "think",
                       "thought", "remember", "realised", "realized", "feel", "felt", "wish", "hope", "guess"))


def _describes_other(words: list[str], norm: str, i0: int, i1: int, at: int, ctx: _Context) -> bool:
    """Whether the past marker at ``at`` (a position in ``norm``) stands in a clause or phrase that
    describes a person or thing, with the match outside it: "the people I used to sell for want me back
    and said they'll hurt ...", "the man who abused me as a kid moved in next door and ...", "punching walls
    till my knuckles split, better than the other thing I used to do", "my abuser from when I was a kid".
    The describing part runs from "who" ..., the subject of a relative clause without "who" ("the people
    I ..."), or the noun phrase naming a person before "from", to the next clause boundary after the marker."""
    t = _word_at(norm, at)
    start = -1
    if t < len(words) and words[t] == "from" or t > 0 and words[t - 1] == "from":
        f = t if words[t] == "from" else t - 1
        if f < 1 or (words[f - 1] not in ctx.agents and words[f - 1] not in ctx.third_person):
            return False  # only a person: "my abuser from when I was a kid", not "the journals from when ..."
        for j in range(f - 1, max(f - 4, -1), -1):
            if words[j] in _DETS:
                start = j
                break
            if words[j] in ctx.boundaries or words[j] in _NOT_HEAD:
                break
    else:
        for j in range(t - 1, max(t - 7, -1), -1):
            w = words[j]
            if w in ctx.boundaries:
                break
            if w in _RELATIVE and j > 0:
                start = j
                break
            if (w == "that" and j > 0 and words[j - 1] in ctx.agents) or (
                    w in _REDUCED_SUBJECTS and j > 1 and words[j - 1] not in _NOT_HEAD and words[j - 1].isalpha()
                    and words[j - 1] not in ctx.boundaries
                    and (words[j - 2] in _DETS or j > 2 and words[j - 3] in _DETS and words[j - 2].isalpha())):
                start = j
                break
    if start < 0:
        return False
    end = t + 1  # ("when", "since" ... may open the marker itself)
    while end < len(words) and words[end] not in ctx.boundaries:
        end += 1
    return i1 <= start or i0 >= end


def _dates_match(words: list[str], norm: str, m: re.Match[str], i0: int, i1: int, ctx: _Context) -> bool:
    """Whether the past marker ``m`` dates the match (tokens ``i0`` to ``i1``): not when it only describes someone
    or something else (_describes_other), stands in a clause of its own after the match (_split_after), comes
    before a present clause of the writer's joined on (_joined_now) or opens with "since" (_since).  A marker
    before the match may still open a story told over several clauses: "five years ago, after my divorce, I
    took an overdose"."""
    return not (_describes_other(words, norm, i0, i1, m.start(), ctx) or _split_after(words, norm, m, i1, ctx)
                or _joined_now(words, norm, m, i0, i1, ctx) or _since(words, norm, m, ctx))


def _past_of_match(words: list[str], norm: str, i0: int, i1: int, ctx: _Context) -> re.Match[str] | None:
    """The first past marker in the sentence that dates the match (see _dates_match)."""
    for m in ctx.past.rx.finditer(norm):
        if _dates_match(words, norm, m, i0, i1, ctx):
            return m
    return None


def _once(memo: dict[str, re.Match[str] | None], key: str, rx: _Rx, norm: str,
          runs: set[str]) -> re.Match[str] | None:
    if key in memo:
        return memo[key]
    got = memo[key] = rx.search_sentence(norm, runs)
    return got


def _raise(sev: str, steps: int) -> str:
    return SEVERITIES[min(len(SEVERITIES) - 1, SEVERITIES.index(sev) + steps)]


def _weird_spans(folded: str) -> list[int]:
    """Starts of obfuscated stretches (leet, tripled letters, spaced letters) in the entry.

    Leetspeak needs a digit or symbol: those are found with a fast character scan and only their
    surroundings are looked at; tripled and spaced letters need a regex pass each.
    """
    tripled = [m.start() for m in _TRIPLED_RE.finditer(folded) if "a" <= m.group(1) <= "z"]
    spaced = [m.start() - 1 for m in _SPACED_RE.finditer(folded)]
    out = sorted(tripled + spaced) if tripled and spaced else tripled or spaced
    odd = [m.start() for m in _ODD_RE.finditer(folded)]
    if "!" in folded:
        odd += [m.start() + 1 for m in _BANG_RE.finditer(folded)]
    for p in odd:
        m = _WEIRD_ODD_RE.search(folded, max(0, p - 2), p + 3)
        if m:
            out.append(m.start())
    return sorted(set(out)) if odd else out


def _find_words(w: str, letters: str) -> list[int]:
    """Start of every occurrence of ``w`` as a whole raw word (a maximal run of a-z) in the folded text
    whose _letters are ``letters`` (str.find of " w " finds only whole words: no look at the neighbours)."""
    needle = f" {w} "
    step = len(w) + 1  # (the space after one occurrence is the space before the next)
    out = []
    pos = letters.find(needle)
    while pos >= 0:
        out.append(pos)
        pos = letters.find(needle, pos + step)
    return out


_PAIR_RE_CACHE: dict[tuple[str, str], re.Pattern[str]] = {}


def _pair_re(a: str, b: str) -> re.Pattern[str]:
    got = _PAIR_RE_CACHE.get((a, b))
    if got is None:
        if len(_PAIR_RE_CACHE) > 5000:
            _PAIR_RE_CACHE.clear()
        got = _PAIR_RE_CACHE[(a, b)] = re.compile(
            re.escape(a) + r"[^a-z]+(?:[a-z]+[^a-z]+)?" + re.escape(b) + r"(?![a-z])")
    return got


_MANY_WORDS = 12  # from this many words to look for, _candidates goes sentence by sentence (measured)


def _candidates(found: tuple[frozenset[str], frozenset[tuple[str, str]]], folded: str, letters: str,
                sents: _Sentences) -> dict[int, set[str]]:
    """Sentences holding raw words that can become a trigger (sentence -> those raw words).

    ``found`` is what _Prefilter.find saw in the entry's word list.  Single words are then found with
    str.find over the whole entry, and a pair (two-word slang or a two-word trigger) where its second raw
    word follows the first within two words.
    """
    present, pairs = found
    out: dict[int, set[str]] = {}
    if not present and not pairs:
        return out
    starts, ends = sents.starts, sents.ends

    def sentence(pos: int) -> int:
        si = bisect.bisect_right(starts, pos) - 1
        return si if si >= 0 and pos < ends[si] else -1

    if len(present) >= _MANY_WORDS:
        # Many words (most of them more than once): cheaper to split each sentence's letters and look its
        # words up (no raw word crosses a sentence's edge: sentences start and end next to a non-letter).
        inter = present.intersection
        for si, (s0, s1) in enumerate(zip(starts, ends, strict=True)):
            here = inter(letters[s0 + 1:s1 + 1].split())
            if here:
                out[si] = set(here)
        present = frozenset()
    after = partial(bisect.bisect_right, starts)  # (mapped over a word's positions in C)
    for w in present:
        at = _find_words(w, letters)
        for pos, k in zip(at, map(after, at), strict=True):
            if k and pos < ends[k - 1]:
                got = out.get(k - 1)
                if got is None:
                    out[k - 1] = {w}
                else:
                    got.add(w)
    for a, b in pairs:
        for m in _pair_re(a, b).finditer(folded):
            pos = m.start()
            if pos and "a" <= folded[pos - 1] <= "z":
                continue
            si = sentence(pos)
            if si >= 0:
                out.setdefault(si, set()).update((a, b))
    return out


@dataclass(frozen=True, eq=False)
class _Entry:
    """What screening an entry worked out once and the second opinion (score.py) reads again instead of
    working it out a second time."""

    folded: str
    weird_at: list[int]  # starts of obfuscated stretches (_weird_spans): empty exactly when _WEIRD_RE finds none
    letters: str  # _letters(folded)
    words: list[str]  # the raw words (_raw_words)
    sents: _Sentences | None = None  # None when the entry was never split
    done: dict[int, _Normed] = field(default_factory=dict)  # sentence index -> normalised, filled as they are


def _entry(text: str) -> _Entry:
    """The first, cheap look at an entry (no splitting, no normalisation)."""
    folded = _fold(text)
    letters = _letters(folded)
    return _Entry(folded, _weird_spans(folded), letters, letters.split())


def _screen(text: str, lex: Lexicon, exhaustive: bool = False) -> Screening:
    """``exhaustive`` (tests only): no shortcuts -- every sentence is normalised and looked at, and the
    result must be the same as with the shortcuts."""
    return _screen_entry(text, lex, exhaustive)[0]


def _screen_entry(text: str, lex: Lexicon, exhaustive: bool = False) -> tuple[Screening, _Entry]:
    """_screen, and what it worked out about the entry (for the second opinion)."""
    entry = _entry(text)
    if not text or not text.strip():
        return Screening(flags=()), entry
    folded = entry.folded
    pre_r, pre_m = lex.pre_rules, lex.pre_mods
    assert pre_r is not None and pre_m is not None
    # First pass over the whole entry: raw words only, no splitting and no normalisation.
    weird_at = entry.weird_at
    words = entry.words
    # The keys of rules and modifiers among the words, in one pass over them.
    seen = lex.all_keys.intersection(words)
    seen_pairs = _near_pairs(words, lex.all_pairs, lex.all_firsts)
    keys_pairs = pre_r.find(words, seen, seen_pairs)
    if not weird_at and not keys_pairs[0] and not keys_pairs[1] and not exhaustive:
        return Screening(flags=()), entry
    sents = _sentences(text, folded)
    entry = _Entry(folded, weird_at, entry.letters, words, sents)
    cand = set(_candidates(keys_pairs, folded, entry.letters, sents)) if not exhaustive else set(range(len(sents)))
    weird_sents = ({si for si in range(len(sents)) if _weird_in(weird_at, folded, sents.starts[si], sents.ends[si])}
                   if weird_at else set())
    cand |= weird_sents
    hits: list[_Hit] = []
    mods: list[tuple[Rule, str, int]] = []
    normed: dict[int, str] = {}
    done = entry.done
    for si in sorted(cand):
        _run(lex, lex.rule_index, si, sents[si], text, folded, hits, mods, normed, done)
    if not hits:
        return Screening(flags=()), entry
    _threat_goes_on(hits, sents, folded, lex, normed, done)
    _resolved_next(hits, sents, folded, lex, normed, done)
    _jest_next(hits, sents, folded, lex, normed, done)
    _meant_after(hits, sents, folded, lex, normed, done)
    # The question is looked for in the whole entry only when a hit's sentence holds one: only then can
    # _quoted_questions change anything.
    question = lex.ctx.question
    if (any(question.search_sentence(done[si].text, done[si].runs) is not None for si in {h.sent for h in hits})
            and question.search(folded) is not None):
        _quoted_questions(hits, sents, folded, lex, normed, done)
    else:
        for h in hits:
            _asked_question(h, normed.get(h.sent, ""), sents, folded, lex, done)
    # Modifiers only raise the severity of a flag: look for them only when there is one.
    # Only the first counting modifier of each (category, kind) in the entry is used, so a sentence whose
    # possible modifiers were all found in an earlier sentence is not even tokenised.
    if any(h.discount is None for h in hits):
        mcand = _candidates(pre_m.find(words, seen, seen_pairs), folded, entry.letters, sents)
        found: set[tuple[str, str]] = set()
        if exhaustive:
            weird_sents = set(range(len(sents)))
        for si in sorted(set(mcand) | weird_sents):
            if si in weird_sents:
                skip: set[int] = set()
            else:
                maybe = set().union(*(lex.mod_rules_of.get(raw, ()) for raw in mcand[si]))
                skip = {ri for ri in maybe if (lex.rules[ri].category, lex.rules[ri].kind) in found}
                if skip == maybe:
                    continue
            n0 = len(mods)
            _run(lex, lex.mod_index, si, sents[si], text, folded, hits, mods, normed, done, skip)
            found.update((r.category, r.kind) for r, _m, _s in mods[n0:])
    return _combine(hits, mods), entry


def _weird_in(weird_at: list[int], folded: str, start: int, end: int) -> bool:
    """Obfuscation inside the sentence (matches found on the whole entry; re-checked at the edges)."""
    k = bisect.bisect_left(weird_at, start)
    if k < len(weird_at) and weird_at[k] < end:
        return True
    # A match that began just before the sentence may hide one inside it (finditer does not overlap).
    return k > 0 and weird_at[k - 1] > start - 12 and _WEIRD_RE.search(folded, start, end) is not None


def _normed(lex: Lexicon, done: dict[int, _Normed], si: int, folded: str, start: int, end: int) -> _Normed:
    """Sentence ``si`` (``folded[start:end]``) normalised, once per entry: kept in ``done``."""
    got = done.get(si)
    if got is None:
        words = lex.norm.words(folded[start:end])
        norm = " ".join(words)
        present = set(words)
        # Words are the runs of word characters, unless a word mixes them with other characters ("'s").
        mixed = lex.norm.mixed_unknown or not lex.norm.mixed.isdisjoint(present)
        runs = present | set(_WORD_RUN_RE.findall(norm)) if mixed else present
        got = done[si] = _Normed(words, None, norm, present, runs)
    return got


def _spans(lex: Lexicon, got: _Normed, folded: str, start: int, end: int) -> list[tuple[int, int]]:
    """The spans of the words of sentence ``folded[start:end]`` (normalised as ``got``), worked out once."""
    if got.spans is None:
        got.spans = lex.norm.tokens(folded[start:end])[1]
    return got.spans


def _run(lex: Lexicon, index: Mapping[str, tuple[int, ...]], si: int, sent: _Sent, text: str, folded: str,
         hits: list[_Hit], mods: list[tuple[Rule, str, int]], normed: dict[int, str],
         done: dict[int, _Normed], skip: set[int] | None = None) -> None:
    """Try the rules of ``index`` whose triggers occur in sentence ``si`` (except those in ``skip``)."""
    got = _normed(lex, done, si, folded, sent.start, sent.end)
    words, norm, present, runs = got.words, got.text, got.present, got.runs
    if not words:
        return
    cand: set[int] = set()
    pairs = lex.mod_pairs if index is lex.mod_index else lex.rule_pairs
    # (a dict view & a small set walks the small set)
    for w in index.keys() & present:
        cand.update(index[w])
    # Two-word triggers: the sentence's adjacent word pairs looked up in C (no word is empty or holds a
    # space, so adjacent words are exactly the pairs that " ".join puts one space apart)
    for pair in pairs.keys() & zip(words, words[1:], strict=False):
        cand.update(pairs[pair])
    if skip:
        cand -= skip
    if not cand:
        return
    normed[si] = norm
    starts: list[int] | None = None
    stripped = ""
    original = text[sent.start:sent.end]
    ctx = lex.ctx
    memo: dict[str, re.Match[str] | None] = {}
    for ri in sorted(cand):
        rule = lex.rules[ri]
        gate = _gate(rule)
        # Patterns that cannot match (a clause without any of its words in the sentence, or none of their
        # needed strings there) are not scanned.  (Inline loop: this runs for every candidate rule of
        # every candidate sentence.)
        held = gate.clause_words.intersection(runs)
        passing = gate.passing.get(held)
        if passing is None:
            passing = _passing(gate, held)
        if not passing:
            continue
        live: list[re.Pattern[str]] = []
        for pat, need in passing:
            if need is not None:
                for n in need:
                    if n in norm:
                        break
                else:
                    continue
            live.append(pat)
        if not live:
            continue
        # An exact probe says no more than the live patterns' own scans, and scanning them costs about
        # as much as the probe; one that is not exact can rule out a match the patterns would find, so
        # it is still asked first.
        if gate.probe is not None and not gate.probe_exact and gate.probe.search(norm) is None:
            continue
        for pat in live:
            for m in pat.finditer(norm):
                if m.end() == m.start():
                    continue
                if starts is None:  # where each word starts in ``norm``
                    starts = list(accumulate(map((1).__add__, map(len, words)), initial=0))
                    stripped = original.strip()
                i0 = bisect.bisect_right(starts, m.start()) - 1
                i1 = max(i0 + 1, bisect.bisect_left(starts, m.end()))
                i1 = min(i1, len(words))
                discount, notes = _check(rule, gate, words, i0, i1, norm, runs, m.start(), m.end(), ctx, sent,
                                         memo)
                if discount is None and rule.requires and not any(p.search(norm) for p in rule.requires):
                    discount = _UNSUPPORTED_HERE
                if discount is None and rule.entry_requires and not any(
                        p.search(folded) for p in rule.entry_requires):
                    discount = _UNSUPPORTED_ENTRY
                spans = _spans(lex, got, folded, sent.start, sent.end)
                if discount == _NO_AGENT and _named(words, spans, original, i0, ctx):
                    discount = None
                if discount in (_WRITER_AGENT, _NO_AGENT) and rule.category == "danger":
                    got_by_writer = _by_writer(rule, words, i0, i1, norm, discount, ctx)
                    if got_by_writer is not None:
                        rule, discount = got_by_writer, None
                # (the folded sentence up to the match, when the sentence holds a quotation mark)
                head = folded[sent.start:sent.start + spans[i0][0]] if _QUOTE_MARKS.intersection(original) else None
                if (head is not None and (discount is None or discount.startswith("someone else: "))
                        and rule.category == "others" and _threat_to_writer(head, words[i0:i1], ctx)):
                    rule, discount = _threat_reported(rule), None
                if head is not None and discount is None and rule.category != "danger":
                    qm = _quoted_by_other(head, "you" in words[i0:i1], ctx)
                    if qm:
                        discount = f"reported speech: {qm}"
                    elif qm := _quote_named(folded[sent.start:sent.end], spans[i0][0], spans[i1 - 1][1], ctx):
                        discount = f"quoted line: {qm}"
                if rule.modifier:
                    if discount is None:
                        mods.append((rule, original[spans[i0][0]:spans[i1 - 1][1]].strip(), si))
                    continue
                o0, o1 = spans[i0][0], spans[i1 - 1][1]
                hits.append(_Hit(rule, si, i0, i1, original[o0:o1], stripped, notes, discount, m.end()))


_QUOTE_MARKS = frozenset("'\"\u2018\u201c")
# An opening quotation mark: at the start or after a space, bracket or colon, before a letter (or the match).
_OPEN_QUOTE_RE = re.compile(r"(?:^|(?<=[\s(\[:,]))['\"](?=[a-z]|\Z)")
# A closing one: after a letter or a stop, not before a letter ("'I'm" holds no closing mark).
_CLOSE_QUOTE_RE = re.compile(r"(?<=[a-z.!?,])['\"](?![a-z])")
# How many words before the opening mark may say whose words the quotation is.
_QUOTE_INTRO_WORDS = 8


def _quote_named(text: str, start: int, end: int, ctx: _Context) -> str | None:
    """What the words after a quotation name it as, when the match (``start``..``end`` in the folded sentence
    ``text``) stands inside it ("'I want to die' is the first line of the song we're covering"): a line, a
    lyric or a title (``quote_outro``), not the writer's own words.  None otherwise."""
    if _open_quote(text[:start]) is None:
        return None
    cm = _CLOSE_QUOTE_RE.search(text, end)
    if cm is None:
        return None
    om = ctx.quote_outro.match(text, cm.end())
    return om.group().strip() if om else None


def _threat_to_writer(head: str, matched: list[str], ctx: _Context) -> bool:
    """Whether a threat to hurt "you" stands in a quotation that someone else says or sends to the writer
    ("She DMed me 'watch your back, we're gonna jump you'", "he texted me 'I'll hurt you'"): the writer is
    the one in danger.  ``head``: the folded sentence up to the match; the quotation must still be open, and
    the words that introduce it must be someone else's, said to the writer (nothing after them, or "me")."""
    if _ADDRESSED.isdisjoint(matched):
        return False
    got = _open_quote_intro(head, ctx)
    if got is None or got[0].group().split()[0] not in ctx.third_person:
        return False
    rest = got[1]
    return not rest or rest[0] in ("me", "us")


@cache
def _threat_reported(rule: Rule) -> Rule:
    """The danger reading of an others rule matched in a threat said to the writer (see _threat_to_writer)."""
    return replace(rule, id="danger.threat_to_writer", category="danger", kind="threat",
                   description=f"a threat said or sent to the writer (read from {rule.id})")


def _quoted_by_other(head: str, to_you: bool, ctx: _Context) -> str | None:
    """The words that give a quotation to someone else ("my daughter told her brother '...", "his old
    catchphrase was '...", "the film had the line '..."), when the match stands inside that quotation
    (``head``: the folded sentence up to the match), or None.  Single quotation marks are not tokens (they
    are apostrophes too), so this looks at the folded text.  Not for danger rules: a threat reported to the
    writer is their danger.  The writer's own words ("I told him '...") stay the writer's, and so do words
    aimed at "you" (``to_you``) and said to the writer ("he said '...", "she told me '..."): a threat to the
    writer, whichever rule reads it."""
    got = _open_quote_intro(head, ctx)
    if got is None:
        return None
    found, rest = got
    if "i" in rest or "we" in rest:
        return None  # the writer speaks after them ("he went out and i thought '...")
    if to_you and (not rest or rest[0] in ("me", "us")):
        return None  # said to the writer
    return found.group().strip()


def _open_quote(head: str) -> re.Match[str] | None:
    """The opening mark of the quotation that the folded text ``head`` ends inside, or None (no quotation, or
    the last one closed before the end)."""
    opens = list(_OPEN_QUOTE_RE.finditer(head))
    if not opens or _CLOSE_QUOTE_RE.search(head, opens[-1].end()):
        return None
    return opens[-1]


def _open_quote_intro(head: str, ctx: _Context) -> tuple[re.Match[str], list[str]] | None:
    """For a folded sentence ``head`` that ends inside an open quotation: the last words among the few before
    its opening mark that introduce it (``quote_intro``: "she told her brother", "the line"), and the words
    between those and the mark; None when the quotation closed before the end or nothing introduces it."""
    q = _open_quote(head)
    if q is None:
        return None
    intro = " ".join(head[:q.start()].split()[-_QUOTE_INTRO_WORDS:])
    found = None
    for m in ctx.quote_intro.finditer(intro):
        found = m
    if found is None:
        return None
    return found, intro[found.end():].split()


def _threat_goes_on(hits: list[_Hit], sents: _Sentences, folded: str, lex: Lexicon,
                    normed: dict[int, str], done: dict[int, _Normed]) -> None:
    """A past act of violence against the writer is current when the threat goes on: the same sentence, the one
    before or the one after says the person is free, near, in touch or still threatening (``threat_continues``:
    "He broke my arm last year. He's out of prison now and he's been outside my flat.", "my ex hurt me last year
    and he keeps texting that he'll finish it").  Only danger findings discounted by a past marker in their own
    sentence; the rule's own requirements still apply."""
    ctx = lex.ctx
    for h in hits:
        if h.discount is None or not h.discount.startswith("past: ") or h.rule.category != "danger":
            continue
        norm = normed.get(h.sent, "")
        if h.rule.requires and not any(p.search(norm) for p in h.rule.requires):
            continue
        if h.rule.entry_requires and not any(p.search(folded) for p in h.rule.entry_requires):
            continue
        for si in (h.sent, h.sent - 1, h.sent + 1):
            if not 0 <= si < len(sents):
                continue
            s = norm if si == h.sent else _normed(lex, done, si, folded, sents[si].start, sents[si].end).text
            tm = ctx.threat_continues.search(ctx.past.rx.sub(" ", s))
            if tm:
                h.notes.append(f"continues: {tm.group().strip()} (despite {h.discount})")
                h.discount = None
                break


def _resolved_next(hits: list[_Hit], sents: _Sentences, folded: str, lex: Lexicon,
                   normed: dict[int, str], done: dict[int, _Normed]) -> None:
    """History said over in a neighbouring sentence, unless the flagged sentence says it is recent or back:

    - a finished act ("I tried to end my life at uni.") followed by a sentence saying it is over ("I'm in a
      much better place now.") or dating it in the past ("That was twelve years ago.");
    - a fragment that goes on from a sentence looking back ("Found my old diary from 2011. Pages of wanting
      to die.")."""
    ctx = lex.ctx
    finished: dict[int, bool] = {}  # per sentence: a finished act, not said to be recent or back

    def text(si: int) -> str:
        s = sents[si]
        return _normed(lex, done, si, folded, s.start, s.end).text

    def dated_past(norm: str) -> re.Match[str] | None:
        pm = ctx.past.search(norm)
        return pm if pm and not _marked_beyond(ctx, ctx.recent, ctx.past, norm) else None

    for h in hits:
        if h.discount is not None:
            continue
        norm = normed.get(h.sent, "")
        if ctx.recent.search(_not_again(ctx, norm)) or ctx.relapse.search(norm) or ctx.habitual.search(norm):
            continue
        if h.sent > 0 and ctx.continuation.match(norm):
            pm = dated_past(text(h.sent - 1))
            if pm:
                h.discount = f"past (sentence before): {pm.group().strip()}"
                continue
        if h.sent + 1 >= len(sents):
            continue
        over = finished.get(h.sent)
        if over is None:
            over = finished[h.sent] = bool(ctx.past_act.search(norm))
        if not over:
            continue
        nxt = text(h.sent + 1)
        if ctx.relapse.search(nxt):  # "I'm in a better place now but the urges are back."
            continue
        rm = ctx.resolved_next.search(nxt)
        if rm:
            h.discount = f"resolved (next sentence): {rm.group().strip()}"
        elif ctx.back_reference.match(nxt) and (pm := dated_past(nxt)):
            h.discount = f"past (next sentence): {pm.group().strip()}"


_JEST_REACH = 3  # sentences after a threat in which it may be laughed off


def _unless_meant(h: _Hit, reach: int, sents: _Sentences, folded: str, lex: Lexicon,
                  normed: dict[int, str], done: dict[int, _Normed]) -> list[str] | None:
    """The normalised sentences, up to ``reach``, after ``h``'s, where the writer may take it back (_jest_next,
    _meant_after); None when ``h``'s sentence or one of them says the writer means it (``not_jest``)."""
    not_meant = lex.ctx.not_jest
    if not_meant.search(normed.get(h.sent, "")):
        return None
    after = [_normed(lex, done, k, folded, sents[k].start, sents[k].end).text
             for k in range(h.sent + 1, min(h.sent + 1 + reach, len(sents)))]
    return None if any(not_meant.search(t) for t in after) else after


def _jest_next(hits: list[_Hit], sents: _Sentences, folded: str, lex: Lexicon,
               normed: dict[int, str], done: dict[int, _Normed]) -> None:
    """A threat against someone, laughed off in one of the next sentences ("I'm going to kill my brother, he
    ate my cake. We laughed about it later." / "... Okay, not literally."), unless the writer says they mean
    it, there or before.  Only the writer's own threats (``others``, kind ``threat``): a threat the writer
    received stays, and so does harm done ("I kicked the dog. We laughed about it.")."""
    ctx = lex.ctx
    for h in hits:
        if h.discount is not None or h.rule.category != "others" or h.rule.kind != "threat":
            continue
        after = _unless_meant(h, _JEST_REACH, sents, folded, lex, normed, done)
        for t in after or ():
            if m := ctx.jest_next.search(t):
                h.discount = f"jest (sentence after): {m.group().strip()}"
                break


_MEANT_REACH = 2  # sentences after a finding in which the writer may say what it was about


def _meant_after(hits: list[_Hit], sents: _Sentences, folded: str, lex: Lexicon,
                 normed: dict[int, str], done: dict[int, _Normed]) -> None:
    """Words that read as the writer's own risk, then said to be about something else: after the match in its own
    sentence or in one of the next two ("Put my affairs in order today, my filing cabinet, I mean." / "I've given
    up. On the sourdough, I mean." / "I can't go on like this. I meant the job, not life.").  Only ``self``
    findings below ``urgent`` (a passive wish, giving things away, "can't go on"); not when the writer says they
    mean it (``not_jest``), there or before."""
    ctx = lex.ctx
    for h in hits:
        if h.discount is not None or h.rule.category != "self" or h.rule.severity == "urgent":
            continue
        after = _unless_meant(h, _MEANT_REACH, sents, folded, lex, normed, done)
        if after is None:
            continue
        own = normed.get(h.sent, "")[h.nend:].lstrip()
        for where, t in [("said after it", own), *(("sentence after", t) for t in after)]:
            if m := ctx.meant_after.search(t):
                h.discount = f"other sense ({where}): {m.group().strip(' ,:')}"
                break


def _quoted_questions(hits: list[_Hit], sents: _Sentences, folded: str, lex: Lexicon,
                      normed: dict[int, str], done: dict[int, _Normed]) -> None:
    """The therapist's question quoted back is not the client's words -- unless the client says yes."""
    ctx = lex.ctx
    for h in hits:
        norm = normed.get(h.sent, "")
        qm = ctx.question.search(norm)
        if not qm:
            _asked_question(h, norm, sents, folded, lex, done)
            continue
        qfirst = _word_at(norm, qm.start())
        if h.start < qfirst or _split_off(done[h.sent].words, qfirst, h.start, ctx):
            # Said before the question is reported, or in a clause of its own after it: the writer's own words
            # ("I want to kill myself and my therapist asked if I was okay", "you asked if I was okay, and I
            # want to die").
            continue
        after = max(qm.end(), h.nend)
        nxt = ""
        if h.sent + 1 < len(sents):
            s = sents[h.sent + 1]
            nxt = _normed(lex, done, h.sent + 1, folded, s.start, s.end).text
        affirmed = ctx.affirm_same.search(norm, after) or ctx.affirm_next.match(nxt)
        if affirmed and (ctx.deny_answer.search(norm, after) or ctx.deny_answer.search(nxt)):
            affirmed = None  # a plain no outweighs "I've thought about it": "... the honest answer is no"
        if affirmed:
            if h.discount is None or h.discount.startswith("negation"):
                h.discount = None
                h.notes.append(f"answer to your question: {affirmed.group().strip()}")
        elif h.discount is None:
            h.discount = f"quoted question: {qm.group().strip()}"


def _asked_question(h: _Hit, norm: str, sents: _Sentences, folded: str, lex: Lexicon,
                    done: dict[int, _Normed]) -> None:
    """Someone else's question the match stands in, answered with a plain no: "the GP asked if I'd thought of
    ending my life. I said no." Only a match inside the question's own clause, and only with the no said."""
    ctx = lex.ctx
    if h.discount is not None:
        return
    am = ctx.asked_question.search(norm)
    if am is None:
        return
    # The match must start after the question's "if / whether / about", in the same clause.
    after = _word_at(norm, am.end()) + 1
    if not after <= h.start <= after + 8 or any(w in ctx.boundaries for w in done[h.sent].words[after:h.start]):
        return
    nxt = ""
    if h.sent + 1 < len(sents):
        s = sents[h.sent + 1]
        nxt = _normed(lex, done, h.sent + 1, folded, s.start, s.end).text
    rest = norm[h.nend:]
    no = ctx.plain_no.search(rest) or ctx.plain_no.match(nxt)
    if no and not ctx.plain_yes.search(rest):
        h.discount = f"answered no: {no.group().strip()}"


def _combine(hits: list[_Hit], mods: list[tuple[Rule, str, int]]) -> Screening:
    # One finding per rule and sentence: the counting one wins over a discounted one.
    best: dict[tuple[str, int], _Hit] = {}
    order: list[tuple[str, int]] = []
    for h in hits:
        key = (h.rule.id, h.sent)
        if key not in best:
            best[key] = h
            order.append(key)
        elif best[key].discount is not None and h.discount is None:
            best[key] = h
    kept = [best[k] for k in order]
    # A discounted finding overlapping a counting one of the same category says nothing new.
    # Counting findings by (sentence, category), with their rank: more severe first, then earlier.
    groups: dict[tuple[int, str], list[tuple[_Hit, tuple[int, int]]]] = {}
    for i, h in enumerate(kept):
        if h.discount is None:
            groups.setdefault((h.sent, h.rule.category), []).append((h, (_RANK[h.rule.severity], -i)))
    final: list[_Hit] = []
    for i, h in enumerate(kept):
        same = groups.get((h.sent, h.rule.category))
        if same is not None:
            if h.discount is not None:
                if any(c.start < h.end and h.start < c.end for c, _r in same):
                    continue
            elif len(same) > 1:
                # Overlapping counting findings in one category: keep the most severe.
                rank = (_RANK[h.rule.severity], -i)
                if any(c is not h and c.start < h.end and h.start < c.end and r > rank for c, r in same):
                    continue
        final.append(h)
    flags: list[tuple[int, Finding]] = []
    discounted: list[Finding] = []
    for pos, h in enumerate(final):
        ctx = (f"kind: {h.rule.kind}",) + tuple(h.notes)
        if h.discount is None:
            flags.append((pos, Finding(h.rule.category, h.rule.severity, h.rule.id, h.match, h.sentence, ctx)))
        else:
            discounted.append(Finding(h.rule.category, "low", h.rule.id, h.match, h.sentence,
                                      (h.discount, f"rule severity: {h.rule.severity}") + ctx))
    # Severity combination per category: the top flag rises one level per escalating element present.
    kind_of = {h.rule.id: h.rule.kind for h in final}
    out: list[tuple[int, Finding]] = []
    for cat in CATEGORIES:
        in_cat = [(p, f) for p, f in flags if f.category == cat]
        if not in_cat:
            continue
        top_i = max(range(len(in_cat)), key=lambda i: (SEVERITIES.index(in_cat[i][1].severity), -i))
        top = in_cat[top_i][1]
        top_kind = kind_of.get(top.rule, "")
        present: dict[str, str] = {}
        for _p, f in in_cat:
            k = kind_of.get(f.rule, "")
            if k in ESCALATORS and f is not top:
                present.setdefault(k, f"{k} ({f.match})")
        for rule, match, _si in mods:
            if rule.category in (cat, "any"):
                present.setdefault(rule.kind, f"{rule.kind} ({match})")
        present.pop(top_kind, None)
        if top_kind == "injury":
            present.pop("time", None)
        if present:
            steps = len(present)
            new_sev = _raise(top.severity, steps)
            note = "combined with " + ", ".join(present[k] for k in sorted(present))
            if new_sev != top.severity:
                note += f": {top.severity} -> {new_sev}"
            in_cat[top_i] = (in_cat[top_i][0], Finding(top.category, new_sev, top.rule, top.match, top.sentence,
                                                       top.context + (note,)))
        out.extend(in_cat)
    out.sort(key=lambda pf: (-SEVERITIES.index(pf[1].severity), pf[0]))
    return Screening(flags=tuple(f for _, f in out), discounted=tuple(discounted))


_BUILTIN_MODEL: Any = "built-in"


def screen(text: str, *, lexicon: Lexicon, model: Any = _BUILTIN_MODEL) -> Screening:
    """Screen one entry.  Pure; never raises on any str.  Never logs the text.

    ``model``: the statistical second opinion (journal_relay.score.Model), the built-in one by default;
    None for the rules alone."""
    try:
        text = text if isinstance(text, str) else str(text)
        result, entry = _screen_entry(text, lexicon)
        if model is None:
            return result
        from journal_relay import score
        return score.second_opinion(text, result, lexicon, score.load_model() if model is _BUILTIN_MODEL else model,
                                    entry=entry)
    except Exception as exc:  # noqa: BLE001  # pragma: no cover - a bug must not hide an entry from the therapist
        return Screening(flags=(Finding("self", "medium", "engine.error", "",
                                        "", (f"screening failed ({type(exc).__name__}); read this entry yourself",)),))


def screening_to_json(screening: Screening) -> dict[str, object]:
    def one(f: Finding) -> dict[str, object]:
        return {"category": f.category, "severity": f.severity, "rule": f.rule, "match": f.match,
                "sentence": f.sentence, "context": list(f.context)}

    return {"flags": [one(f) for f in screening.flags], "discounted": [one(f) for f in screening.discounted]}


def screen_jsonl(lines: Iterable[str], *, lexicon: Lexicon) -> Iterator[str]:
    """One output line per non-blank input line: {"id", "flags", "discounted"} or {"id", "error"}."""
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        rid: Any = None
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as exc:
            yield json.dumps({"id": None, "line": lineno,
                              "error": f"line {lineno} is not valid JSON ({exc.__class__.__name__})"})
            continue
        if not isinstance(obj, dict):
            yield json.dumps({"id": None, "line": lineno,
                              "error": f"line {lineno} must be a JSON object with \"id\" and \"text\""})
            continue
        rid = obj.get("id")
        if isinstance(rid, (dict, list)):
            rid = None
            yield json.dumps({"id": None, "line": lineno, "error": f"line {lineno}: \"id\" must be a string or number"})
            continue
        if "id" not in obj:
            yield json.dumps({"id": None, "line": lineno, "error": f"line {lineno} has no \"id\""})
            continue
        text = obj.get("text")
        if not isinstance(text, str):
            yield json.dumps({"id": rid, "line": lineno, "error": f"line {lineno}: \"text\" must be a string"})
            continue
        result = screening_to_json(screen(text, lexicon=lexicon))
        yield json.dumps({"id": rid, "flags": result["flags"], "discounted": result["discounted"]}, ensure_ascii=False)
