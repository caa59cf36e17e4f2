"""Operating points of the whole screener by grouped cross-validation, read offline: the fold models score
every sentence once, then any grid of thresholds and class shifts is counted in seconds.

The labelled sets are dealt into --folds groups by name and each group is scored by a model trained as the
built-in one is on all the others (screen_together.fold_models, with the training orders of --seeds); what
the screener would then decide is worked out from each sentence's scores as score.second_opinion decides it
(screen_together.flagged_alone and together).  The scores are kept in --cache, so a second run with another
grid trains nothing.  A point is THRESHOLD/FREE/TOGETHER ("s": the shipped value) and a shift is
SELF/OTHERS/DANGER, added to each risk class's log-odds before the softmax (score.Model.shift).
Prints, per point and shift, the risk entries and ordinary entries flagged, pooled over the folds; numbers
only, never text.  screen_cv.py reads the same points through the real screener.

Usage: python benchmarks/screen_sweep.py [--seeds 0+1+2] [--cache FILE] [--points s/s/s 0.8/s/0.7]
                                         [--shifts 0/0/0 0/0.5/0]
"""

from __future__ import annotations

import argparse
import itertools
import pickle
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from screen_together import fold_models, labelled_sets  # noqa: E402

from journal_relay import score  # noqa: E402
from journal_relay.screen import _fold, _sentences, load_lexicon, screen  # noqa: E402

# One entry: (risk?, flagged by a rule?, its sentences as (logits, anchored, judged by the model?, first
# person?, words)).
Row = tuple[bool, bool, list[tuple[tuple[float, ...], bool, bool, bool, tuple[str, ...]]]]


def scored(seeds: list[int], folds: int) -> tuple[list[Row], score.Model]:
    lex = load_lexicon()
    sets = labelled_sets([])
    rows: list[Row] = []
    for k, (group, model) in enumerate(fold_models(sets, folds, lex, seeds=seeds)):
        for name in group:
            for it in sets[name]:
                text = it["text"]
                r = screen(text, lexicon=lex, model=None)
                unread = score.unread(r)
                folded = _fold(text)
                sents = []
                for s in _sentences(text, folded):
                    words = lex.norm.words(folded[s.start:s.end])
                    if s.quoted or not words:
                        continue
                    sents.append((tuple(model.logits(score.features(words))), not model.anchors.isdisjoint(words),
                                  text[s.start:s.end].strip() not in unread, not score._FIRST.isdisjoint(words),
                                  tuple(words)))
                rows.append((it["label"] != "none", bool(r.flags), sents))
        print(f"fold {k + 1}/{folds} scored", file=sys.stderr, flush=True)
    return rows, score.load_model()


def flagged(row: Row, th: float, free: float | None, tog: score.Together | None, shift: Sequence[float]) -> bool:
    """What score.second_opinion decides for one entry, from its sentences' logits."""
    rules, _, sents = row
    if rules:
        return True
    pooled = []
    for z, anchored, judged, _first, words in sents:
        if not judged:
            continue
        p = score._softmax([a + b for a, b in zip(z, shift, strict=True)])
        need = th if anchored else (None if free is None else max(th, free))
        if need is not None and max(p) >= need:
            return True
        pooled.append((words, p))
    if tog is None or not sents:
        return False
    if not tog.voiced(sum(first for _z, _a, _j, first, _w in sents), len(sents)):
        return False
    return tog.reading(pooled) is not None


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seeds", default="0", help="training orders averaged, joined by +")
    ap.add_argument("--cache", type=Path, help="where the scores are kept (read when it exists)")
    ap.add_argument("--points", nargs="+", default=["s/s/s"], help="THRESHOLD/FREE/TOGETHER")
    ap.add_argument("--shifts", nargs="+", default=["0/0/0"], help="SELF/OTHERS/DANGER log-odds shifts")
    args = ap.parse_args(argv)
    if args.cache is not None and args.cache.exists():
        rows, shipped = pickle.loads(args.cache.read_bytes())
    else:
        rows, shipped = scored([int(x) for x in args.seeds.split("+")], args.folds)
        if args.cache is not None:
            args.cache.write_bytes(pickle.dumps((rows, shipped)))
    risk = sum(r for r, _f, _s in rows)
    none = len(rows) - risk
    out = []
    for point, shift in itertools.product(args.points, args.shifts):
        th_s, free_s, tog_s = point.split("/")
        th = shipped.threshold if th_s == "s" else float(th_s)
        free = shipped.free_threshold if free_s == "s" else float(free_s)
        tog = shipped.together
        if tog is not None and tog_s != "s":
            tog = score.Together(tog.floor, float(tog_s), tog.top, tog.first_person)
        sh = [float(x) for x in shift.split("/")]
        got = [flagged(row, th, free, tog, sh) for row in rows]
        tp = sum(g and r for g, (r, _f, _s) in zip(got, rows, strict=True))
        fp = sum(g and not r for g, (r, _f, _s) in zip(got, rows, strict=True))
        out.append((fp, -tp, point, shift, tp))
    for fp, _ntp, point, shift, tp in sorted(out):
        print(f"point {point:16s} shift {shift:14s} risk entries flagged {tp} of {risk} ({tp / risk:.4f}), "
              f"ordinary entries flagged {fp} of {none} ({fp / none:.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
