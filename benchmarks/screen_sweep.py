"""Operating points of the whole screener by grouped cross-validation, read offline: the fold models score
every sentence once, then any grid of thresholds and class shifts is counted in seconds.

The labelled sets are dealt into --folds groups by name and each group is scored by a model trained as the
built-in one is on all the others (screen_together.fold_models, with the training orders of --seeds); what
the screener would then decide is worked out from each sentence's scores (screen_together.entry_numbers) as
score.second_opinion decides it.  The scores are kept in --cache, so a second run with another
grid trains nothing.  A point is THRESHOLD/FREE/TOGETHER ("s": the shipped value) and a shift is
SELF/OTHERS/DANGER, added to each risk class's log-odds before the softmax (score.Model.shift; the shipped
shift is not applied first).
Prints, per point and shift, the risk entries and ordinary entries flagged, pooled over the folds; numbers
only, never text.  screen_cv.py reads the same points through the real screener.

Usage: python benchmarks/screen_sweep.py [--seeds 0+1+2] [--cache FILE] [--points s/s/s 0.8/s/0.7]
                                         [--shifts=0/0/0,0/0.5/0]
       python benchmarks/screen_sweep.py --check 3000   (the decisions here against the real screener's)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from screen_together import Entry, cached, entry_numbers, fold_models, labelled_sets  # noqa: E402

from journal_relay import score  # noqa: E402
from journal_relay.screen import load_lexicon, screen  # noqa: E402

# One entry: whether it is a risk entry, and its numbers (screen_together.entry_numbers, under a model without
# class shifts, so that the logits are the raw ones --shifts are added to).
Row = tuple[bool, Entry]
Judged = list[tuple[tuple[float, ...], bool, bool, tuple[str, ...]]]  # (probabilities, anchored, first person, words)


def scored(seeds: list[int], folds: int) -> tuple[list[Row], score.Model]:
    lex = load_lexicon()
    sets = labelled_sets([])
    rows: list[Row] = []
    for k, (group, model) in enumerate(fold_models(sets, folds, lex, seeds=seeds)):
        model = dataclasses.replace(model, shift=(0.0, 0.0, 0.0))  # (--shifts are read from the raw log-odds)
        rows += [(it["label"] != "none", entry_numbers(it["text"], lex, model)) for name in group for it in sets[name]]
        print(f"fold {k + 1}/{folds} scored", file=sys.stderr, flush=True)
    return rows, score.load_model()


def decides(r: Row, model: score.Model) -> bool:
    """What the screener decides for an entry from its numbers (``r`` scored with ``model``'s raw log-odds),
    at ``model``'s own thresholds and shift."""
    rules, judged = shifted(r, model.shift)
    return flagged(rules, judged, voiced(r, model.together), model.threshold, model.free_threshold, model.together,
                   model.long, len(r[1][1]))


def check(n: int, grow: str = "s") -> int:
    """How many of the first ``n`` labelled entries the numbers decide otherwise than the real screener does
    with the built-in model, its reading together's threshold growing as ``grow`` says (as --grow; "s": as
    shipped) (0: the sweep counts what the screener would do)."""
    lex = load_lexicon()
    model = score.load_model()
    model = dataclasses.replace(model, together=grown(model.together, grow))
    raw = dataclasses.replace(model, shift=(0.0, 0.0, 0.0))
    sets = labelled_sets([])
    items = [it for name in sorted(sets) for it in sets[name]][:n]
    return sum(decides((False, entry_numbers(it["text"], lex, raw)), model)
               != bool(screen(it["text"], lexicon=lex, model=model).flags) for it in items)


def grown(tog: score.Together | None, grow: str) -> score.Together | None:
    """``tog`` with its threshold growing as a --grow value says: AFTER/K, "none" (off) or "s" (as it is)."""
    if tog is None or grow == "s":
        return tog
    after, k = grow.split("/") if grow != "none" else ("0", "0")
    return dataclasses.replace(tog, grow_after=int(after), grow=float(k))


def shifted(row: Row, shift: Sequence[float]) -> tuple[bool, Judged]:
    """Whether a rule flagged an entry, and the sentences the model judges, with ``shift`` added to their
    log-odds."""
    _risk, (rules, sents) = row
    return rules, [(score._softmax([a + b for a, b in zip(z, shift, strict=True)]), anchored, first, words)
                   for z, anchored, seen, first, words in sents if not seen]


def voiced(row: Row, tog: score.Together | None) -> bool:
    """Whether enough of an entry's sentences (all with words) are in the first person to read it together."""
    sents = row[1][1]
    return tog is not None and bool(sents) and tog.voiced(sum(first for _z, _a, _s, first, _w in sents), len(sents))


def flagged(rules: bool, judged: Judged, voiced: bool, th: float, free: float | None,
            tog: score.Together | None, long: score.Long | None = None, spoken: int = 0) -> bool:
    """What score.second_opinion decides for one entry, from its judged sentences' probabilities; ``long``: how
    the model reads a long entry, for one of ``spoken`` sentences with words."""
    if rules:
        return True
    if long is not None and long.applies(spoken):
        th = long.anchored(th)
        tog = None
    free_th = 2.0 if free is None else max(th, free)
    if any(max(p) >= (th if anchored else free_th) for p, anchored, _f, _w in judged):
        return True
    return tog is not None and voiced and tog.reading([(w, p) for p, _a, _f, w in judged], spoken) is not None


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seeds", default="0", help="training orders averaged, joined by +")
    ap.add_argument("--cache", type=Path, help="where the scores are kept (read when it exists)")
    ap.add_argument("--points", nargs="+", default=["s/s/s"], help="THRESHOLD/FREE/TOGETHER")
    ap.add_argument("--shifts", default="0/0/0", help="SELF/OTHERS/DANGER log-odds shifts, joined by commas "
                    "(write --shifts=-0.5/0/0,... when the first is negative)")
    ap.add_argument("--long", default="s", help="AFTER/THRESHOLD for long entries (score.Long), joined by commas; "
                    "s: the shipped model's, none: off")
    ap.add_argument("--grow", default="s", help="AFTER/K: the reading together's threshold grows past AFTER sentences "
                    "(score.Together.grow_after, grow), joined by commas; s: the shipped model's, none: off")
    ap.add_argument("--min-sentences", type=int, default=0, help="count only entries of more than N sentences "
                    "with words (the long ones)")
    ap.add_argument("--check", type=int, default=0, help="only compare the decisions worked out here with the "
                    "real screener's on the first N labelled entries (built-in model) and print how many differ")
    args = ap.parse_args(argv)
    if args.check:
        print(f"{check(args.check, args.grow.split(',')[0])} of {args.check} entries decided differently from the "
              "screener")
        return 0
    rows, shipped = cached(args.cache, lambda: scored([int(x) for x in args.seeds.split("+")], args.folds))
    rows = [row for row in rows if len(row[1][1]) > args.min_sentences]
    risk = sum(r for r, _e in rows)
    none = len(rows) - risk
    out = []
    points = []
    for point in args.points:
        th_s, free_s, tog_s = point.split("/")
        base = shipped.together
        if base is not None and tog_s != "s":
            base = dataclasses.replace(base, threshold=float(tog_s))
        for gr in args.grow.split(","):
            tog = grown(base, gr)
            for lg in args.long.split(","):
                long = (shipped.long if lg == "s" else None if lg == "none"
                        else score.Long(int(lg.split("/")[0]), float(lg.split("/")[1])))
                points.append((f"{point} grow {gr} long {lg}", shipped.threshold if th_s == "s" else float(th_s),
                               shipped.free_threshold if free_s == "s" else float(free_s), tog, long))
    voices = [voiced(row, shipped.together) for row in rows]
    for shift in args.shifts.split(","):
        sh = [float(x) for x in shift.split("/")]
        entries = [shifted(row, sh) for row in rows]
        for point, th, free, tog, long in points:
            got = [flagged(rules, judged, v, th, free, tog, long, len(row[1][1]))
                   for (rules, judged), v, row in zip(entries, voices, rows, strict=True)]
            tp = sum(g and r for g, (r, _e) in zip(got, rows, strict=True))
            fp = sum(g and not r for g, (r, _e) in zip(got, rows, strict=True))
            out.append((fp, -tp, point, shift, tp))
    for fp, _ntp, point, shift, tp in sorted(out):
        print(f"point {point:28s} shift {shift:14s} risk entries flagged {tp} of {risk} ({tp / risk:.4f}), "
              f"ordinary entries flagged {fp} of {none} ({fp / none:.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
