"""The statistical second opinion (journal_relay/score.py)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from journal_relay import score
from journal_relay.screen import load_lexicon, screen, screening_to_json

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "screening"
LEX = load_lexicon()
MODEL = score.load_model()


def test_model_loads_and_is_compact():
    assert 0.5 <= MODEL.threshold < 1.0
    assert len(MODEL.bias) == 3 and MODEL.weights and MODEL.anchors
    assert all(len(v) == 3 for v in MODEL.weights.values())


def test_features_mark_negation_and_person():
    f = score.features(["i", "do", "not", "want", "to", "die", ",", "honestly"])
    assert "NOT_die" in f and "honestly" in f and "die" not in f
    assert "#no_first_person" in score.features(["she", "wants", "to", "die"])


def test_features_pair_words_one_apart_within_a_clause():
    assert "want _ die" in score.features(["i", "want", "to", "die"])
    f = score.features(["i", "want", "to", "die", ",", "honestly"])
    assert "want _ die" in f and "die _ honestly" not in f and "to _ honestly" not in f


def test_training_is_deterministic(tmp_path):
    files = [str(DATA / "holdout.jsonl"), str(DATA / "unseen2.jsonl")]
    outs = []
    for name in ("a.json", "b.json"):
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "screen_train.py"), *files, "--out",
                        str(tmp_path / name)], check=True, capture_output=True)
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]
    assert json.loads(outs[0])["weights"]


def test_an_added_example_leaves_the_others_order_as_it_was():
    # Training shows examples in an order drawn from their own content (round 10): adding one must not reorder
    # the rest, or every lexicon edit would move the model a long way (benchmarks/screen_churn.py).
    keys = [f"word{i} other{i % 7}|{i % 4}" for i in range(200)]
    for seed, epoch in ((0, 0), (1, 3)):
        before = score.content_order(keys, seed, epoch)
        after = score.content_order(keys + ["a new example|1"], seed, epoch)
        assert [i for i in after if i != 200] == before and len(after) == 201
        assert before != list(range(200))  # (an order of its own, not the list's)
    assert score.content_order(keys, 0, 0) != score.content_order(keys, 0, 1)


def test_builtin_model_is_rebuilt_from_the_repo_sets(tmp_path):
    out = tmp_path / "m.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "screen_train.py"), "--out", str(out)],
                   check=True, capture_output=True)
    assert out.read_bytes() == score.BUILTIN_MODEL.read_bytes()


def test_fit_leaves_out_the_ordinary_sentences_of_a_risk_entry():
    # Multiple-instance training: "We had soup for lunch." in a risk entry is not taught as risk.
    foods = ["pasta", "soup", "rice", "curry", "salad", "toast", "pie", "stew"]
    items = [{"label": "self", "text": f"I want to die, I have the pills ready. We had {f} for lunch."} for f in foods]
    items += [{"label": "none", "text": f"We had {f} for lunch. {x}"} for f in foods
              for x in ("The bus was late.", "Work was fine.", "It rained.")]
    _bias, _weights, kept = score.fit(items, LEX, epochs=5)
    risk = [feats for feats, y in kept if y]
    assert len(risk) == len(foods) and all("die" in feats and "lunch" not in feats for feats in risk)
    assert len(kept) == len(score.examples(items, LEX)) - len(foods)


def test_free_threshold_judges_sentences_without_an_anchor_word():
    text = "I've given my cat to my sister and sorted out my will."
    words = score.sentence_words(text, LEX)[0]
    # No anchor word and no rule: a model without a free threshold never judges it.
    anchored = dataclasses.replace(MODEL, free_threshold=None)
    assert MODEL.anchors.isdisjoint(words) and not screen(text, lexicon=LEX, model=anchored).flags
    # The model's probability for this sentence moves whenever the lexicon's examples (training data) change
    # (0.98, then 0.998, then 0.70 over the round-5 self rules, 0.9996 after the precision counter-examples,
    # 0.999999 with round 10's training order), so the thresholds are set around it.
    p = MODEL.probabilities(score.features(words))[0]
    assert 0.5 < p < 1.0
    below = round(p - 0.05, 2)
    free = dataclasses.replace(MODEL, threshold=below, free_threshold=below)
    (f,) = screen(text, lexicon=LEX, model=free).flags
    assert f.rule == "model.self" and f"threshold {below:.2f}" in f.context[-1]
    # (reading the entry together, a second way to flag, is left out: one sentence this sure would pass it)
    above = dataclasses.replace(free, free_threshold=min(p + 0.0004, (p + 1) / 2), together=None)
    assert not screen(text, lexicon=LEX, model=above).flags


@pytest.mark.parametrize("text,category", [
    ("Everyone would be better off if I just wasn't around anymore.", "self"),
    ("I keep thinking I could make him pay for what he did to me, properly this time.", "others"),
    ("He grabbed me by the throat again last night and I'm scared to go home.", "danger"),
])
def test_flags_clear_cases(text, category):
    s = screen(text, lexicon=LEX)
    assert any(f.category == category for f in s.flags), screening_to_json(s)


@pytest.mark.parametrize("text", [
    "This commute is killing me, honestly.",
    "I'm not suicidal and I have no plans to hurt myself.",
    "We watched a documentary about suicide prevention at work.",
    "The deadline is going to be the death of me lol.",
    "I bought bread and milk and went to bed early.",
    # Everyday prose: before its anchors were curated, the model read "today ... again" as risk.
    "Today was long and mostly ordinary; I noticed the tiredness again in the afternoon.",
    "Thanks for getting back to me, I'll send the figures again on Monday.",
])
def test_does_not_flag_idioms_and_negations(text):
    assert not screen(text, lexicon=LEX).flags


# Sentences the rules miss and the built-in model reads as self.  One sentence's probability moves with every
# rebuild ("I keep thinking the bridge would be quiet at night." went 0.95 -> 0.81 -> 0.50 over rounds 6 and 7,
# as counter-examples about bridges were added; "I sorted out who gets the dog and wrote everyone a card." went
# to 0.925, below the free threshold, with round 10's class shifts), so these are checked as examples of the
# kind, not as a bound.
@pytest.mark.parametrize("text", ["The pills are in the drawer and I keep thinking about them.",
                                  "There's a rope in the garage and I keep going out to look at it.",
                                  "I have sorted out who gets the dog and written everyone a letter."])
def test_model_findings_are_medium_and_explained(text):
    assert not screen(text, lexicon=LEX, model=None).flags  # the rules alone miss these ("counting them" is now a rule: self.od_unnamed)
    (f,) = screen(text, lexicon=LEX).flags
    assert f.rule == "model.self" and f.severity == "medium" and f.category == "self"
    assert 1 <= len(f.match.split()) <= 3 and all(w in text.lower() for w in f.match.split())
    assert any(c.startswith("statistical: p=") for c in f.context)


def test_model_does_not_override_a_discounted_rule():
    # "five years ago" discounts the rule finding as history; the model must not count that sentence.
    text = "Five years ago I tried to kill myself."
    s = screen(text, lexicon=LEX)
    assert not s.flags and s.discounted


def test_judge_stops_early_only_below_the_threshold():
    # judge() skips the softmax when every logit is below the threshold's log-odds: never a sentence that reaches it.
    for f in sorted(DATA.glob("train_m*.jsonl"))[:2]:
        for line in f.read_text(encoding="utf-8").splitlines():
            for words in score.sentence_words(json.loads(line)["text"], LEX):
                for th in (0.5, 0.9, 0.95):
                    need = th if not MODEL.anchors.isdisjoint(words) else max(th, MODEL.free_threshold or 1.0)
                    reaches = max(MODEL.probabilities(score.features(words))) >= need
                    assert (MODEL.judge(words, th) is not None) == reaches, th


def test_raw_word_shortcut_changes_nothing():
    texts = []
    for f in sorted(DATA.glob("*.jsonl")):
        texts += [json.loads(x)["text"] for x in f.read_text(encoding="utf-8").splitlines() if x.strip()]
    entries = texts + [" ".join(texts[i:i + 7]) for i in range(0, len(texts), 7)]
    entries += ["line one\nEveryone would be better off without me.\nbye", "> quoted better off without me\nok",
                "e v e r y o n e would be better off", "I'm fine.\n\nHe'll find me again."]
    for number, t in enumerate(entries):
        r = screen(t, lexicon=LEX, model=None)
        fast = score.second_opinion(t, r, LEX, MODEL)
        slow = score.second_opinion(t, r, LEX, MODEL, exhaustive=True)
        # Which entry, not its text or findings: journal-like text stays out of test output.
        same = screening_to_json(fast) == screening_to_json(slow)
        assert same, f"entry {number}"


MAIL_SAMPLES = Path(__file__).resolve().parents[1] / ".." / "shared" / "mail-samples"


def test_ordinary_real_email_is_rarely_flagged():
    # Real replies from many mail clients (business and mailing-list prose, no risk language): the
    # statistical opinion must stay quiet on everyday writing, which is most of what a therapist reads.
    # The bound is the target false-positive rate (0.10) with a quarter kept in reserve for unseen writing;
    # since round 5 every sentence is scored, and the free threshold is chosen to stay inside it.
    if not MAIL_SAMPLES.is_dir():
        pytest.skip("shared/mail-samples not present")
    from journal_relay.parse import parse_message

    texts = [t for t in (parse_message(p.read_bytes()).text for p in sorted(MAIL_SAMPLES.rglob("*"))
                         if p.is_file() and p.suffix != ".md") if len(t) >= 40]
    assert len(texts) >= 100
    flagged = sum(1 for t in texts if screen(t, lexicon=LEX).flags)
    assert flagged / len(texts) <= 0.075, f"{flagged} of {len(texts)} ordinary emails flagged"


def test_iterate_averaging_is_the_mean_of_every_iterate():
    # train(average=N) keeps its sums lazily; the same mean, kept the plain way (every weight after every
    # step), must come out.
    import math
    import random

    rng = random.Random(3)
    vocab = [f"f{i}" for i in range(12)]
    data = [([rng.choice(vocab) for _ in range(rng.randint(1, 4))], rng.randint(0, 3)) for _ in range(40)]
    sw = [rng.choice([0.0, 0.5, 1.0, 1.0]) for _ in data]
    epochs, average, l2, rate = 4, 2, 0.01, 0.5
    names = sorted({f for fs, _ in data for f in fs})
    rows = [(sorted({names.index(f) for f in fs}), y) for fs, y in data]
    w = [[0.0] * len(names) for _ in range(4)]
    g = [[1e-8] * len(names) for _ in range(4)]
    b, gb = [0.0] * 4, [1e-8] * 4
    order = list(range(len(rows)))
    order_rng = random.Random(0)
    sums: list[list[float]] = []
    sb: list[float] = []
    count = 0
    for epoch in range(epochs):
        order_rng.shuffle(order)
        if epoch == epochs - average:
            sums, sb, count = [list(r) for r in w], list(b), 1
        for i in order:
            cols, y = rows[i]
            if sw[i] <= 0:
                continue
            z = [b[k] + sum(w[k][j] for j in cols) for k in range(4)]
            e = [math.exp(v - max(z)) for v in z]
            d = [sw[i] * (e[k] / sum(e) - (k == y)) for k in range(4)]
            for k in range(4):
                gb[k] += d[k] * d[k]
                b[k] -= rate * d[k] / math.sqrt(gb[k])
                for j in cols:
                    dd = d[k] + l2 * w[k][j]
                    g[k][j] += dd * dd
                    w[k][j] -= rate * dd / math.sqrt(g[k][j])
            if sums:
                for k in range(4):
                    sums[k] = [s + x for s, x in zip(sums[k], w[k], strict=True)]
                    sb[k] += b[k]
                count += 1
    bias, weights = score.train(data, l2=l2, epochs=epochs, rate=rate, seed=0, sample_weights=sw, average=average,
                                order="shuffle")  # (the order the plain loop above uses)
    assert bias == pytest.approx([(sb[k] - sb[0]) / count for k in (1, 2, 3)], abs=1e-12)
    for j, f in enumerate(names):
        want = [(sums[k][j] - sums[0][j]) / count for k in (1, 2, 3)]
        assert weights[f] == pytest.approx(want, abs=1e-12)


def test_model_judges_a_sentence_whose_rule_only_lacked_support_but_not_a_discounted_one():
    # "context: nothing ... supports this reading" says a rule is unsure, not that the words mean something
    # else: the model still judges that sentence.  A negated one stays the rule's (the model never
    # overrides negation, idiom, someone else or history).  A one-word model keeps this independent of
    # the built-in weights.
    model = score.Model(bias=(-5.0, -5.0, -5.0), weights={"cliff": (20.0, 0.0, 0.0)}, threshold=0.5,
                        anchors=frozenset({"cliff"}))
    unsure = screen("I drove past the cliff road twice.", lexicon=LEX, model=model)
    assert [d.context[0] for d in unsure.discounted] == [
        "context: nothing elsewhere in the entry supports this reading"]
    assert [f.rule for f in unsure.flags] == ["model.self"]
    negated = screen("I would never jump off the cliff.", lexicon=LEX, model=model)
    assert negated.discounted[0].context[0].startswith("negation") and not negated.flags


def test_sweep_decides_as_the_screener_does():
    # benchmarks/screen_sweep.py counts operating points from sentence scores; its decisions must be the
    # screener's own (rules, unread sentences, thresholds, class shifts, reading together).
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "screen_sweep.py"), "--check", "400"],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("0 of 400 entries decided differently"), out


def test_reading_together_asks_more_of_a_long_entry_when_told_to():
    # Past grow_after sentences with words, the threshold grows: 0.8 * (1 + 0.5 * (3 - 2) / 2) = 1.0 for three.
    tog = score.Together(0.25, 0.8, grow_after=2, grow=0.5)
    assert [tog.needed(n) for n in (1, 2, 3, 4)] == [0.8, 0.8, 1.0, 1.2000000000000002]
    model = score.Model(bias=(-5.0, -5.0, -5.0), weights={"lantern": (6.0, 0.0, 0.0)}, threshold=0.9,
                        anchors=frozenset(), free_threshold=0.98, together=tog)
    two = screen("I lit the lantern. I sat by the lantern all night.", lexicon=LEX, model=model)
    assert two.flags[0].context[2].endswith("(0.96 above 0.25, threshold 0.80)")
    assert not screen("I lit the lantern. We had soup. I sat by the lantern all night.", lexicon=LEX, model=model).flags
    assert score.Together(0.25, 0.8).needed(50) == 0.8  # off unless asked for


def test_model_judges_a_sentence_a_rule_read_as_another_sense_or_with_nobody_doing_it():
    # An idiom or other-sense cue ("charity shop") or nobody found doing it ("Marcus ...", the name starting
    # the sentence) says the rule's words may mean something else, not that the sentence is safe: the model
    # still judges it.  The writer's own accident ("no agent: the writer ...") stays unread.
    model = score.Model(bias=(-5.0, -5.0, -5.0), weights={"bag": (20.0, 0.0, 0.0), "neck": (0.0, 0.0, 20.0),
                                                          "scalded": (20.0, 0.0, 0.0)},
                        threshold=0.5, anchors=frozenset({"bag", "neck", "scalded"}))
    idiom = screen("I've been giving my clothes away a bag at a time to the charity shop so nobody notices.",
                   lexicon=LEX, model=model)
    assert any(d.context[0].startswith("idiom/other sense") for d in idiom.discounted)
    assert [f.rule for f in idiom.flags] == ["model.self"]
    nobody = screen("Marcus put his hands round my neck until I nearly passed out.", lexicon=LEX, model=model)
    assert any(d.context[0].startswith("no agent: nobody named") for d in nobody.discounted)
    assert [f.rule for f in nobody.flags] == ["model.danger"]
    accident = screen("I scalded my hand with boiling water.", lexicon=LEX, model=model)
    assert accident.discounted[0].context[0].startswith("no agent: the writer") and not accident.flags


def test_sentences_read_together_flag_an_entry_none_flags_alone():
    # A one-word model: each "lantern" sentence reads as self at p=0.73, below the free threshold; two
    # different ones add up past the entry's threshold (0.48 + 0.48 above the floor of 0.25 >= 0.8).
    model = score.Model(bias=(-5.0, -5.0, -5.0), weights={"lantern": (6.0, 0.0, 0.0)}, threshold=0.9,
                        anchors=frozenset(), free_threshold=0.98, together=score.Together(0.25, 0.8))
    two = screen("I lit the lantern. We had soup. I sat by the lantern all night.", lexicon=LEX, model=model)
    assert [(f.rule, f.severity) for f in two.flags] == [("model.self", "medium")] * 2
    assert two.flags[0].context[1] == "statistical: p=0.73"
    assert two.flags[0].context[2] == ("statistical: read together with 1 other sentence of this entry "
                                       "(0.96 above 0.25, threshold 0.80)")
    assert not screen("I lit the lantern. We had soup.", lexicon=LEX, model=model).flags
    # The same sentence twice is one sentence.
    assert not screen("I lit the lantern. I lit the lantern.", lexicon=LEX, model=model).flags
    # A text with hardly any first person is not a journal's voice (a licence, a bounce notice).
    assert not screen("The lantern was lit. The lantern burned low. It rained. It was late. The road was wet.",
                      lexicon=LEX, model=model).flags
    # Only for an entry nothing else flagged: a rule's flag stands alone.
    ruled = screen("I lit the lantern. I sat by the lantern. I want to kill myself.", lexicon=LEX, model=model)
    assert ruled.flags and not any(f.rule.startswith("model.") for f in ruled.flags)


def test_a_long_entry_needs_more_from_a_sentence_and_is_not_read_together():
    # A one-word model: a "lantern" sentence reads as self at p=0.73.  In an entry of at most ``Long.after``
    # sentences with words, one with the anchor word is enough (threshold 0.7) and two add up when read
    # together; past it, a sentence must reach ``Long.threshold`` and nothing is read together.
    model = score.Model(bias=(-5.0, -5.0, -5.0), weights={"lantern": (6.0, 0.0, 0.0)}, threshold=0.7,
                        anchors=frozenset({"lantern"}), free_threshold=0.98, together=score.Together(0.25, 0.8),
                        long=score.Long(3, 0.9))
    short = "I lit the lantern. We had soup. I went to bed."
    assert [f.rule for f in screen(short, lexicon=LEX, model=model).flags] == ["model.self"]
    long = "I lit the lantern. We had soup. It rained. I went to bed."
    assert not screen(long, lexicon=LEX, model=model).flags
    together = dataclasses.replace(model, threshold=0.9, long=None)
    assert len(screen("I lit the lantern. We had soup. I sat by the lantern.", lexicon=LEX, model=together).flags) == 2
    assert not screen("I lit the lantern. We had soup. I sat by the lantern. It rained.", lexicon=LEX,
                      model=dataclasses.replace(together, long=score.Long(3, 0.9))).flags
