"""Screening stage tests.  Assertion messages carry rule ids and example ids, not journal text."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journal_relay.screen import (
    BUILTIN_LEXICON,
    SEVERITIES,
    LexiconError,
    Screening,
    load_lexicon,
    screen,
    screen_jsonl,
    screening_to_json,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "screening"
LEX = load_lexicon()


def _rules_with(attr: str):
    return [(r.id, i, text) for r in LEX.rules for i, text in enumerate(getattr(r, attr))]


@pytest.mark.parametrize("rule_id,i,text", _rules_with("examples"), ids=lambda v: str(v)[:30])
def test_rule_examples_flag_their_category(rule_id, i, text):
    rule = LEX.rule(rule_id)
    s = screen(text, lexicon=LEX)
    assert any(f.category == rule.category for f in s.flags), f"{rule_id} example #{i} not flagged"


@pytest.mark.parametrize("rule_id,i,text", _rules_with("counter_examples"), ids=lambda v: str(v)[:30])
def test_rule_counter_examples_not_flagged(rule_id, i, text):
    s = screen(text, lexicon=LEX)
    assert not s.flags, f"{rule_id} counter-example #{i} flagged by {[f.rule for f in s.flags]}"


def test_exceptions_end_on_a_whole_word():
    """An exception closing on short words ("grabbed me (?:a|some)") must end on a word boundary: otherwise "a"
    also matches the start of "and", and "He grabbed me and I couldn't get away" reads as "grabbed me a coffee"."""
    data = tomllib.loads(Path(BUILTIN_LEXICON).read_text(encoding="utf-8"))
    open_ended = []
    for rule in data["rule"]:
        for pat in rule.get("exceptions", []):
            m = re.search(r"\((?:\?:)?((?:[a-z ]+\|)+[a-z ]+)\)$", pat)
            if m and any(len(alt) <= 3 for alt in m.group(1).split("|")) and not m.group(1).endswith(" "):
                open_ended.append((rule["id"], pat[-40:]))
    assert not open_ended


def test_safety_examples_reach_their_minimum():
    for k, ex in enumerate(LEX.safety):
        s = screen(ex.text, lexicon=LEX)
        assert any(f.category == ex.category and SEVERITIES.index(f.severity) >= SEVERITIES.index(ex.min_severity)
                   for f in s.flags), f"safety example #{k}"


def _one(text: str) -> Screening:
    return screen(text, lexicon=LEX)


@pytest.mark.parametrize("text,reason", [
    ("I'm not suicidal.", "negation"),
    ("I would never hurt myself.", "negation"),
    ("My friend said she wanted to die.", "someone else"),
    ("We watched a documentary about suicide.", "media"),
    ("Five years ago I tried to end my life.", "past"),
    ("This commute is going to kill me.", "idiom"),
])
def test_discounted_findings_stay_visible_with_reason(text, reason):
    s = _one(text)
    assert not s.flags
    assert s.discounted and all(f.severity == "low" for f in s.discounted)
    assert any(c.startswith(reason) for f in s.discounted for c in f.context), [f.context for f in s.discounted]


@pytest.mark.parametrize("text", [
    "I don't want to live.", "There's no reason to go on.", "I can't stop thinking about dying.",
])
def test_negation_that_belongs_to_the_risk_phrase_still_flags(text):
    assert _one(text).flags


@pytest.mark.parametrize("text", [
    "I got a haircut.", "We have a photo shoot on Friday.", "Let's hang out later.", "I need to cut back on sugar.",
    "My phone died.", "She killed it on stage.", "I'm dead tired.", "I could murder a burger.",
])
def test_double_meanings_and_idioms_do_not_flag(text):
    assert not _one(text).flags


@pytest.mark.parametrize("text", [
    "k.i.l.l myself", "s u i c i d a l", "i want to kiill myself", "i want to kill myslef",
    "su1c1dal again", "i want to unalive myself", "honestly sewerslide", "kms", "I feel suicidaaaal",
    "dnt want 2 b alive anymore fr fr", "evry1 wud b better off without me",
])
def test_obfuscation_and_slang(text):
    assert any(f.category == "self" for f in _one(text).flags)


def test_explicit_ideation_is_urgent_and_flag_is_explained():
    s = _one("I want to kill myself.")
    assert s.top_severity == "urgent" and s.reaches("high")
    f = s.flags[0]
    assert f.rule == "self.kill_myself" and f.match == "kill myself" and f.sentence == "I want to kill myself."


def test_severity_combines_ideation_with_means_and_time():
    base = _one("I wish I was dead.")
    combined = _one("I wish I was dead. I have the pills here and tonight is quiet.")
    assert base.top_severity == "high" and combined.top_severity == "urgent"
    assert any("combined with" in c for c in combined.flags[0].context)


def test_quoted_therapist_question_is_not_the_clients_words():
    s = _one("> Have you had thoughts of killing yourself or of suicide?\nThanks, see you Tuesday.")
    assert not s.flags and s.discounted
    s = _one("You asked if I have thoughts of suicide. No, not this week.")
    assert not s.flags
    s = _one("You asked if I still think about suicide. Yes, most nights.")
    assert s.flags and any("answer" in c for c in s.flags[0].context)


def test_someone_elses_question_answered_no_covers_only_its_own_clause():
    # The no answers the question, not a wish said in a clause after it.
    assert not _one("My dentist asked whether I'd been harming myself, and I said no.").flags
    assert _one("The midwife asked if I was okay since I want to kill myself. I said no.").flags


@pytest.mark.parametrize("text", [
    "I want to kill myself and my therapist asked if I was okay.",
    "I cut myself again last night and when the nurse asked about it I lied.",
    "I took too many pills on Sunday, the doctor asked whether it was an accident.",
])
def test_risk_said_before_a_reported_question_is_the_writers_own(text):
    assert _one(text).flags


@pytest.mark.parametrize("text", [
    "My therapist asked if I was okay, and I want to kill myself.",  # the question ended before "and I"
    "I want to kill myself, and five years ago I moved to this town.",  # the past marker dates the move
    "Five years ago I moved to this town, and I'm ready to die.",  # the writer's present, joined on
    "Lol my cat is sitting on my keyboard, and I want to kill myself.",  # the joke is the cat
    "Since my mum died two years ago, I know I'm a burden on all of them, but not for much longer.",  # up to now
    "Ever since the accident years ago I think about ending it.",
])
def test_a_cue_in_a_clause_of_its_own_does_not_discount(text):
    assert _one(text).flags


@pytest.mark.parametrize("text", [
    "Five years ago, after my divorce, I took an overdose.",  # one story, told over clauses
    "Two years ago my dad died and I tried to kill myself.",  # joined on, but in the past
    "You asked if I have thoughts of suicide, self-harm or hurting others, and honestly no.",
    "I failed my driving test and I'm planning another attempt in May.",  # points back to the test
    "I tried to kill myself two years ago and since then I have been better.",
])
def test_a_cue_that_governs_the_next_clause_still_does(text):
    assert not _one(text).flags


@pytest.mark.parametrize("text,flagged", [
    ("He doesn't know I have the pills saved.", True),
    ("I've got the rope ready.", True),
    ("I have the blades hidden for when it gets bad.", True),
    ("I have my tablets ready for the holiday.", False),
    ("I keep my pills hidden from the kids.", False),
])
def test_means_kept_ready_without_a_purpose(text, flagged):
    assert bool(_one(text).flags) is flagged


def test_screening_to_json_shape():
    d = screening_to_json(_one("I'm not suicidal. I want to die."))
    assert set(d) == {"flags", "discounted"}
    for f in d["flags"] + d["discounted"]:
        assert set(f) == {"category", "severity", "rule", "match", "sentence", "context"}
        assert isinstance(f["context"], list)


def test_screen_jsonl_good_and_malformed_lines():
    lines = [json.dumps({"id": 1, "text": "I want to die"}), json.dumps({"id": "b", "text": "Nice walk today."}),
             "{not json", json.dumps([1, 2]), json.dumps({"text": "no id"}), json.dumps({"id": 3, "text": 5}), ""]
    out = [json.loads(x) for x in screen_jsonl(lines, lexicon=LEX)]
    assert len(out) == 6
    assert out[0]["id"] == 1 and out[0]["flags"] and "discounted" in out[0]
    assert out[1] == {"id": "b", "flags": [], "discounted": []}
    assert all("error" in o for o in out[2:])
    assert out[5]["id"] == 3


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_never_raises_on_any_text(text):
    s = screen(text, lexicon=LEX)
    assert isinstance(s, Screening)
    assert all(f.rule != "engine.error" for f in s.flags)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["kill", "myself", "not", "k.i.l.l", "s u i c", "ide", "\u200b", "die", ">", "\n",
                                 "'", "n't", "I", "he", "said", "\"", "1", "$", "*", "!!!", "years ago", "--", "my self"]),
                max_size=30))
def test_never_raises_on_risky_fragments(parts):
    s = screen(" ".join(parts), lexicon=LEX)
    assert all(f.rule != "engine.error" for f in s.flags)


# -- practice files ---------------------------------------------------------------------------------

def _practice(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "practice.toml"
    p.write_text(body, encoding="utf-8")
    return p


def test_practice_adds_a_rule(tmp_path):
    lex = load_lexicon(_practice(tmp_path, '''
[[rule]]
id = "self.practice_tram"
category = "self"
severity = "high"
kind = "passive"
triggers = ["tram"]
patterns = ['\\bcatch the tram for good\\b']
examples = ["I might catch the tram for good."]
counter_examples = ["I will catch the tram at nine."]
'''))
    # (The built-in lexicon knows "catch the bus" slang since round 3, so the practice's own slang is a tram.)
    assert any(f.rule == "self.practice_tram" for f in screen("Might catch the tram for good.", lexicon=lex).flags)
    # The rules alone: the statistical model may well read "catch the tram for good" as risk too.
    assert not screen("Might catch the tram for good.", lexicon=LEX, model=None).flags


def test_practice_disables_and_reweights(tmp_path):
    lex = load_lexicon(_practice(tmp_path, 'disable = ["self.preparation"]\n[severity]\n"danger.fear" = "urgent"\n'))
    assert "self.preparation" not in [r.id for r in lex.rules]
    assert screen("I don't feel safe at home.", lexicon=lex).top_severity == "urgent"


def test_practice_that_breaks_a_safety_example_is_refused(tmp_path):
    with pytest.raises(LexiconError, match="refused"):
        load_lexicon(_practice(tmp_path, 'disable = ["self.kill_myself", "self.suicide_thoughts"]\n'))
    with pytest.raises(LexiconError, match="refused"):
        load_lexicon(_practice(tmp_path, '[severity]\n"self.kill_myself" = "low"\n"self.suicide_thoughts" = "low"\n'))


@pytest.mark.parametrize("body,needle", [
    ('disable = ["self.nope"]\n', "unknown rule"),
    ('[severity]\n"self.kill_myself" = "extreme"\n', "must be one of"),
    ('[[rule]]\nid = "x.y"\ncategory = "slef"\nseverity = "low"\ntriggers = ["a"]\npatterns = ["a"]\n', "category"),
    ('[[rule]]\nid = "self.bad"\ncategory = "self"\nseverity = "low"\ntriggers = ["a"]\npatterns = ["(a"]\n', "not a valid regular"),
    ('[[rule]]\nid = "self.bad"\ncategory = "self"\nseverity = "low"\ntriggers = ["zz"]\npatterns = ["zzz"]\nexamples = ["qq"]\n', "does not flag its own example"),
    ('this is = not toml [', "not valid TOML"),
])
def test_practice_errors_are_one_clear_line(tmp_path, body, needle):
    with pytest.raises(LexiconError) as exc:
        load_lexicon(_practice(tmp_path, body))
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_builtin_patterns_are_compiled_on_first_use_and_all_compile():
    from journal_relay import screen as S

    fresh = S._builtin.__wrapped__(str(S.BUILTIN_LEXICON))[0]  # a new load, not the process's cached one
    every = [p for r in fresh.rules for p in (*r.patterns, *r.exceptions, *r.unless, *r.requires, *r.entry_requires)]
    assert every and all(p._rx is None for p in every)  # loading compiled none of them (start-up stays short)
    for p in every:
        p.compiled()
    assert all(S._gate(r) is r.gate[0] for r in fresh.rules)  # every rule's gate can be worked out, once


# -- evaluation on our own labelled set ----------------------------------------------------------------

def test_eval_on_own_labelled_set_meets_target(capsys):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import screen_eval

    for name in ("labelled.jsonl", "holdout.jsonl"):
        res = screen_eval.evaluate(DATA / name, LEX, out=open("/dev/null", "w"))
        assert res["recall"] >= 0.95, (name, res)
        assert res["fp_rate"] <= 0.10, (name, res)
    dev = ROOT / ".." / "shared" / "screening" / "dev.jsonl"
    if dev.exists():
        res = screen_eval.evaluate(dev, LEX, out=open("/dev/null", "w"))
        assert res["recall"] >= 0.95 and res["fp_rate"] <= 0.10, res


def test_eval_script_runs_and_exits_zero():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "screen_eval.py"), str(DATA / "labelled.jsonl")],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and "recall on risk items" in r.stdout


def test_scope_script_prints_counts_only():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "screen_scope.py"), "--n", "3"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and "lost in all:" in r.stdout
    assert "kill" not in r.stdout  # numbers and cue names, never a risk statement


# -- round 2: relapse context, new kinds, two-word triggers, shortcuts ------------------------------------

@pytest.mark.parametrize("text", [
    "I relapsed on Sunday and burned my arm, after six months clean.",
    "Cut myself last week for the first time in two years.",
    "Lost my streak yesterday, three months without hurting myself and now it's gone.",
])
def test_relapse_is_recent_harm_not_resolved_history(text):
    s = _one(text)
    assert any(f.category == "self" for f in s.flags), [f.context[0] for f in s.discounted]


@pytest.mark.parametrize("text", [
    "Ages ago I used to burn myself, that's all behind me now.",
    "I've been clean from cutting for four years.",
])
def test_resolved_history_is_still_discounted(text):
    s = _one(text)
    assert not s.flags, [f.rule for f in s.flags]


# -- past / resolved history, by how people mark that something is over --------------------------------------

@pytest.mark.parametrize("text,reason", [
    ("I overdosed at twenty-three and spent a week on a medical ward.", "past"),  # an age in words
    ("My dad hit us when we were kids.", "past"),
    ("I was fifteen when I tried to take my life, and I'm forty now.", "past"),
    ("Self-harm was how I coped through sixth form.", "past"),
    ("When my first marriage ended in the 90s I tried to take my life.", "past"),
    ("My old journal from uni is full of wanting to die.", "past"),  # looking back at old writing
    ("The anniversary of my overdose is next month.", "past"),
    ("Forty years ago this month I tried to end my life.", "past"),  # "this month" dates the anniversary
    ("Ten years ago a day like today would have had me wanting to die.", "past"),  # "like today" compares
    ("I remember wishing I was dead during chemo.", "past"),
    ("I was self-harming at uni but stopped when I got help.", "past"),
    ("In the army I had thoughts of shooting myself, but that ended when I left.", "past"),
    ("The last time I self-harmed was before my son was born.", "past"),
    ("I mentioned my past hospitalisation for self-harm at the interview.", "past"),
    ("Ten years self-harm free today.", "resolved"),
    ("It's a year today since I last self harmed.", "resolved"),
    ("It's three years since my psychotic episode, when I believed I had to walk into the sea.", "past: three years since"),
    # the next sentence closes it: it says it is over, or dates it
    ("I tried to hang myself. That was 15 years ago.", "past (next sentence)"),
    ("After my mum died I took too many pills one night. That was 2012, and I've been well since.",
     "past (next sentence)"),
    ("At uni I took an overdose and ended up in A&E. Now I volunteer on that hospital's helpline.",
     "resolved (next sentence)"),
    ("Last time I saw them I'd just come out of hospital after my overdose. Different person now.",
     "resolved (next sentence)"),
    # a fragment goes on from the sentence before that looks back
    ("Found my old diary from 2011 while clearing the loft. Pages of wanting to die.", "past (sentence before)"),
])
def test_past_and_resolved_history_is_discounted(text, reason):
    s = _one(text)
    assert not s.flags, [(f.rule, f.match) for f in s.flags]
    assert any(c.startswith(reason) for f in s.discounted for c in f.context), [f.context for f in s.discounted]


@pytest.mark.parametrize("text", [
    # a present wish or plan alongside the history
    "I want to die like I did when I was 15.",
    "Years ago I was abused, and now I want to kill him.",
    "There was a time I'd have said no, but I do want to die.",
    "My dad abused me as a kid and I've started planning how to hurt him.",
    "I've been clean for three years but I want to cut so badly.",
    # recent, back, or not a past marker at all
    "It's the anniversary of my overdose and I want to do it again.",
    "I tried to hang myself. That was last week.",
    "I cut myself. That was last night.",
    "I wanted to kill myself at uni. I'm in a better place now but the thoughts are back.",
    "Back when I was drinking I wanted to die, and I feel the same now.",
    "He kneed me in the stomach when I was 20 weeks pregnant.",  # not an age
    "I'm going to take all the pills at 3 am.",  # a time, not an age
    "He followed me to the bus stop and stood right behind me.",  # "behind me" is a place here
    "I cut my arm again last night, right over my old self-harm scars.",
])
def test_current_risk_alongside_history_still_flags(text):
    s = _one(text)
    assert s.flags, [f.context for f in s.discounted]


# -- past history vs current risk: habitual present, a threat that goes on, ages vs times, resolved durations,
#    a present plan later in the sentence ------------------------------------------------------------------

@pytest.mark.parametrize("text,note", [
    # a habitual present over the match
    ("I was 15 when he first hit me and he hits me every week.", "habitual"),
    ("Whenever he drinks he hits me, like he did when I was a kid.", "habitual"),
    ("He used to shove me and now he keeps hitting me.", "habitual"),
    ("My dad used to beat me and he has been hitting me again since Christmas.", "recent"),
    ("I was 15 when he first hit me and he still hits me.", "recent"),
    # a past act of violence whose threat goes on (same sentence, the one before or after)
    ("My ex hurt me last year and he keeps texting that he'll finish it.", "continues"),
    ("He broke my arm last year. He's out of prison now and he's been outside my flat.", "continues"),
    ("My ex has found out where I'm living now. Last year he broke my wrist.", "continues"),
    # a time is not an age
    ("I took an overdose at 11 and I feel sick.", None),
    ("I took an overdose at 15:30.", None),
    # a few days is not a resolved history
    ("It's two days since I last cut myself.", None),
    ("I was clean for a few days but I cut myself.", None),
    # a present plan later in the sentence, about the same harm
    ("It's three years since my overdose and I'm planning another.", "current"),
    ("I tried to kill myself at 15 and I'm thinking about a second attempt.", "current"),
])
def test_current_risk_is_not_history(text, note):
    s = _one(text)
    assert s.flags, [f.context for f in s.discounted]
    if note:
        assert any(c.startswith(note) for f in s.flags for c in f.context), [f.context for f in s.flags]


@pytest.mark.parametrize("text", [
    # a past habit, or a present habit of something else
    "I used to hit myself whenever I made a mistake.",
    "In my twenties I thought about killing myself every day.",
    "When I was 15 my dad beat me every week.",
    "My dad used to beat me, and he visits every week now.",
    "My mum says he hit me every week when I was small.",
    # the person who hurt the writer is not a threat now
    "My dad hit us when we were kids. He's 80 now and in a home.",
    "My ex used to hit me, but he's out of my life now.",
    # ages stay ages
    "I took an overdose at 15 and spent a week in hospital.",
    "I overdosed at age 9.",
    # long enough to be a resolved history
    "It's 10 days since I last cut myself.",
    "It's three weeks since I last cut myself.",
    # "again" of what will not happen; a plan of something else
    "I tried to end my life years ago and I'm not going to do that again.",
    "I tried to end my life years ago and I will never do that again.",
    "I overdosed at 15 and I want to talk about it.",
    "I overdosed at 15 and I'm planning another trip.",
])
def test_history_stays_history(text):
    s = _one(text)
    assert not s.flags, [(f.rule, f.context) for f in s.flags]


def test_a_relapse_needs_a_count_before_without():
    # "broke my arm without shaking" is not "broke my streak": the past still discounts via the next sentence
    s = _one("I can talk about the time my ex broke my arm without shaking now. That was eleven years ago.")
    assert not s.flags and any("next sentence" in c for f in s.discounted for c in f.context)


@pytest.mark.parametrize("text,category", [
    ("Honestly my parents would manage fine if I was gone.", "self"),
    ("I keep wishing I could just cease to exist.", "self"),
    ("I drafted a farewell email to my friends tonight.", "self"),
    ("I googled how many of my insulin pens it would take.", "self"),
    ("I drove to the bridge and stood at the railing thinking about jumping.", "self"),
    ("I want to set fire to his van.", "others"),
    ("He takes my wages and my bank card every Friday.", "danger"),
    ("If I leave, she says she'll take the children.", "danger"),
    ("Nothing is ever going to change, and the pills are in the kitchen drawer.", "self"),
    ("I keep thinking about smothering him with a pillow while he sleeps.", "others"),
    ("I'll be waiting for that guy after work with a bat.", "others"),
    ("They would honestly be better off without me dragging them down.", "self"),
    # round 11
    ("My brother pointed his air pistol at me across the garden.", "danger"),  # any weapon, any determiner
    ("Last text said ur dead when i see u.", "danger"),  # a threat's own words
    ("he says im not leaving this flat alive", "danger"),
    ("i stabbde him in the leg last year and id do it again", "others"),  # a transposed letter in an inflection
    ("I burned my shin with the lighter until it blistered.", "self"),
    ("Honestly I keep hoping I'll get ill and just not recover.", "self"),
    ("I shut him in the cupboard under the stairs all night without any food.", "others"),
])
def test_round2_kinds_flag(text, category):
    assert _one(text).top_category == category


@pytest.mark.parametrize("text", [
    "The band sounded better without me on drums tonight.",
    "I'm saving up for driving lessons.",
    "We stood on the roof terrace for the view.",
    "She took my phone to show me a video of her cat.",
    "I'd rather die than go to that quiz again.",
    "Things will get better, I took my tablets today.",
    "I think about hurting her feelings when I cancel plans.",
    "If I leave early she'll make sure dinner is ready.",
    "I wrote a last message to my old team before I left the company.",
    "In case I forget, I wrote notes for when I'm gone on holiday.",
    "We were on the balcony thinking about jumping into the pool.",
    "We had lunch at the top of the cliff.",
    "The world would be better off without me complaining all the time.",
    "She checks where I am every time I travel, she worries.",
    "I slipped on the ice and cut my hand.",
    # round 11
    "My nephew beat me at chess three times in a row.",
    "My manager threw me under the bus in the review.",
    "The cat sitter texted me a photo of the kitten with the ball of wool.",
    "I locked myself in the car for an hour to get some quiet from the kids.",
])
def test_round2_hard_negatives(text):
    # No rule flags them.  The statistical opinion may (it flags "lunch at the top of the cliff" since
    # round 5), but only as a medium note in the digest, never an alert.
    assert not screen(text, lexicon=LEX, model=None).flags
    assert all(f.rule.startswith("model.") and f.severity == "medium" for f in _one(text).flags)


def test_two_word_triggers_in_a_practice_file(tmp_path):
    p = _practice(tmp_path, """
