"""Leave-one-set-out evaluation of the statistical second opinion (journal_relay/score.py).

For each labelled set: train the model on all the other sets, then measure on the left-out set
* the model alone (an entry counts if any sentence reaches the threshold),
* the current rules alone and the current rules + model,
* for sets that were first run on an older lexicon before anyone tuned the rules on them (--first-run
  NAME=COMMIT), those first-run rules alone and + model: the closest simulation of "neither the rules
  nor the model has seen this writing" (FIRST_RUN below).

Usage: python benchmarks/screen_loso.py [--l2 0.003] [--epochs 10] [--mil-rounds 1] [--mil-keep 0.5]
       [--seeds 0] [--average 5] [--thresholds 0.5,0.6,...] [--free 0.95,0.98 --threshold 0.9]
       [--learned-anchors] [--no-first-run] [--dump FILE] [FILE ...]
Default files: tests/data/screening/*.jsonl and ../shared/screening/dev.jsonl if present.  Every fold
trains as benchmarks/screen_train.py does (score.fit: multiple-instance rounds, the curated anchors) and
also on the lexicon's rule examples and counter-examples (--no-lexicon: not); note that the current
lexicon was written after the sets, so some of its examples may paraphrase a left-out entry.  --free
adds columns where sentences without an anchor word are judged too, against each given threshold (with
the anchored ones at --threshold).  --seeds and --average: weight averaging (see score.fit).  --dump
writes one JSON line per entry (set, index, label, the rules' flag, the model's highest probabilities),
for other thresholds and for comparing runs (how many entries a retraining moves).
Prints numbers only, never text.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from journal_relay import score  # noqa: E402
from journal_relay.screen import _fold, _sentences, load_lexicon, screen  # noqa: E402

FIRST_RUN = {"unseen2": "dd9b835", "fresh_a": "31620d7", "fresh_c": "832ad4b"}
# Sets added after the last change to the rules, never tuned on: "rules now" on them is a first run too.
# (train_k1-k3 were, until round 5 tuned the rules on them; the round-5 sets were tuned on too.)
UNTUNED: tuple[str, ...] = ()


def default_files() -> list[Path]:
    files = sorted((ROOT / "tests" / "data" / "screening").glob("*.jsonl"))
    dev = ROOT / ".." / "shared" / "screening" / "dev.jsonl"
    return files + ([dev] if dev.exists() else [])


def old_screener(commit: str, tmp: Path):
    """The screen module and built-in lexicon as they were at ``commit`` (imported under its own name)."""
    d = tmp / f"old_{commit}"
    d.mkdir()
    for name in ("screen.py", "lexicon.toml"):
        (d / name).write_bytes(subprocess.run(["git", "show", f"{commit}:journal_relay/{name}"], cwd=ROOT,
                                              check=True, capture_output=True).stdout)
    spec = importlib.util.spec_from_file_location(f"old_screen_{commit}", d / "screen.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod, mod.load_lexicon()


def entry_view(text: str, lex) -> list[tuple[str, list[str]]]:
    folded = _fold(text)
    return [(text[s.start:s.end].strip(), lex.norm.tokens(folded[s.start:s.end])[0])
            for s in _sentences(text, folded) if not s.quoted]


def rules_view(result) -> tuple[bool, set[str]]:
    return bool(result.flags), {f.sentence for f in result.flags} | {f.sentence for f in result.discounted}


def max_p(model: score.Model, sents: list[tuple[str, list[str]]], seen: set[str]) -> tuple[float, float]:
    """The highest risk probability of a sentence with an anchor word, and of one without."""
    best = [0.0, 0.0]
    for sentence, words in sents:
        if sentence in seen or not words:
            continue
        p = max(model.probabilities(score.features(words)))
        k = 0 if not model.anchors.isdisjoint(words) else 1
        best[k] = max(best[k], p)
    return best[0], best[1]


def rate(k: int, n: int) -> str:
    """k/n to three places; "-" for a set with none of the kind (train_m7 holds no risk entries)."""
    return f"{k / n:.3f}" if n else "-"


def name_of(t: float, free: float) -> str:
    return f"t{t:.2f}" + (f"+f{free:.2f}" if free <= 1.0 else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--l2", type=float, default=0.003)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--mil-rounds", type=int, default=1)
    ap.add_argument("--mil-keep", type=float, default=0.5)
    ap.add_argument("--seeds", default="0", help="training orders whose weights are averaged (comma-separated)")
    ap.add_argument("--average", type=int, default=5, help="average the iterates of the last N epochs (0: the last)")
    ap.add_argument("--dump", type=Path, default=None, help="per-entry numbers (JSON lines) to this file")
    ap.add_argument("--learned-anchors", action="store_true", help="anchors learned from the weights (--anchor, "
                    "--share) instead of journal_relay/screen_anchors.txt")
    ap.add_argument("--anchor", type=float, default=0.5)
    ap.add_argument("--share", type=float, default=0.75)
    ap.add_argument("--thresholds", default="0.7,0.8,0.85,0.9,0.95")
    ap.add_argument("--free", default="", help="thresholds for sentences without an anchor word (comma-separated)")
    ap.add_argument("--threshold", type=float, default=0.9, help="the anchored threshold that goes with --free")
    ap.add_argument("--no-lexicon", action="store_true", help="train without the lexicon's own examples")
    ap.add_argument("--no-first-run", action="store_true", help="skip the first-run rules (faster)")
    args = ap.parse_args(argv)
    ths = [float(x) for x in args.thresholds.split(",")]
    lex = load_lexicon()
    files = args.files or default_files()
    sets = {f.stem: [json.loads(x) for x in f.read_text(encoding="utf-8").splitlines() if x.strip()] for f in files}
    extra = [] if args.no_lexicon else score.lexicon_items(lex)
    curated = None if args.learned_anchors else score.read_anchors()
    combos: list[tuple[float, float]] = [(t, 2.0) for t in ths]
    combos += [(args.threshold, float(f)) for f in args.free.split(",") if f]
    view = {name: [entry_view(it["text"], lex) for it in items] for name, items in sets.items()}
    cur = {name: [rules_view(screen(it["text"], lexicon=lex, model=None)) for it in items]
           for name, items in sets.items()}
    old: dict[str, list[tuple[bool, set[str]]]] = {}
    if not args.no_first_run:
        with tempfile.TemporaryDirectory() as tmp:
            for name, commit in FIRST_RUN.items():
                if name in sets:
                    mod, olex = old_screener(commit, Path(tmp))
                    old[name] = [rules_view(mod.screen(it["text"], lexicon=olex)) for it in sets[name]]
    seeds = [int(x) for x in args.seeds.split(",")]
    print(f"l2={args.l2} epochs={args.epochs} mil_rounds={args.mil_rounds} mil_keep={args.mil_keep} "
          f"seeds={args.seeds} average={args.average} anchors={'learned' if curated is None else 'curated'}")
    dump: list[dict[str, object]] | None = [] if args.dump is not None else None
    pooled: dict[str, dict[tuple[float, float], list[int]]] = {}

    def add(key: str, t: tuple[float, float], tp: int, risk: int, fp: int, none: int) -> None:
        acc = pooled.setdefault(key, {}).setdefault(t, [0, 0, 0, 0])
        for i, v in enumerate((tp, risk, fp, none)):
            acc[i] += v

    for name, items in sets.items():
        train_items = [it for other, xs in sets.items() if other != name for it in xs] + extra
        bias, weights, train = score.fit(train_items, lex, l2=args.l2, epochs=args.epochs,
                                         mil_rounds=args.mil_rounds, mil_keep=args.mil_keep, seeds=seeds,
                                         average=args.average)
        model = score._from_json(score.to_json(bias, weights, 0.5, args.anchor, train, anchor_share=args.share,
                                               curated=curated), "loso")
        labels = [it["label"] != "none" for it in items]
        risk = sum(labels)
        none = len(items) - risk
        alone = [max_p(model, view[name][i], set()) for i in range(len(items))]
        rows = [("model alone", [False] * len(items), alone)]
        curp = [max_p(model, view[name][i], cur[name][i][1]) for i in range(len(items))]
        rows.append(("rules now", [c[0] for c in cur[name]], curp))
        if dump is not None:
            dump += [{"set": name, "i": i, "risk": labels[i], "rules": cur[name][i][0], "alone": alone[i],
                      "with_rules": curp[i]} for i in range(len(items))]
        if name in old:
            oldp = [max_p(model, view[name][i], old[name][i][1]) for i in range(len(items))]
            rows.append((f"rules {FIRST_RUN[name]}", [c[0] for c in old[name]], oldp))
        print(f"== left out {name} ({risk} risk, {none} none; trained on {len(train)} sentences, "
              f"{len(model.weights)} features, {len(model.anchors)} anchors)")
        for label, rflag, ps in rows:
            tp0 = sum(1 for i in range(len(items)) if labels[i] and rflag[i])
            fp0 = sum(1 for i in range(len(items)) if not labels[i] and rflag[i])
            cells = []
            if label != "model alone":
                cells.append(f"alone {rate(tp0, risk)}/{rate(fp0, none)}")
            for t, free in combos:
                flag = [rflag[i] or ps[i][0] >= t or ps[i][1] >= free for i in range(len(items))]
                tp = sum(1 for i in range(len(items)) if labels[i] and flag[i])
                fp = sum(1 for i in range(len(items)) if not labels[i] and flag[i])
                cells.append(f"{name_of(t, free)} {rate(tp, risk)}/{rate(fp, none)}")
                add(label.split(" ")[0] + " " + ("first-run" if label.startswith("rules ") and label != "rules now"
                                                  else label.split(" ")[-1]), (t, free), tp, risk, fp, none)
                if label == "rules now" and name in UNTUNED:
                    add("rules untuned", (t, free), tp, risk, fp, none)
            print(f"  {label:16s} recall/FP  " + "  ".join(cells))
    print("== pooled over left-out sets (recall/FP)")
    for key, by_t in pooled.items():
        print(f"  {key:16s} " + "  ".join(f"{name_of(*t)} {rate(v[0], v[1])}/{rate(v[2], v[3])}" for t, v in by_t.items()))
    if dump is not None:
        args.dump.write_text("".join(json.dumps(d) + "\n" for d in dump), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
