"""Grouped cross-validation of the whole screener (rules + model + reading together), for training choices.

The labelled sets are dealt into --folds groups by name as in benchmarks/screen_together.py; each group is
screened with a model trained as the built-in one is on all the others, with the lexicon's counter-examples
at each weight of --counter-weights.  Prints, per weight, the risk entries flagged and the ordinary entries
flagged, pooled over the folds and per set.  Numbers only, never text.  About 4 minutes per weight on a
slow machine.

Usage: python benchmarks/screen_cv.py [--folds 5] [--counter-weights 1,0.5,0] [FILE ...]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from screen_together import fold_models, labelled_sets  # noqa: E402

from journal_relay.screen import load_lexicon, screen  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--counter-weights", default="1,0.5,0", help="training weights of the lexicon's counter-examples")
    args = ap.parse_args(argv)
    lex = load_lexicon()
    sets = labelled_sets(args.files)
    for weight in (float(x) for x in args.counter_weights.split(",")):
        per_set: dict[str, list[int]] = {}  # name -> [risk flagged, risk, ordinary flagged, ordinary]
        for group, model in fold_models(sets, args.folds, lex, counter_weight=weight):
            for name in group:
                counts = per_set[name] = [0, 0, 0, 0]
                for it in sets[name]:
                    flagged = bool(screen(it["text"], lexicon=lex, model=model).flags)
                    k = 0 if it["label"] != "none" else 2
                    counts[k] += flagged
                    counts[k + 1] += 1
        tp, risk, fp, none = (sum(c[i] for c in per_set.values()) for i in range(4))
        print(f"counter-example weight {weight:g}: risk entries flagged {tp} of {risk} ({tp / risk:.4f}), "
              f"ordinary entries flagged {fp} of {none} ({fp / none:.4f})", flush=True)
        for name in sorted(per_set):
            print(f"  {name}: " + " ".join(map(str, per_set[name])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
