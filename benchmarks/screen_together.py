"""Choose score.Together's parameters by grouped cross-validation (reading an entry's sentences together).

The repository's labelled sets (and ../shared/screening/dev.jsonl when present) are dealt into --folds
groups by set name; for each group the model is trained as the built-in one is (score.fit, the lexicon's
examples, the curated anchors) on all the other groups, and every sentence of the group's entries is scored
out of fold.  Then, for each combination of the grid, it prints how many risk entries and how many ordinary
entries that nothing else flagged (rules, or one sentence at the model's thresholds) reading together would
add, pooled over the folds, and how many of the real emails of ../shared/mail-samples it would add (scored
with the built-in model, which never saw them).

Usage: python benchmarks/screen_together.py [--folds 5] [--floors 0.25,0.35,0.45] [--thresholds 0.6,0.7,0.8,0.9,1.0]
       [--tops 3] [--first 0,0.2] [FILE ...]
Prints numbers only, never text.  About 3 minutes on a slow machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import itertools
import json
import os
import pickle
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from journal_relay import score  # noqa: E402
from journal_relay.screen import Lexicon, _fold, _sentences, load_lexicon, screen  # noqa: E402

SAMPLES = ROOT / ".." / "shared" / "mail-samples"

# One entry: whether the rules flag it, and per sentence with words (the model's logits, anchored, left to
# the rules (score.unread), first person, words).
Entry = tuple[bool, list[tuple[tuple[float, ...], bool, bool, bool, tuple[str, ...]]]]


def entry_numbers(text: str, lex: Lexicon, model: score.Model) -> Entry:
    r = screen(text, lexicon=lex, model=None)
    seen = score.unread(r)
    folded = _fold(text)
    out = []
    for s in _sentences(text, folded):
        if s.quoted:
            continue
        words = lex.norm.words(folded[s.start:s.end])
        if not words:
            continue
        out.append((tuple(model.logits(score.features(words))), not model.anchors.isdisjoint(words), text[s.start:s.end].strip() in seen,
                    not score._FIRST.isdisjoint(words), tuple(words)))
    return bool(r.flags), out


def flagged_alone(e: Entry, model: score.Model) -> bool:
    """Flagged without reading together: a rule, or one sentence at the model's thresholds."""
    rules, sents = e
    free = model.free_threshold if model.free_threshold is not None else 2.0
    return rules or any(not seen and max(score._softmax(z)) >= (model.threshold if anchored else free)
                        for z, anchored, seen, _first, _words in sents)


def together(e: Entry, t: score.Together) -> bool:
    """Whether reading together flags the entry (score.Together, as score.second_opinion asks it)."""
    sents = e[1]
    if not sents or not t.voiced(sum(first for _z, _a, _s, first, _w in sents), len(sents)):
        return False
    return t.reading([(words, score._softmax(z)) for z, _a, seen, _f, words in sents if not seen]) is not None


def floats(s: str) -> list[float]:
    return [float(x) for x in s.split(",") if x]


def labelled_sets(files: Sequence[Path]) -> dict[str, list[dict]]:
    """The labelled sets to deal into folds: ``files``, or the repository's sets and the shared dev set."""
    if not files:
        files = sorted((ROOT / "tests" / "data" / "screening").glob("*.jsonl"))
        dev = ROOT / ".." / "shared" / "screening" / "dev.jsonl"
        files += [dev] if dev.exists() else []
    return {f.stem: [json.loads(x) for x in f.read_text(encoding="utf-8").splitlines() if x.strip()] for f in files}


_T = TypeVar("_T")


def cached(path: Path | None, make: Callable[[], _T]) -> _T:
    """``make()``, kept in ``path`` (pickled): read from it when it exists, written to it otherwise."""
    if path is not None and path.exists():
        got: _T = pickle.loads(path.read_bytes())
        return got
    got = make()
    if path is not None:
        path.write_bytes(pickle.dumps(got))
    return got


