"""Which texts a lexicon pattern can match that hold none of its rule's triggers.

A rule is tried only on a sentence holding one of its triggers (the index that keeps screening fast),
so an alternative of a pattern that holds no trigger word fires only when some other trigger of the rule
happens to be in the sentence: "he (?:flushes|bins) my pills" with the trigger "flushes" never flags
"he bins my pills". This module follows a pattern's regular expression word by word and names such
alternatives by an example text, for whoever writes the rule to add a trigger.

The example texts are in the normalised form patterns are matched against ("do not", "i will"). A
character class or a wildcard inside a word makes that word unknown, shown as "~".
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from journal_relay.screen import Lexicon

# The parser behind re.compile: private, but the only full reading of Python's regular-expression syntax.
# A pattern it cannot read (another Python's internals) is reported as having nothing to say.
try:  # pragma: no cover - the import path only varies between Pythons
    from re import _constants as _C  # type: ignore[attr-defined]
    from re import _parser as _P  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    _C = _P = None

_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789'@$")
_OPEN = "\x00"  # a character the pattern leaves open (a class, a wildcard)
_SEPARATOR = " "
_MAX_PATHS = 20_000  # a pattern this intricate is not followed (none of the built-in ones comes near)

# A path through the pattern that has met no trigger yet: (the word being read, whether that word may
# continue to the left of where the pattern started, the previous word when it can begin a two-word
# trigger, the text so far). A path that met a trigger is dropped: it is reachable.
_Path = tuple[str, bool, str | None, str]


class _Walk:
    def __init__(self, triggers: Iterable[str]) -> None:
        words = set(triggers)
        self.singles = {t for t in words if " " not in t}
        self.pairs = {t for t in words if " " in t}
        self.firsts = {t.split(" ")[0] for t in self.pairs}

    def end_word(self, path: _Path) -> _Path | None:
        """The path with its current word finished (what follows starts after a boundary), or None when
        that word is a trigger."""
        word, open_left, prev, text = path
        if not word:
            return ("", False, prev, text)
        fixed = None if open_left or _OPEN in word else word
        if fixed is not None and (fixed in self.singles or (prev is not None and f"{prev} {fixed}" in self.pairs)):
            return None
        return ("", False, fixed if fixed in self.firsts else None, text)

    def char(self, paths: set[_Path], ch: str) -> set[_Path]:
        out: set[_Path] = set()
        for path in paths:
            if ch == _OPEN or ch in _WORD_CHARS:
                out.add((path[0] + ch, path[1], path[2], path[3] + ("~" if ch == _OPEN else ch)))
                continue
            ended = self.end_word(path)
            if ended is not None:
                # Only a space keeps the previous word for a two-word trigger ("my phone").
                out.add((ended[0], False, ended[2] if ch == _SEPARATOR else None, ended[3] + ch))
        return out

    def boundary(self, paths: set[_Path]) -> set[_Path]:
        out: set[_Path] = set()
        for path in paths:
            ended = self.end_word(path)
            if ended is not None:
                out.add(ended)
        return out

    def sequence(self, items: Iterable[tuple[object, object]], paths: set[_Path]) -> set[_Path]:
        for op, av in items:
            paths = self.item(op, av, paths)
            if len(paths) > _MAX_PATHS:
                raise OverflowError
            # One example text per state is enough: the shortest (then the first in order), so messages are short
            # and the same from run to run.
            best: dict[tuple[str, bool, str | None], _Path] = {}
            for p in paths:
                key = p[:3]
                if key not in best or (len(p[3]), p[3]) < (len(best[key][3]), best[key][3]):
                    best[key] = p
            paths = set(best.values())
        return paths

    def item(self, op: object, av: object, paths: set[_Path]) -> set[_Path]:  # noqa: C901 - one case per node
        C = _C
        if op is C.LITERAL:
            return self.char(paths, chr(av).lower())  # type: ignore[arg-type]
        if op in (C.NOT_LITERAL, C.ANY):
            return self.char(paths, _OPEN)
        if op is C.IN:
            members: list[tuple[object, object]] = list(av)  # type: ignore[call-overload]
            literals = [chr(a) for o, a in members if o is C.LITERAL]  # type: ignore[arg-type]
            if len(literals) == len(members) and len(literals) <= 4:  # [sz], [ -]: each one
                return set().union(*(self.char(paths, ch.lower()) for ch in literals))
            return self.char(paths, _OPEN)
        if op is C.CATEGORY:
            return self.char(paths, _SEPARATOR if av is C.CATEGORY_SPACE else _OPEN)
        if op is C.BRANCH:
            return set().union(*(self.sequence(alt, paths) for alt in av[1]))  # type: ignore[index]
        if op is C.SUBPATTERN:
            return self.sequence(av[-1], paths)  # type: ignore[index]
        if op in (C.MAX_REPEAT, C.MIN_REPEAT, getattr(C, "POSSESSIVE_REPEAT", None)):
            low: int = av[0]  # type: ignore[index]
            high: int = av[1]  # type: ignore[index]
            sub: list[tuple[object, object]] = av[2]  # type: ignore[index]
            for _ in range(low):
                paths = self.sequence(sub, paths)
            # The fewest repetitions, and one more (a suffix that may be there: "kill(?:ed)?").
            return paths | self.sequence(sub, paths) if high > low else paths
        if op is C.AT:
            if av in (C.AT_BOUNDARY, C.AT_BEGINNING, C.AT_BEGINNING_STRING, C.AT_END, C.AT_END_STRING):
                return self.boundary(paths)
            return paths
        # Look-arounds and back-references match no text of their own.
        return paths


def untriggered(pattern: str, triggers: Iterable[str], *, limit: int = 3) -> tuple[str, ...]:
    """Up to ``limit`` example texts that ``pattern`` matches holding none of ``triggers`` (words, or two
    words "a b" one after the other); () when every match holds one, or when the pattern is beyond this
    reading (too many ways through it, or a Python whose parser differs)."""
    if _P is None:
        return ()
    walk = _Walk(triggers)
    try:
        tree = _P.parse(pattern)
        paths = walk.sequence(list(tree), {("", True, None, "")})
    except (OverflowError, re.error, AttributeError, TypeError, ValueError):
        return ()
    examples = set()
    for path in paths:
        if walk.end_word(path) is not None:  # the last word is not a trigger either
            examples.add(path[3].strip())
    return tuple(sorted(examples, key=lambda t: (len(t), t))[:limit])


def untriggered_report(lexicon: Lexicon, *, built_in: bool = False) -> list[str]:
    """One line per pattern of a practice file's rules (with ``built_in``, of every rule) that can match a
    text holding none of its rule's triggers, with an example of such a text."""
    lines = []
    for rule in lexicon.rules:
        if rule.source.startswith("built-in") and not built_in:
            continue
        for number, pattern in enumerate(rule.patterns, 1):
            examples = untriggered(pattern.pattern, rule.triggers, limit=1)
            if examples:
                lines.append(f"rule '{rule.id}' pattern {number} matches text holding none of its triggers, such as "
                             f"{examples[0]!r}: the rule is tried only on a sentence with a trigger, so add one of "
                             f"that text's words to 'triggers'")
    return lines