[[rule]]
id = "self.last_tram"
category = "self"
severity = "high"
kind = "passive"
triggers = ["last tram"]
patterns = ['\\bcatch the last tram for good\\b']
examples = ["I might catch the last tram for good."]
counter_examples = ["I'll catch the last tram home."]
""")
    lex = load_lexicon(p)
    assert screen("I might catch the last tram for good.", lexicon=lex).flags
    # The two words must be next to each other (after normalisation) for the rule to be tried.
    assert "last tram" in lex.rule("self.last_tram").triggers
    with pytest.raises(LexiconError, match="one or two lower-case words"):
        load_lexicon(_practice(tmp_path, '[[rule]]\nid = "self.x"\ncategory = "self"\nseverity = "low"\n'
                                         'triggers = ["a b c"]\npatterns = [\'x\']\n'))


def _texts() -> list[str]:
    out = []
    for f in sorted(DATA.glob("*.jsonl")):
        out += [json.loads(line)["text"] for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    return out


def test_shortcuts_change_nothing():
    """The cheap first passes (raw-word look-up, pairs, modifiers only after a flag) are only shortcuts:
    every entry screens the same as when every sentence is normalised and tried."""
    from journal_relay.screen import _screen
    texts = _texts()
    entries = [" ".join(texts[i:i + 7]) for i in range(0, len(texts), 7)] + texts
    entries += ["i w a n t to k i l l my self", "she'll end me if i go", "won't let me see anyone. he keeps my keys",
                "I'd rather not exist\n\nmy   phone and my keys were taken", "s.u.i.c.i.d.e tn", "kms tmrw"]
    for k, t in enumerate(entries):
        assert screening_to_json(_screen(t, LEX)) == screening_to_json(_screen(t, LEX, exhaustive=True)), k


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(
    ["I", "my", "me", "self", "won't", "let", "phone", "keys", "if", "i", "leave", "he'll", "take", "the", "kids",
     "end", "it", "kill", "2", "die", "tonight", "tmrw", "way", "out", "keep", "going", ",", ".", "\n", "k1ll",
     "rope", "better", "off", "without", "gone", "how", "many", "it", "would", "take"]), max_size=30))
def test_shortcuts_change_nothing_fuzz(parts):
    from journal_relay.screen import _screen
    t = " ".join(parts)
    assert screening_to_json(_screen(t, LEX)) == screening_to_json(_screen(t, LEX, exhaustive=True))


def test_words_are_the_words_of_tokens():
    """_Normaliser.words (no spans) gives exactly the words of _Normaliser.tokens, on the labelled texts and
    on spelled-out letters, slang pairs, contractions and leetspeak."""
    from journal_relay.screen import _fold
    texts = _texts() + ["i w a n t to k i l l my self", "s.u.i.c.i.d.e tn", "my   self, sewer slide", "won't k1ll",
                        "I'd've gone — (kms) -- tmrw", "a b c d e", "k  i  l  l", "\u200bki\u00adll m y s e l f"]
    for k, t in enumerate(texts):
        folded = _fold(t)
        assert LEX.norm.words(folded) == LEX.norm.tokens(folded)[0], k


# -- context: false discounts (a negation, a media word, a someone-else word, a history marker that does
# -- not belong to the risk the match reports) ------------------------------------------------------------

def _reasons(s: Screening) -> list[str]:
    return [f.context[0] for f in s.discounted]


@pytest.mark.parametrize("text,category", [
    # "without" negates its own phrase only
    ("I walked home without a jacket hoping to die.", "self"),
    ("I went a week without breakfast wanting to kill myself.", "self"),
    ("I left without saying goodbye hoping I would die tonight.", "self"),
    ("if my landlord tries come in my crib without notice again imma put hands on him", "others"),
    # a media word in another use, or in an earlier clause with the writer acting after it
    ("I got bad news today and want to die.", "self"),
    ("I went to play football and then cut myself.", "self"),
    ("Long story short, want to kill myself.", "self"),
    ("I keep the bat by the door now. The next time he shows up, he won't walk away from it.", "others"),
    ("She posts my timetable on her story and followed me home.", "danger"),
    # slang
    ("I thought about my sh again.", "self"),
    ("i want to unalive", "self"),
    ("having unalive thoughts again", "self"),
    ("i might just unalive", "self"),
    ("going to unalive him", "others"),
    # a recent harm despite a resolved marker; "behind me" as a place
    ("I was clean for two years but I cut myself yesterday.", "self"),
    ("The man stood right behind me and said he would kill me.", "danger"),
    # the one doing it: named, or the subject of the clause before ("..., throws things at me")
    ("My wife screams at me, throws things at me, and I'm scared.", "danger"),
    ("Last night during the row Liam grabbed my throat.", "danger"),
    ("When I said no they pulled me out and kicked me.", "danger"),
    # someone else's possession or object is not the subject of what follows
    ("Took my boyfriend's razor into the shower and cut my hip.", "self"),
    ("When I got back I lined up all her old pills and a bottle of vodka.", "self"),
    ("I'll wait for him behind the sports hall and make him bleed.", "others"),
    # an hour, a pregnancy, a changed belief are not history
    ("At 3 am I wanted to kill myself.", "self"),
    ("He kneed me in the stomach when I was 20 weeks gone.", "danger"),
    ("He says he'll end me. I used to think it was just an expression.", "danger"),
    ("I used to think it was just an expression but he says he'll end me.", "danger"),
    # negations that belong to something else
    ("Not eating is my way of hurting myself.", "self"),
    ("I've been planning to kill myself for a while.", "self"),
    # an exception for "grabbed me a coffee" is not "grabbed me and" (round 12)
    ("He grabbed me and I couldn't get away.", "danger"),
])
def test_context_does_not_discount_real_risk(text, category):
    s = _one(text)
    assert any(f.category == category for f in s.flags), _reasons(s)


@pytest.mark.parametrize("text,reason", [
    ("Three months without hurting myself.", "negation"),
    ("I went to bed without any thoughts of suicide.", "negation"),
    ("I made it through the day without even thinking about killing myself.", "negation"),
    ("We watched a documentary about suicide.", "media"),
    ("Watched a film tonight, it was about suicide.", "media"),
    ("The podcast episode on men and suicide was good.", "media"),
    ("After her overdose I stayed with her.", "someone else"),
    ("My friend's suicide attempt shook me.", "someone else"),
    ("I was talking to my friend who wants to die.", "someone else"),
    ("My husband's been talking about not wanting to be here.", "someone else"),
    ("At 15 I tried to kill myself.", "past"),
    ("I tried to unalive last year.", "past"),
    ("Self harm is behind me now.", "resolved"),
    ("The shelf fell and hit my head.", "no agent: nobody"),
    ("I scalded my hand with boiling water.", "no agent: the writer"),
    # a threat laughed off after it (round 11)
    ("I'm going to strangle my flatmate when she gets in. We both laughed about it at tea.", "jest (sentence after)"),
    ("I will murder my cousin for posting that photo. Okay, not literally.", "jest (sentence after)"),
    ("Told my dad I'd kill him if he sang at the wedding. He sang. Still alive, obviously.", "jest (sentence after)"),
    # what the words were about, said after them (round 12)
    ("Put my affairs in order today, my filing cabinet, I mean, which is now a thing of beauty.", "other sense (said"),
    ("I've given up. On the sourdough, I mean.", "other sense (sentence after)"),
    ("When I said I can't go on like this I meant the job, not life.", "other sense (said after it)"),
])
def test_context_still_discounts(text, reason):
    s = _one(text)
    assert not s.flags, [f.rule for f in s.flags]
    assert any(r.startswith(reason) for r in _reasons(s)), _reasons(s)


@pytest.mark.parametrize("text,category", [
    # the target is the subject of the threat: the writer's own threat
    ("Next time he humiliates me he's going to get what's coming.", "others"),
    ("I've found where he works and he's not going to know what hit him.", "others"),
    ("I left a note telling her she'll regret ever crossing me.", "others"),
    ("I know his route home now. He won't see it coming.", "others"),
    # the writer harming their own body on purpose (a danger rule's match) is self-harm
    ("I scalded my hand with the kettle on purpose.", "self"),
    ("Scalded my hand under the hot tap on purpose after the argument.", "self"),
    # ... and harming someone the writer names as theirs is others
    ("I grabbed my son by the throat this morning.", "others"),
    ("Hit my daughter with the wooden spoon so hard it snapped.", "others"),
    # a pronoun elsewhere in the sentence, not the subject of the act
    ("so my sister says I never call, and I went to the bridge and stood there thinking how easy it'd be", "self"),
    ("Bought a new pack of blades and they're not for shaving.", "self"),
    ("the voices told me to jump and today i sort of agree with them", "self"),
    # a past marker in a clause describing someone or something else
    ("The people I used to sell for want me back and said they'll hurt my little brother if I don't.", "danger"),
    ("started punching walls till my knuckles split, better than the other thing i used to do", "self"),
    # researching how to do it is not media
    ("I watched a video on how to cut brake lines. My ex drives that road every morning.", "others"),
    ("Last night I googled videos of how long hanging takes.", "self"),
    # the writer's own words in quotation marks, and a quotation said to the writer, still count (round 7)
    ('I keep thinking things like "I want to die" on the bus.', "self"),
    ('I told my sister "I want to kill him" and I meant it.', "others"),
    ('He keeps saying "you know what happened to the last one who left me."', "danger"),
    # a cue is words, never the inside of one ("trip" in "amitriptyline"); a cue that belongs to the match
    # itself or to something else than the writer's act (round 10)
    ("I have saved up enough of my amitriptyline now.", "self"),
    ("I carved his initials into my arm with a compass after he dumped me.", "self"),
    ("He keeps my bank card and says I'm not allowed to phone anyone.", "danger"),
    # a contraction written without its apostrophe that is also a word, before a verb
    ("he said if i leave hell kill me and the kids", "danger"),
    # the passive, with the one doing it after "by"
    ("I got slapped and spat on by my partner in front of our kids on Sunday.", "danger"),
])
def test_context_belongs_to_the_match(text, category):
    s = _one(text)
    assert s.flags and s.top_category == category, ([f.rule for f in s.flags], _reasons(s))


@pytest.mark.parametrize("text,reason", [
    ("My brother keeps saying he'll regret crossing him, but it's all talk.", "someone else"),
    ("She told me he won't know what hit him when the lads jump him.", "someone else"),
    ("I scalded my hand with boiling water.", "no agent: the writer"),
    ("It's strange to be spoon-feeding the man who used to hit me.", "past"),
    ("I told my mum I used to cut myself.", "past"),
    ("His urges are back and he's not sure he can hold out.", "idiom"),
    ("We watched a documentary about how suicide affects families.", "media"),
    # someone else's words in quotation marks: its "I" and "my" are the speaker's (round 7)
    ('Grandad was muddled all evening and kept saying "I want to die, just let me go home."', "reported speech"),
    ('My nephew ran at me with a foam sword screaming "I am going to kill you, evil queen!"', "reported speech"),
    ('The course leader read out case notes, things like "she said she would smash my head in."', "reported speech"),
    # "I think" as an aside about someone else
    ('A woman on the forum, who I think lives in Leeds, posted a message saying goodbye to everyone.',
     "someone else"),
    # a span of ages, the months after a birth, years that ended at a point already told
    ("Between the ages of eight and thirteen my uncle hit me most weekends.", "past"),
    ("In the first weeks after my daughter was born I had images of hurting her.", "past"),
    ("For six years before that he beat me, and I covered the bruises.", "past"),
    # the therapist's question quoted back with words in between
    ("You asked me on Tuesday, quite carefully, whether he ever hurts me, and the answer is no.", "quoted question"),
    ("It's the anniversary of the night I threatened my sister with a knife.", "past"),
])
def test_context_still_belongs_elsewhere(text, reason):
    s = _one(text)
    assert not s.flags, [f.rule for f in s.flags]
    assert any(r.startswith(reason) for r in _reasons(s)), _reasons(s)


def test_how_easy_over_someone_else_is_not_self_risk():
    # self.how_easy is discounted (the act is over him), and the sentence reads as a risk to him instead.
    s = _one("I stood over him for a long time thinking how easy it would be.")
    assert "self" not in {f.category for f in s.flags}, [f.rule for f in s.flags]
    assert any(f.rule == "self.how_easy" for f in s.discounted)
    assert s.top_category in (None, "others")


def test_slang_normalises_to_readable_words():
    assert LEX.norm.words("my sh is worse") == ["my", "self", "harm", "is", "worse"]
    assert LEX.norm.words("kys myself") == ["kill", "myself"]  # a two-word expansion may still join onward
    assert LEX.norm.words("i want to unalive") == ["i", "want", "to", "kill", "myself"]
    assert LEX.norm.words("unalive him") == ["kill", "him"]
    assert LEX.norm.words("hell kill me") == ["he", "will", "kill", "me"]  # before a verb: a contraction
    assert LEX.norm.words("ill in bed, hell on earth") == ["ill", "in", "bed", ",", "hell", "on", "earth"]
    assert LEX.norm.words("i want to unalive myself") == ["i", "want", "to", "kill", "myself"]
    assert LEX.norm.words("my friend wants to unalive") == ["my", "friend", "wants", "to", "kill"]
    assert not any(f.category == "self" for f in _one("my friend wants to unalive").flags)
    # Texting "b" and "2" read as "be" and "to" only where they can be those words.
    assert LEX.norm.words("dnt want 2 b alive") == ["do", "not", "want", "to", "be", "alive"]
    assert LEX.norm.words("plan b, 2 kids") == ["plan", "b", ",", "2", "kids"]


@pytest.mark.parametrize("text", [
    "My son told his sister 'I'm going to kill you' when she broke his Lego.",
    "Grandad's favourite saying was 'do that again and I'll kill you'.",
    "The song has the line 'I wish I'd never been born' and it's stuck in my head.",
])
def test_quotation_given_to_someone_else_is_reported_speech(text):
    s = screen(text, lexicon=LEX, model=None)
    assert not s.flags, [f.rule for f in s.flags]
    assert any(r.startswith("reported speech") for r in _reasons(s)), _reasons(s)


@pytest.mark.parametrize("text,category", [
    ("I told him 'I'm going to kill you' and I meant it.", "others"),
    ("He went out and I thought 'I want to die'.", "self"),
])
def test_quotation_in_the_writers_own_words_still_flags(text, category):
    s = screen(text, lexicon=LEX, model=None)
    assert any(f.category == category for f in s.flags), _reasons(s)


@pytest.mark.parametrize("text", [
    # a negation put before the writer's "I", or a "none" after the match in a check-in list
    "no way i would ever kill myself, i love my nephews too much",
    "Never would I hurt myself, whatever happens.",
    "- suicidal thoughts: nil this week",
    # a plain no to the therapist's question outweighs "I've been thinking about it"
    "You asked whether I still think about suicide. I have been thinking about it and the answer is no.",
])
def test_context_negation_said_in_other_words(text):
    s = screen(text, lexicon=LEX, model=None)
    assert not s.flags, [f.rule for f in s.flags]
    assert any(r.startswith("negation") or r.startswith("quoted question") for r in _reasons(s)), _reasons(s)


@pytest.mark.parametrize("text", [
    # the harm named, then said to be absent or over (round 13)
    "The thoughts about hurting myself haven't come back and I'm sleeping better.",
    "the sh urges are basically gone, haven't felt them in weeks",
    "My mood is low but the suicidal thoughts haven't returned.",
    "The urge to hit him never came. I walked away like we practised.",
    "the wish to not exist just isn't there any more",  # (the risk phrase's own "not" is not a negator)
])
def test_context_harm_said_to_be_absent_after_it(text):
    s = screen(text, lexicon=LEX, model=None)
    assert not s.flags, [f.rule for f in s.flags]
    assert any(r.startswith("negation: ") for r in _reasons(s)), _reasons(s)


@pytest.mark.parametrize("text,category", [
    ("The urge to cut hasn't gone away.", "self"),
    ("The urges to hurt myself haven't stopped.", "self"),  # (the filler holds no negator)
    ("I cut myself last night and the urges have gone now.", "self"),  # the match outside the phrase
    ("The thought of dying has passed through my mind a lot.", "self"),
    ("I'm not sure the thoughts of suicide are gone.", "self"),  # doubted
    ("the thoughts about ending it all never really went away", "self"),  # (resolved's filler: no negator)
])
def test_context_harm_said_to_be_absent_keeps_real_risk(text, category):
    s = screen(text, lexicon=LEX, model=None)
    assert any(f.category == category for f in s.flags), _reasons(s)


@pytest.mark.parametrize("text,category", [
    ("The man who was stalking me was sentenced on Friday.", None),  # resolved: the one who did it sentenced
    ("The man who was stalking me was sentenced on Friday but he's out on bail.", "danger"),
])
def test_context_sentenced_is_resolved_unless_out(text, category):
    s = screen(text, lexicon=LEX, model=None)
    if category is None:
        assert not s.flags and any(r.startswith("resolved: ") for r in _reasons(s)), _reasons(s)
    else:
        assert any(f.category == category for f in s.flags), _reasons(s)


@pytest.mark.parametrize("text,category", [
    ("no way i can keep going, i want to kill myself", "self"),
    ("suicidal thoughts: none until last night", "self"),
    ("You asked if I'm still thinking about suicide. I have, and I'm not okay.", "self"),
])
def test_context_negation_in_other_words_does_not_reach_real_risk(text, category):
    s = screen(text, lexicon=LEX, model=None)
    assert any(f.category == category for f in s.flags), _reasons(s)


@pytest.mark.parametrize("text,category", [
    ("I'm going to kill him. We laughed about it at the pub. I'm not joking.", "others"),  # withdrawn
    ("I'm going to stab him on Friday. We laughed about it but I mean it.", "others"),
    ("He said he'd kill me. We laughed about it.", "danger"),  # a threat received is never jest
    ("I kicked the dog across the kitchen. We both laughed about it after.", "others"),  # harm done, not a threat
    # what the words were about, said after them: never life or everything, never with "I mean it" (round 12)
    ("I've given up. On life, I mean.", "self"),
    ("I've given up. On everything, I mean.", "self"),
    ("I gave all my stuff away today. The good stuff, I mean. I mean it, I'm done.", "self"),
    ("I want to kill myself. The exam, I mean.", "self"),  # urgent findings are never talked away
])
def test_jest_and_meaning_said_after_keep_real_risk(text, category):
    assert _one(text).top_category == category


def test_jest_is_withdrawn_by_thoughts_that_keep_coming():
    s = _one("I could throttle him. Obviously I won't. But I keep thinking about it.")
    assert s.top_category == "others", _reasons(s)
