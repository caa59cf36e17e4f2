"""Patterns followed word by word: the texts they match without one of their rule's triggers."""

from __future__ import annotations

import pytest

from journal_relay.reach import untriggered, untriggered_report
from journal_relay.screen import load_lexicon, screen


@pytest.mark.parametrize("pattern,triggers,expected", [
    (r"\bhe (?:flushes|bins) my pills\b", ["flushes"], ("he bins my pills",)),
    (r"\bhe (?:flushes|bins) my pills\b", ["flushes", "bins"], ()),
    (r"\bhe (?:flushes|bins) my pills\b", ["pills"], ()),  # every way through holds the trigger
    (r"\bkill(?:ed|s)? myself\b", ["kill", "killed"], ("kills myself",)),
    (r"\b(?:my|the) phone\b", ["my phone"], ("the phone",)),  # a two-word trigger
    (r"\bi (?:\w+ )?hate him\b", ["hate"], ()),
    (r"\b\w+cide\b", ["suicide"], ("~cide",)),  # a word the pattern leaves open is no trigger
    (r"\bkill", ["kill"], ()),
    (r"kill\b", ["kill"], ("kill",)),  # may be the end of "skill"
    (r"\b(?:a|b)(?:c|d)(?:e|f)(?:g|h)\b", [], ("aceg",)),  # one example per word read so far
])
def test_untriggered_names_what_no_trigger_reaches(pattern, triggers, expected):
    assert untriggered(pattern, triggers, limit=1) == expected


def test_a_pattern_beyond_reading_says_nothing():
    assert untriggered("(", ["x"]) == ()


def test_practice_rules_are_reported_and_built_in_ones_only_when_asked(tmp_path):
    practice = tmp_path / "practice.toml"
    practice.write_text("""
[[rule]]
id = "self.zorb"
category = "self"
severity = "high"
kind = "injury"
triggers = ["zorbed"]
patterns = ['\\bi (?:zorbed|blimmed) my (?:arm|leg)\\b']
examples = ["I zorbed my arm."]
""", encoding="utf-8")
    lex = load_lexicon(practice)
    (line,) = untriggered_report(lex)
    assert line.startswith("rule 'self.zorb' pattern 1 ") and "'i blimmed my arm'" in line
    assert len(untriggered_report(lex, built_in=True)) > 1


ROUND_14_RULES = ("self.veiled_more", "self.failed_attempt", "danger.abuse_more", "danger.menace_signs",
                  "danger.covert_harm", "others.veiled_more", "others.harm_done_result")


@pytest.mark.parametrize("rule_id", ROUND_14_RULES)
def test_the_newest_rules_reach_every_pattern(rule_id):
    rule = load_lexicon().rule(rule_id)
    assert [untriggered(p.pattern, rule.triggers, limit=1) for p in rule.patterns] == [()] * len(rule.patterns)


@pytest.mark.parametrize("text,rule_id", [
    ("I keep hoping for a car to hit me.", "self.veiled_more"),
    ("He thrashes Mia for spilling her juice.", "danger.abuse_more"),
    ("He figured out which school my son goes to.", "danger.menace_signs"),
    ("Caught him researching untraceable poisons.", "danger.covert_harm"),
    ("My insulin pens keep vanishing.", "danger.covert_harm"),
])
def test_alternatives_once_out_of_reach_flag(text, rule_id):
    assert rule_id in [f.rule for f in screen(text, lexicon=load_lexicon()).flags]