def use_engine(engine: Path) -> None:
    """Import journal_relay from the checkout ``engine`` from now on: the modules imported so far are forgotten
    (a module that imported them keeps the old ones until it is reloaded)."""
    for name in [m for m in sys.modules if m == "journal_relay" or m.startswith("journal_relay.")]:
        del sys.modules[name]
    sys.path.insert(0, str(engine.resolve()))
    # Imported here, the package is the engine's for good: a module reloaded later (this one) puts its own
    # checkout first on the path again, and its submodules are then still looked up in the engine's package.
    importlib.import_module("journal_relay")


def fold_models(sets: dict[str, list[dict]], folds: int, lex: Lexicon, counter_weight: float = 1.0,
                seeds: Sequence[int] = (0,)) -> Iterator[tuple[list[str], score.Model]]:
    """For each fold: the names of its sets (dealt by name), and a model trained as the built-in one is (the
    lexicon's examples, the curated anchors, the shipped thresholds, class shifts and reading together) on all the
    others."""
    names = sorted(sets)
    extra = score.lexicon_items(lex, counter_weight=counter_weight)
    shipped = score.load_model()
    for k in range(folds):
        group = names[k::folds]
        train = [it for n in names if n not in group for it in sets[n]] + extra
        bias, weights, examples = score.fit(train, lex, seeds=seeds, workers=os.cpu_count() or 1)
        model = score._from_json(score.to_json(bias, weights, shipped.threshold, 0.5, examples,
                                               curated=score.read_anchors()), f"fold {k}")
        yield group, dataclasses.replace(model, free_threshold=shipped.free_threshold, together=shipped.together,
                                         shift=shipped.shift, long=shipped.long)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--floors", default="0.25,0.35,0.45")
    ap.add_argument("--thresholds", default="0.6,0.7,0.8,0.9,1.0")
    ap.add_argument("--tops", default="3")
    ap.add_argument("--first", default="0,0.2", help="shares of first-person sentences required")
    args = ap.parse_args(argv)
    lex = load_lexicon()
    sets = labelled_sets(args.files)
    shipped = score.load_model()
    rows: list[tuple[bool, bool, Entry]] = []  # (risk, flagged alone, numbers)
    for k, (group, model) in enumerate(fold_models(sets, args.folds, lex)):
        for n in group:
            for it in sets[n]:
                e = entry_numbers(it["text"], lex, model)
                rows.append((it["label"] != "none", flagged_alone(e, model), e))
        print(f"fold {k + 1}/{args.folds}: {len(group)} sets scored", flush=True)
    real: list[tuple[bool, Entry]] = []
    if SAMPLES.is_dir():
        from journal_relay.parse import parse_message
        for p in sorted(SAMPLES.rglob("*")):
            if p.is_file() and p.suffix != ".md":
                text = parse_message(p.read_bytes()).text
                if len(text) >= 40:
                    e = entry_numbers(text, lex, shipped)
                    real.append((flagged_alone(e, shipped), e))
    risk = sum(r for r, _f, _e in rows)
    tp0 = sum(r and f for r, f, _e in rows)
    fp0 = sum(f and not r for r, f, _e in rows)
    print(f"{len(rows)} entries ({risk} risk) out of fold; flagged without reading together: "
          f"recall {tp0 / risk:.3f}, false positives {fp0 / (len(rows) - risk):.3f}; real emails flagged "
          f"{sum(f for f, _e in real)} of {len(real)}")
    print("floor threshold top first_person: +risk entries +false alarms (ratio) +real emails")
    grid = itertools.product(floats(args.floors), floats(args.thresholds), [int(x) for x in args.tops.split(",")],
                             floats(args.first))
    for floor, th, top, first in grid:
        t = score.Together(floor, th, top, first)
        tp = sum(1 for r, f, e in rows if r and not f and together(e, t))
        fp = sum(1 for r, f, e in rows if not r and not f and together(e, t))
        rr = sum(1 for f, e in real if not f and together(e, t))
        print(f"{floor:.2f} {th:.2f} {top} {first:.2f}: +{tp} +{fp} ({tp / max(fp, 1):.1f}) +{rr}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
