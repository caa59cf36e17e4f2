"""Screen stage: text -> explained risk findings (pure, no I/O beyond loading the lexicon)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

SEVERITIES = ("low", "medium", "high", "urgent")  # ascending


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

    def reaches(self, severity: str) -> bool:
        top = self.top_severity
        return top is not None and SEVERITIES.index(top) >= SEVERITIES.index(severity)


@dataclass(frozen=True)
class Lexicon:
    rules: tuple[tuple[str, str, str, re.Pattern[str]], ...] = field(default=())


def load_lexicon(practice_file: Path | None = None) -> Lexicon:
    rules = (
        ("self.kill_myself", "self", "urgent", re.compile(r"\b(kill(ing)? (myself|themself)|end my life|suicidal)\b", re.I)),
        ("others.kill_them", "others", "urgent", re.compile(r"\bkill (him|her|them)\b", re.I)),
        ("danger.hits_me", "danger", "high", re.compile(r"\b(hits|hit|beats) me\b", re.I)),
    )
    return Lexicon(rules=rules)


def screen(text: str, *, lexicon: Lexicon) -> Screening:
    flags = []
    for sentence in re.split(r"(?<=[.!?])\s+|\n+", text):
        for rule_id, cat, sev, pat in lexicon.rules:
            m = pat.search(sentence)
            if m:
                flags.append(Finding(cat, sev, rule_id, m.group(0), sentence.strip()))
    return Screening(flags=tuple(flags))


def screening_to_json(screening: Screening) -> dict[str, object]:
    def one(f: Finding) -> dict[str, object]:
        return {"category": f.category, "severity": f.severity, "rule": f.rule, "match": f.match,
                "sentence": f.sentence, "context": list(f.context)}

    return {"flags": [one(f) for f in screening.flags], "discounted": [one(f) for f in screening.discounted]}


class LexiconError(ValueError):
    """A lexicon file that cannot be used; the message says what to fix."""


def screen_jsonl(lines, *, lexicon: Lexicon):  # type: ignore[no-untyped-def]
    import json

    for line in lines:
        if not line.strip():
            continue
        item = json.loads(line)
        yield json.dumps({"id": item.get("id"), **screening_to_json(screen(item.get("text", ""), lexicon=lexicon))})
