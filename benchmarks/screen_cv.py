"""Grouped cross-validation of the whole screener (rules + model + reading together), for training choices.

The labelled sets are dealt into --folds groups by name as in benchmarks/screen_together.py; each group is
screened with a model trained as the built-in one is on all the others, once per training choice (the
lexicon's counter-examples at each weight of --counter-weights, the training orders of each --seeds), and
each fold model is then read at every operating point of --points (the model's threshold for a sentence
with an anchor word, for one without, and reading together's threshold; "s" keeps the shipped value; after a
colon, the class shifts).
Prints, per choice and point, the risk entries flagged and the ordinary entries flagged, pooled over the
folds (and per set with --per-set).  Numbers only, never text.  About 4 minutes per training choice and
1 more per extra point on a slow machine.

With --models FILE the fold models are kept: read from FILE when it exists (nothing is trained), written to it
otherwise.  With --engine DIR the screener (and the fold models, when trained) come from another checkout.
Together they measure a change to the rules alone against fixed models, in about a minute:
    python benchmarks/screen_cv.py --seeds 0 --models /tmp/folds.pkl --engine /path/to/old/checkout
    python benchmarks/screen_cv.py --seeds 0 --models /tmp/folds.pkl

Usage: python benchmarks/screen_cv.py [--folds 5] [--counter-weights 1,0.5,0] [--seeds 0 0+1+2]
                                      [--points s/s/s 0.85/s/s 0.9/0.95/0.7:0/0/0] [--per-set]
                                      [--models FILE] [--engine DIR] [FILE ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import screen_together  # noqa: E402
from screen_together import labelled_sets  # noqa: E402

from journal_relay import score  # noqa: E402


def at_point(model: score.Model, point: str) -> score.Model:
    """``model`` read at ``point``: THRESHOLD/FREE_THRESHOLD/TOGETHER_THRESHOLD, "s" for the shipped value,
    optionally followed by ":SELF/OTHERS/DANGER", the class shifts (score.Model.shift) instead of the shipped ones."""
    point, _, shift = point.partition(":")
    if shift:
        model = dataclasses.replace(model, shift=tuple(float(x) for x in shift.split("/")))
    th, free, tog = (None if x == "s" else float(x) for x in point.split("/"))
    together = model.together if tog is None or model.together is None else \
        dataclasses.replace(model.together, threshold=tog)
    return dataclasses.replace(model, threshold=model.threshold if th is None else th,
                               free_threshold=model.free_threshold if free is None else free, together=together)


def _engine(engine: Path | None) -> Any:
    """journal_relay.screen of ``engine`` (a checkout), or of this one; screen_together's training follows it."""
    if engine is not None:
        screen_together.use_engine(engine)
        importlib.reload(screen_together)
    return importlib.import_module("journal_relay.screen")



def _trained(sets: dict[str, list[dict]], folds: int, lex: Any, weight: float, seeds: list[int]
             ) -> list[tuple[list[str], Any]]:
    return list(screen_together.fold_models(sets, folds, lex, counter_weight=weight, seeds=seeds))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--counter-weights", default="1", help="training weights of the lexicon's counter-examples")
    ap.add_argument("--seeds", nargs="+", default=["0"], help="training orders averaged, joined by +, per choice")
    ap.add_argument("--points", nargs="+", default=["s/s/s"], help="operating points THRESHOLD/FREE/TOGETHER")
    ap.add_argument("--per-set", action="store_true", help="also print each set's counts")
    ap.add_argument("--models", type=Path, help="fold models kept here: read when it exists, written otherwise")
    ap.add_argument("--engine", type=Path, help="checkout whose journal_relay screens (default: this one)")
    args = ap.parse_args(argv)
    if args.models is not None and (len(args.seeds) > 1 or "," in args.counter_weights):
        ap.error("--models keeps one training choice: give one --seeds and one --counter-weights")
    screen_mod = _engine(args.engine)
    lex = screen_mod.load_lexicon()
    sets = labelled_sets(args.files)
    for weight in (float(x) for x in args.counter_weights.split(",")):
        for seeds in args.seeds:
            runs = [int(x) for x in seeds.split("+")]
            # name -> point -> [risk flagged, risk, ordinary flagged, ordinary]
            per_set: dict[str, dict[str, list[int]]] = {}
            folds = screen_together.cached(args.models, partial(_trained, sets, args.folds, lex, weight, runs))
            for group, model in folds:
                for point in args.points:
                    read = at_point(model, point)
                    for name in group:
                        counts = per_set.setdefault(name, {}).setdefault(point, [0, 0, 0, 0])
                        for it in sets[name]:
                            flagged = bool(screen_mod.screen(it["text"], lexicon=lex, model=read).flags)
                            k = 0 if it["label"] != "none" else 2
                            counts[k] += flagged
                            counts[k + 1] += 1
            for point in args.points:
                tp, risk, fp, none = (sum(c[point][i] for c in per_set.values()) for i in range(4))
                print(f"counter-example weight {weight:g}, seeds {seeds}, point {point}: risk entries flagged "
                      f"{tp} of {risk} ({tp / risk:.4f}), ordinary entries flagged {fp} of {none} "
                      f"({fp / none:.4f})", flush=True)
                if args.per_set:
                    for name in sorted(per_set):
                        print(f"  {name}: " + " ".join(map(str, per_set[name][point])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
