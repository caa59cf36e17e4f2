"""Train the statistical second opinion (journal_relay/score.py) from labelled JSONL and write its weights.

Usage: python benchmarks/screen_train.py [--out journal_relay/screen_model.json] [--l2 0.003] [--epochs 10]
       [--long-none-weight WORDS/K] [--mil-rounds 1] [--mil-keep 0.5] [--seeds 0,1,2] [--average 5] [--threshold 0.7] [--shift=-0.5/0/0]
       [--free-threshold 0.98 [--together 0.25,0.7,3,0.2] | --anchored-only] [--anchor 0.5] [FILE ...]
Example (rebuild the built-in model): python benchmarks/screen_train.py
Default files: tests/data/screening/*.jsonl (fields id, label in self/others/danger/none, tag, text); the
lexicon's rule examples, counter-examples (as none) and safety examples are added unless --no-lexicon.
The hyper-parameters default to the ones chosen by leave-one-set-out (benchmarks/screen_loso.py).
Deterministic: the same files give the same bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from journal_relay import score  # noqa: E402
from journal_relay.screen import load_lexicon  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--out", type=Path, default=score.BUILTIN_MODEL)
    ap.add_argument("--l2", type=float, default=0.003)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--mil-rounds", type=int, default=1, help="multiple-instance rounds (0: every sentence of an "
                    "entry carries its label; see score.fit)")
    ap.add_argument("--mil-keep", type=float, default=0.5, help="a risk entry's sentences kept as risk: probability "
                    "at least this share of the entry's best")
    ap.add_argument("--seeds", default="0,1,2", help="training orders whose weights are averaged (comma-separated; "
                    "see score.fit)")
    ap.add_argument("--average", type=int, default=5, help="average the iterates of the last N epochs (0: the last "
                    "iterate, the built-in model until round 5; see score.train)")
    ap.add_argument("--threshold", type=float, default=0.7, help="for a sentence with an anchor word (round 10, "
                    "by grouped cross-validation: benchmarks/screen_sweep.py)")
    ap.add_argument("--free-threshold", type=float, default=0.98, help="judge sentences without an anchor word too, "
                    "against this threshold (every sentence is tokenised; chosen by leave-one-set-out, round 5)")
    ap.add_argument("--anchored-only", action="store_true", help="judge only sentences with an anchor word (faster, "
                    "finds less: the built-in model of rounds 2-4)")
    ap.add_argument("--shift", default="-0.5/0/0", help="SELF/OTHERS/DANGER: added to each risk class's log-odds "
                    "(score.Model.shift; write --shift=-0.5/...; chosen by grouped cross-validation, rounds 10 to "
                    "12: benchmarks/screen_sweep.py)")
    ap.add_argument("--together", default="0.25,0.7,3,0.2", help="FLOOR,THRESHOLD,TOP,FIRST_PERSON: read an "
                    "entry's sentences together (see score.Together; 'none': off; chosen by grouped "
                    "cross-validation, rounds 7, 10 and 11)")
    ap.add_argument("--together-grow", default="none", help="AFTER/K: past AFTER sentences with words, the "
                    "reading together's threshold grows by K times itself per AFTER sentences more "
                    "(score.Together; 'none', the built-in model's: off; 8/0.5 measured in round 15)")
    ap.add_argument("--long", default="none", help="AFTER,THRESHOLD: in an entry of more than AFTER sentences with "
                    "words, a sentence with an anchor word must reach THRESHOLD and the entry is not read together "
                    "(score.Long; 'none', the built-in model's: off; 8,0.9 trades recall for fewer "
                    "false alarms on long emails, docs/screening.md, round 14)")
    ap.add_argument("--anchor", type=float, default=0.5, help="weight that makes a word an anchor (with --learned-anchors)")
    ap.add_argument("--anchors", type=Path, default=score.BUILTIN_ANCHORS, help="the curated anchor words")
    ap.add_argument("--learned-anchors", action="store_true", help="pick anchors from the weights instead (flags "
                    "everyday prose: see journal_relay/screen_anchors.txt)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for the training runs "
                    "(the same model whatever the number)")
    ap.add_argument("--counter-weight", type=float, default=1.0, help="training weight of the lexicon's "
                    "counter-examples (round 7: 0.5 and 0 measured no better than 1: benchmarks/screen_cv.py)")
    ap.add_argument("--min-count", type=int, default=1, help="a feature must occur in at least this many training "
                    "sentences (1: every one; round 15, docs/screening.md)")
    ap.add_argument("--long-none-weight", default="none", help="WORDS/K: an ordinary entry of at least WORDS words "
                    "counts K times in training ('none': all count once; round 15, docs/screening.md)")
    ap.add_argument("--no-lexicon", action="store_true", help="leave out the lexicon's examples and counter-examples")
    ap.add_argument("--practice", type=Path, default=None, help="practice lexicon (its normaliser is used)")
    args = ap.parse_args(argv)
    files = args.files or sorted((ROOT / "tests" / "data" / "screening").glob("*.jsonl"))
    lex = load_lexicon(args.practice)
    items = [json.loads(x) for f in files for x in f.read_text(encoding="utf-8").splitlines() if x.strip()]
    if args.long_none_weight != "none":
        words, k = args.long_none_weight.split("/")
        items = [{**it, "weight": float(k)} if it["label"] == "none" and len(it["text"].split()) >= int(words)
                 else it for it in items]
    if not args.no_lexicon:
        items += score.lexicon_items(lex, counter_weight=args.counter_weight)
    seeds = [int(x) for x in args.seeds.split(",")]
    bias, weights, examples = score.fit(items, lex, l2=args.l2, epochs=args.epochs, mil_rounds=args.mil_rounds,
                                        mil_keep=args.mil_keep, seeds=seeds, average=args.average,
                                        workers=args.workers, min_count=args.min_count)
    data = score.to_json(bias, weights, args.threshold, args.anchor, examples, trained_on=[f.name for f in files],
                         curated=None if args.learned_anchors else score.read_anchors(args.anchors))
    data.update(l2=args.l2, epochs=args.epochs, mil_rounds=args.mil_rounds, mil_keep=args.mil_keep)
    data.update(average=args.average)
    if args.min_count != 1:
        data.update(min_count=args.min_count)
    if seeds != [0]:
        data.update(seeds=seeds)
    shift = [float(x) for x in args.shift.split("/")]
    if any(shift):
        data["shift"] = shift
    if not args.anchored_only:
        data["free_threshold"] = args.free_threshold
        if args.long != "none":
            after, long_th = args.long.split(",")
            data["long"] = {"after": int(after), "threshold": float(long_th)}
        if args.together != "none":
            floor, need, top, first = args.together.split(",")
            data["together"] = {"floor": float(floor), "threshold": float(need), "top": int(top),
                                "first_person": float(first)}
            if args.together_grow != "none":
                after, k = args.together_grow.split("/")
                data["together"].update(grow_after=int(after), grow=float(k))  # type: ignore[attr-defined]
    args.out.write_text(json.dumps(data, separators=(",", ":"), sort_keys=True) + "\n", encoding="utf-8")
    print(f"{len(items)} entries -> {args.out} ({len(data['weights'])} features, "  # type: ignore[arg-type]
          f"{len(data['anchors'])} anchors, threshold {args.threshold})")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
