"""Recurrence: which words and phrases come back across a client's entries (pure)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

_WORD = re.compile(r"[a-z][a-z']+")
# Function words and journaling filler: they recur in every text and say nothing.
_STOP = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing don't down during each even ever every few for from further
    get got had has have having he her here hers herself him himself his how i i'd i'll i'm i've if in into is
    it it's its itself just know let like me more most much my myself no nor not now of off on once only or
    other ought our ours ourselves out over own really same she should so some still such than that that's the
    their theirs them themselves then there these they they're thing things think this those through to too
    today under until up very was we were what when where which while who whom why will with would you your
    yours yourself yourselves feel feeling felt going gonna want wanted week day time way one two lot maybe
    bit kind sort said say says back went go come came make made take took see saw well though yet again
    always never tonight yesterday morning night""".split()
)


@dataclass(frozen=True)
class Theme:
    phrase: str
    entries: int  # how many entries it appears in


def _terms(text: str) -> set[str]:
    words = [w.strip("'") for w in _WORD.findall(text.lower())]
    words = [w[:-1] if len(w) > 4 and w.endswith("s") and not w.endswith("ss") else w for w in words]
    content = [w for w in words if w not in _STOP and len(w) > 2]
    terms = set(content)
    for first, second in zip(words, words[1:], strict=False):
        if first not in _STOP and second not in _STOP and len(first) > 2 and len(second) > 2:
            terms.add(f"{first} {second}")
    return terms


def recurring(texts: Sequence[str], *, background: Sequence[str] = (), limit: int = 8) -> tuple[Theme, ...]:
    """Terms found in at least two of `texts` + `background`, and in at least one of `texts`."""
    current = [_terms(t) for t in texts]
    seen_now = set().union(*current) if current else set()
    counts: Counter[str] = Counter()
    for terms in current + [_terms(t) for t in background]:
        counts.update(terms & seen_now)
    ranked = sorted(
        ((term, n) for term, n in counts.items() if n >= 2),
        key=lambda item: (-item[1], -(" " in item[0]), item[0]),
    )
    chosen: list[Theme] = []
    for term, n in ranked:
        # A word already shown inside an equally frequent phrase adds nothing.
        if any(term in theme.phrase.split() and theme.entries == n for theme in chosen):
            continue
        chosen.append(Theme(phrase=term, entries=n))
        if len(chosen) == limit:
            break
    return tuple(chosen)
