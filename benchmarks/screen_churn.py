"""How much a small lexicon edit moves the model: train the built-in way twice, with all the lexicon's examples and
without one rule's examples and counter-examples, and count the labelled sentences (every third entry of
tests/data/screening) whose probability moves by more than 0.1, and whose decision at 0.75 flips.

A model should move by what the edit teaches.  With the examples shown in a seeded shuffle of the list
(--order shuffle, before round 10) every edit reorders all of them, and the model moves a long way for any edit.
Numbers only, never text.  About 4 minutes per order on a slow machine.

Usage: python benchmarks/screen_churn.py [--order content|shuffle] [--drop-rule self.switch_off]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from journal_relay import score  # noqa: E402
from journal_relay.screen import load_lexicon  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--order", choices=("content", "shuffle"), default="content")
    ap.add_argument("--drop-rule", default="self.switch_off", help="the rule whose examples the second build lacks")
    args = ap.parse_args(argv)
    lex = load_lexicon()
    rule = next((r for r in lex.rules if r.id == args.drop_rule), None)
    if rule is None:
        ap.error(f"no rule {args.drop_rule!r} in the built-in lexicon")
    files = sorted((ROOT / "tests" / "data" / "screening").glob("*.jsonl"))
    items = [json.loads(x) for f in files for x in f.read_text(encoding="utf-8").splitlines() if x.strip()]
    extra = score.lexicon_items(lex)
    dropped = set(rule.examples) | set(rule.counter_examples)
    models = []
    for its in (items + extra, items + [e for e in extra if e["text"] not in dropped]):
        bias, weights, _ = score.fit(its, lex, seeds=(0, 1, 2), workers=os.cpu_count() or 1, order=args.order)
        models.append(score.Model(bias=tuple(bias), weights={k: tuple(v) for k, v in weights.items()},
                                  threshold=0.75, anchors=frozenset()))
    sentences = [ws for it in items[::3] for ws in score.sentence_words(it["text"], lex) if ws]
    moved = flipped = 0
    for ws in sentences:
        feats = score.features(ws)
        p, q = models[0].probabilities(feats), models[1].probabilities(feats)
        moved += max(abs(a - b) for a, b in zip(p, q, strict=True)) > 0.1
        flipped += (max(p) >= 0.75) != (max(q) >= 0.75)
    print(f"order {args.order}, without {args.drop_rule}'s {len(dropped)} examples: of {len(sentences)} sentences, "
          f"{moved} moved by more than 0.1, {flipped} decisions at 0.75 flipped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
