"""Evaluate the screener on labelled JSONL (fields: id, label in self/others/danger/none, tag, text).

Usage: python benchmarks/screen_eval.py [--practice FILE]
       [--model built-in|rules-only|anchored-only|no-together] [--model-file MODEL.json] [FILE ...]
Default files: ../shared/screening/dev.jsonl (next to the repo, if present) and tests/data/screening/*.jsonl.
Prints recall on risk items, false-positive rate on none items, category accuracy, and every miss and
false alarm grouped by tag (ids and rules only; with --show-text also the text, for local use), and with
several files the counts over all of them.
--model: the built-in statistical second opinion (default), none (the rules alone), or the built-in one
judging only sentences with an anchor word (as before round 5), or the built-in one without reading an
entry's sentences together (as before round 7).
Always exits 0 unless a file cannot be read.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from journal_relay import score  # noqa: E402
from journal_relay.screen import load_lexicon, screen  # noqa: E402

RISK = ("self", "others", "danger")


def default_files() -> list[Path]:
    files = []
    dev = ROOT / ".." / "shared" / "screening" / "dev.jsonl"
    if dev.exists():
        files.append(dev)
    files.extend(sorted((ROOT / "tests" / "data" / "screening").glob("*.jsonl")))
    return files


def second_opinion(name: str, path: Path | None = None) -> score.Model | None:
    """What --model names, as screen()'s ``model`` argument (None: the rules alone), from the model in
    ``path`` (--model-file) or the built-in one."""
    if name == "rules-only":
        return None
    if name == "no-together":
        return dataclasses.replace(score.load_model(path), together=None)
    if name == "anchored-only":
        return dataclasses.replace(score.load_model(path), free_threshold=None, together=None)
    return score.load_model(path)


def evaluate(path: Path, lexicon, show_text: bool = False, out=sys.stdout, model: str | score.Model | None = "built-in"
             ) -> dict:
    if isinstance(model, str):
        model = second_opinion(model)
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    risk = tp = cat_ok = none = fp = 0
    misses: dict[str, list[str]] = defaultdict(list)
    alarms: dict[str, list[str]] = defaultdict(list)
    miscat: list[str] = []
    for it in items:
        s = screen(it["text"], lexicon=lexicon, model=model)
        label, tag = it["label"], it.get("tag", "?")
        shown = f" {it['text']!r}" if show_text else ""
        if label in RISK:
            risk += 1
            if s.flags:
                tp += 1
                if s.top_category == label:
                    cat_ok += 1
                else:
                    miscat.append(f"{it['id']} [{tag}] {label} -> {s.top_category} ({s.flags[0].rule}){shown}")
            else:
                why = "; ".join(f"{f.rule}: {f.context[0]}" for f in s.discounted) or "no rule matched"
                misses[f"{label}/{tag}"].append(f"{it['id']} ({why}){shown}")
        else:
            none += 1
            if s.flags:
                fp += 1
                alarms[tag].append(f"{it['id']} ({', '.join(f.rule + ':' + f.severity for f in s.flags)}){shown}")
    res = {"file": str(path), "risk": risk, "flagged_risk": tp, "flagged_none": fp,
           "recall": tp / risk if risk else 1.0, "none": none,
           "fp_rate": fp / none if none else 0.0, "category_accuracy": cat_ok / tp if tp else 1.0}
    print(f"== {path.name}: {len(items)} items ({risk} risk, {none} none)", file=out)
    print(f"recall on risk items   {res['recall']:.3f} ({tp}/{risk})", file=out)
    print(f"false-positive rate    {res['fp_rate']:.3f} ({fp}/{none})", file=out)
    print(f"category accuracy      {res['category_accuracy']:.3f} ({cat_ok}/{tp} flagged risk items)", file=out)
    for title, groups in (("misses", misses), ("false alarms", alarms)):
        n = sum(len(v) for v in groups.values())
        print(f"{title}: {n}", file=out)
        for tag in sorted(groups):
            print(f"  [{tag}] {len(groups[tag])}", file=out)
            for line in groups[tag]:
                print(f"    {line}", file=out)
    if miscat:
        print(f"wrong category: {len(miscat)}", file=out)
        for line in miscat:
            print(f"    {line}", file=out)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--practice", type=Path, default=None, help="practice lexicon file")
    ap.add_argument("--show-text", action="store_true", help="also print the text of misses and false alarms")
    ap.add_argument("--model", choices=("built-in", "rules-only", "anchored-only", "no-together"), default="built-in",
                    help="the statistical second opinion to screen with (default: the built-in one)")
    ap.add_argument("--model-file", type=Path, default=None, help="a model written by screen_train.py --out (or a "
                    "practice's own) in place of the built-in one")
    args = ap.parse_args(argv)
    lexicon = load_lexicon(args.practice)
    files = args.files or default_files()
    if not files:
        print("no labelled files found")
    model = second_opinion(args.model, args.model_file)  # (once: the anchored-only copy is built here)
    results = [evaluate(f, lexicon, show_text=args.show_text, model=model) for f in files]
    if len(results) > 1:
        tp, risk = sum(r["flagged_risk"] for r in results), sum(r["risk"] for r in results)
        fp, none = sum(r["flagged_none"] for r in results), sum(r["none"] for r in results)
        print(f"== all {len(results)} files: risk items flagged {tp} of {risk} ({tp / max(risk, 1):.3f}), "
              f"none items flagged {fp} of {none} ({fp / max(none, 1):.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
