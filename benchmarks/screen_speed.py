"""Throughput of the screener in MB/s on ~2 KB entries, with the built-in lexicon and a lexicon ten
times larger (synthetic rules generated here), and their ratio.

The synthetic rules look like real ones (trigger words, word-level patterns with gaps, exceptions) but
use invented vocabulary, as a practice adding new phrasings would: thanks to the trigger index a rule
costs nothing on a sentence that does not contain one of its triggers.

A third mix, "everyday", is ordinary journal prose with no risk language (most real entries): it is not
part of the target line, which stays on the two mixes above it.

Usage: python benchmarks/screen_speed.py [--seconds 3] [--rules-only]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from journal_relay import score  # noqa: E402
from journal_relay.screen import load_lexicon, screen  # noqa: E402


def entries(n: int = 200, size: int = 2048, seed: int = 7, labelled_share: float = 0.5) -> list[str]:
    """~2 KB journal-like entries mixing ordinary, idiomatic, negated and risk sentences."""
    data = ROOT / "tests" / "data" / "screening" / "labelled.jsonl"
    sentences = [json.loads(line)["text"] for line in data.read_text(encoding="utf-8").splitlines() if line.strip()]
    filler = ["Today was long.", "I went to the shop and bought bread and milk.", "Work was fine, a bit busy.",
              "We watched something on TV and I went to bed early.", "The bus was late again.",
              "I spoke to my sister on the phone for an hour about her new flat."]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts: list[str] = []
        while sum(len(p) + 1 for p in parts) < size:
            parts.append(rng.choice(sentences) if rng.random() < labelled_share else rng.choice(filler))
        out.append(" ".join(parts)[:size])
    return out


# Everyday journal prose: varied, and with the ordinary uses of words that are also triggers ("myself",
# "end", "life", "cut", "pills") that real entries have.  None of it is risk language.
EVERYDAY = [
    "Slept badly again, woke at four and could not get back to sleep.",
    "Work was busy; the new manager wants the report by Friday.",
    "I made myself a proper breakfast for once, eggs on toast.",
    "Took the dog round the park before the rain started.",
    "My partner and I argued about money, then made up over dinner.",
    "Did the breathing exercise you showed me, it helped a bit.",
    "The kids were loud after school and I lost my patience with them.",
    "Mum rang about Christmas plans and I said we would think about it.",
    "Felt anxious on the train, my chest was tight for a while.",
    "At the end of the day I was just tired, not sad.",
    "Wrote three things I was grateful for, like you suggested.",
    "Had a coffee with Sam and we laughed about the old job.",
    "I cut the grass and tidied the shed, which felt good.",
    "Remembered to take my pills with breakfast every day this week.",
    "The weekend went too fast, as usual.",
    "I kept thinking about what my boss said in the meeting.",
    "Cooked a curry from scratch, the kitchen smelt amazing.",
    "Went to the gym in the evening, only twenty minutes but still.",
    "My life feels a bit more organised since I started the planner.",
    "Could not concentrate this afternoon, kept checking my phone.",
    "It rained all day so we stayed in and played board games.",
    "I noticed I was catastrophising again and tried to slow down.",
    "Called the GP surgery about my repeat prescription.",
    "Bumped into an old friend at the supermarket, we might meet up.",
    "The heating broke and the landlord says he will fix it on Monday.",
    "I was proud of myself for speaking up in the team call.",
    "Tired but okay, looking forward to our session on Thursday.",
    "Watched a film about a chef in Paris, it was lovely.",
    "My brother is visiting next month with his new baby.",
    "I felt low in the morning but it lifted after lunch.",
    "Spent the evening sorting out old photos from university.",
    "The car needs new tyres before the end of the month.",
    "We booked a few days by the sea for half term.",
    "I did not drink tonight, which I am pleased about.",
    "Read two chapters of my book in the bath.",
    "Got some feedback at work that stung a bit, but it was fair.",
]


def everyday_entries(n: int = 200, size: int = 2048, seed: int = 13) -> list[str]:
    """~2 KB entries of everyday journal prose with no risk language."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts: list[str] = []
        while sum(len(p) + 1 for p in parts) < size:
            parts.append(rng.choice(EVERYDAY))
        out.append(" ".join(parts)[:size])
    return out


def synthetic_practice(n_rules: int, seed: int = 11) -> str:
    rng = random.Random(seed)
    syll = ["ka", "lo", "mi", "ru", "te", "zo", "pa", "vi", "ne", "sha", "gor", "bli", "tam", "fen", "qui"]

    def word() -> str:
        return "".join(rng.choice(syll) for _ in range(3))

    lines = []
    cats = ["self", "others", "danger"]
    for i in range(n_rules):
        a, b, c = word(), word(), word()
        lines += [
            "[[rule]]", f'id = "synthetic.r{i}"', f'category = "{cats[i % 3]}"', 'severity = "medium"',
            'kind = "distress"', f'triggers = ["{a}", "{b}"]',
            f"patterns = ['\\b(?:{a}|{b}) (?:[a-z]+ ){{0,2}}(?:{c}|myself|him)\\b', '\\bi (?:want|need) to {a}\\b']",
            f"exceptions = ['{a} (?:for|with) (?:a|the)']", "",
        ]
    return "\n".join(lines)


def measure(lexicon, texts: list[str], seconds: float, model: score.Model | None) -> float:
    total = sum(len(t.encode("utf-8")) for t in texts)
    for t in texts[:20]:
        screen(t, lexicon=lexicon, model=model)  # warm caches
    done = 0
    start = time.perf_counter()
    while True:
        for t in texts:
            screen(t, lexicon=lexicon, model=model)
        done += total
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed / 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rules-only", action="store_true", help="the rules without the statistical second opinion")
    args = ap.parse_args(argv)
    model = None if args.rules_only else score.load_model()
    base = load_lexicon()
    n_extra = 9 * len(base.rules)
    with tempfile.TemporaryDirectory() as tmp:
        practice = Path(tmp) / "big.toml"
        practice.write_text(synthetic_practice(n_extra), encoding="utf-8")
        t0 = time.perf_counter()
        big = load_lexicon(practice)
        load_s = time.perf_counter() - t0
    print(f"10x lexicon loaded and checked in {load_s:.2f} s")
    worst = 0.0
    mixes = (("dense (half the sentences from the labelled set)", entries(labelled_share=0.5)),
             ("typical (one sentence in ten from the labelled set)", entries(labelled_share=0.1)),
             ("everyday (journal prose, no risk language; not in the target line)", everyday_entries()))
    for k, (name, texts) in enumerate(mixes):
        print(f"{name}: {len(texts)} entries x {len(texts[0])} bytes")
        r1 = measure(base, texts, args.seconds, model)
        print(f"  built-in lexicon  ({len(base.rules):4d} rules): {r1:6.2f} MB/s")
        r2 = measure(big, texts, args.seconds, model)
        print(f"  10x lexicon       ({len(big.rules):4d} rules): {r2:6.2f} MB/s")
        print(f"  ratio 10x/built-in: {r2 / r1:.2f}  (1.00 = cost independent of lexicon size)")
        if k < 2:
            worst = min(worst or r1, r1, r2)
        if k == 1:
            print(f"target >= 5 MB/s on one core: {'met' if worst >= 5 else 'NOT met'} (slowest {worst:.2f} MB/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
