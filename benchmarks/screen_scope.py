"""How often a context cue in another clause takes a flag away: discounts that reach past their scope.

Risk statements the rules flag alone with nothing discounted (the lexicon's own examples that start with
"I", so the subject is the writer's) are joined with an ordinary clause that carries a context cue (a
reported question, a past marker, "lol", a video game, someone else ...) in five placements: in the same
sentence after ("R, and C."), before ("C, and R."), after "but", and in sentences of their own. A cue in
another sentence should never matter; one in a clause of its own mostly should not. Prints, per cue and
placement, how many of the joined texts are no longer flagged.  Rules alone (the model sees no sentence a
rule discounted, so these are lost to it too).  Then the same statements with common openings and endings
("Honestly, ...", "Since my mum died two years ago, ...", "... lol", "... while he's at work").  Numbers only, never text.

Usage: python benchmarks/screen_scope.py [--n 200] [--engine DIR]
--engine is a checkout whose journal_relay is measured (default: this one), to set two side by side.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CUES = {
    "question": "my therapist asked if I was okay",
    "asked": "my mum asked whether I had eaten",
    "media": "we watched a documentary about whales after",
    "past": "five years ago I moved to this town",
    "negation": "I'm not hungry at all",
    "reported": "my sister said the weather would turn",
    "idiom": "this commute is killing me",
    "hypothetical": "if it rains tomorrow we will stay in",
    "humour": "lol my cat is sitting on my keyboard",
    "other_person": "my friend told me her exams went badly",
    "resolved": "I've been sober for two years now",
    "never": "I would never skip a session",
    "quote": 'my boss said "finish the report"',
    "game": "my brother was playing a video game all night",
    "history": "as a teenager I used to play the piano",
}


# Openings and endings a journal sentence often has: none of them should take a flag away.
OPENINGS = ["Honestly, ", "To be honest ", "Tbh ", "Lately ", "Since the funeral ", "After the row with Tom, ",
            "When I got home ", "This week ", "Sometimes ", "Ever since Christmas ", "If I'm honest, ", "Last night ",
            "Again, ", "My therapist knows this but ", "Not going to lie, ", "I don't know why but ",
            "Like I said on Tuesday, ", "Since my mum died two years ago, ", "Years later and ",
            "Now that the kids have left, ", "Whatever you think, ", "Even though I'm on the new meds, ",
            "At work today ", "Ok so ", "Dear Anna, "]
ENDINGS = [" again", " lately", " every night this week", " and nobody knows", ", if I'm honest", " to be fair", " tbh",
           " lol", " :(", ", like always", " since the funeral", " after the row", " before the session",
           " but I'm fine", " and I mean it",
           # reasons and circumstances that name other people: the writer's risk all the same
           " because my boyfriend left me", " after what my dad said to me", " and my sister doesn't know",
           " while he's at work", " so she can finally be happy", " since they took the kids",
           " because of the film I watched", " after my friend's party", " and the doctor doesn't believe me",
           " because my mum keeps shouting", ", my partner thinks I'm fine", " and he knows it",
           " because everyone hates me", " after the game last night", ", the kids are asleep", " when the baby cries",
           " and my therapist is away", " because my ex told everyone", " now that he's gone",
           " and nobody at work has noticed"]


def _low(x: str) -> str:
    return x if x.startswith(("I ", "I'")) else x[0].lower() + x[1:]


def _up(x: str) -> str:
    return x[0].upper() + x[1:]


PLACEMENTS: dict[str, Callable[[str, str], str]] = {
    "R, and C.": lambda r, c: f"{r}, and {c}.",
    "C, and R.": lambda r, c: f"{_up(c)}, and {_low(r)}.",
    "R but C.": lambda r, c: f"{r} but {c}.",
    "R. C.": lambda r, c: f"{r}. {_up(c)}.",
    "C. R.": lambda r, c: f"{_up(c)}. {r}.",
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="risk statements sampled")
    ap.add_argument("--engine", type=Path, default=ROOT)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(args.engine.resolve()))
    from journal_relay.screen import load_lexicon, screen

    lex = load_lexicon()
    statements = []
    for rule in lex.rules:
        if rule.modifier:
            continue
        for ex in rule.examples:
            ex = ex.strip()
            if not ex.startswith(("I ", "I'")) or len(ex.split()) > 18 or "\n" in ex or ex.count(".") > 1:
                continue
            s = screen(ex, lexicon=lex, model=None)
            if s.flags and not s.discounted:
                statements.append(ex.rstrip(".!"))
    random.Random(5).shuffle(statements)
    statements = statements[:args.n]
    print(f"engine {args.engine}: {len(statements)} risk statements; texts no longer flagged, per cue and placement")
    print(f"{'':13s}" + "".join(f"{p:>11s}" for p in PLACEMENTS))
    total = 0
    for cue, clause in CUES.items():
        row = []
        for join in PLACEMENTS.values():
            lost = sum(not screen(join(r, clause), lexicon=lex, model=None).flags for r in statements)
            row.append(lost)
            total += lost
        print(f"{cue:13s}" + "".join(f"{n:11d}" for n in row))
    print(f"lost in all: {total} of {len(statements) * len(CUES) * len(PLACEMENTS)}")
    rows = [(f"opening {o.strip()!r}", [f"{o}{_low(r)}." for r in statements]) for o in OPENINGS]
    rows += [(f"ending {e.strip()!r}", [f"{r}{e}." for r in statements]) for e in ENDINGS]
    counted = [(name, sum(not screen(t, lexicon=lex, model=None).flags for t in texts)) for name, texts in rows]
    print("openings and endings (texts no longer flagged; only those that lose any):")
    for name, lost in sorted(counted, key=lambda x: -x[1]):
        if lost:
            print(f"  {lost:4d}  {name}")
    print(f"lost in all: {sum(n for _, n in counted)} of {len(statements) * len(rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
