"""How much of the built-in lexicon no trigger reaches, and what covering it would change.

Counts the patterns that can match a text holding none of their rule's triggers (journal_relay/reach.py).
With --cover, picks words to add as triggers until every such pattern is reached (greedy: the word that
covers most of the remaining example texts for the fewest training texts it occurs in), and with --eval
screens labelled files with the lexicon as it is and with those triggers added, side by side.

Usage: python benchmarks/screen_reach.py [--show N] [--cover] [--eval FILE ...] [--rules-only]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from journal_relay import score, screen  # noqa: E402
from journal_relay.reach import untriggered  # noqa: E402

_WORD = re.compile(r"[a-z]+")


def training_frequency() -> Counter[str]:
    """In how many training texts each word occurs (a trigger's cost: how often it makes its rule a candidate)."""
    freq: Counter[str] = Counter()
    for path in sorted((ROOT / "tests" / "data" / "screening").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                freq.update(set(_WORD.findall(json.loads(line)["text"].lower())))
    return freq


def cover(lexicon: screen.Lexicon, freq: Counter[str]) -> tuple[dict[str, list[str]], int]:
    """Words to add as triggers, by rule id, and how many patterns no word can cover (open words only)."""
    added: dict[str, list[str]] = {}
    uncovered = 0
    for rule in lexicon.rules:
        triggers = set(rule.triggers)
        for pattern in rule.patterns:
            for _ in range(300):
                examples = untriggered(pattern.pattern, triggers, limit=10_000)
                if not examples:
                    break
                counts = Counter(w for text in examples for w in set(text.split(" ")) if _WORD.fullmatch(w))
                if not counts:
                    uncovered += 1
                    break
                best = min(counts, key=lambda w: ((freq[w] + 1) / counts[w], w))
                triggers.add(best)
                added.setdefault(rule.id, []).append(best)
            else:
                uncovered += 1
    return added, uncovered


def with_triggers(added: dict[str, list[str]], folder: Path) -> screen.Lexicon:
    """The built-in lexicon with ``added`` triggers, read from a copy of its file (the same loader)."""
    lines = screen.BUILTIN_LEXICON.read_text(encoding="utf-8").split("\n")
    rule_id = None
    for i, line in enumerate(lines):
        m = re.match(r'id = "([^"]+)"', line)
        if m:
            rule_id = m.group(1)
        elif line.startswith("triggers = [") and rule_id in added:
            lines[i] = "triggers = " + json.dumps(json.loads(line[len("triggers = "):]) + added[rule_id])
    copy = folder / "lexicon.toml"
    copy.write_text("\n".join(lines), encoding="utf-8")
    return screen._builtin(str(copy))[0]


def evaluate(lexicon: screen.Lexicon, model: score.Model | None, files: list[Path]) -> tuple[int, int, int, int]:
    caught = risk = flagged = ordinary = 0
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            hit = bool(screen.screen(item["text"], lexicon=lexicon, model=model).flags)
            if item["label"] == "none":
                ordinary += 1
                flagged += hit
            else:
                risk += 1
                caught += hit
    return caught, risk, flagged, ordinary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--show", type=int, default=0, help="print this many patterns with an example text")
    ap.add_argument("--cover", action="store_true", help="pick trigger words that would reach every pattern")
    ap.add_argument("--eval", nargs="+", type=Path, default=[], help="labelled JSONL files (implies --cover)")
    ap.add_argument("--rules-only", action="store_true", help="evaluate without the statistical second opinion")
    args = ap.parse_args(argv)
    lexicon = screen.load_lexicon()
    total = unreached = 0
    rules: set[str] = set()
    for rule in lexicon.rules:
        for number, pattern in enumerate(rule.patterns, 1):
            total += 1
            examples = untriggered(pattern.pattern, rule.triggers, limit=1)
            if examples:
                unreached += 1
                rules.add(rule.id)
                if unreached <= args.show:
                    print(f"  {rule.id} pattern {number}: {examples[0]!r}")
    print(f"{unreached} of {total} patterns, in {len(rules)} of {len(lexicon.rules)} rules, can match a text "
          f"holding none of their rule's triggers")
    if not (args.cover or args.eval):
        return 0
    added, uncovered = cover(lexicon, training_frequency())
    print(f"cover: {sum(map(len, added.values()))} trigger words added to {len(added)} rules; "
          f"{uncovered} patterns left (their example texts hold no fixed word)")
    if not args.eval:
        return 0
    model = None if args.rules_only else score.load_model()
    with tempfile.TemporaryDirectory() as tmp:
        covered = with_triggers(added, Path(tmp))
        for name, lex in (("as built", lexicon), ("with the cover", covered)):
            caught, risk, flagged, ordinary = evaluate(lex, model, args.eval)
            print(f"{name:15s} risk caught {caught}/{risk} ({caught / risk:.3f}), "
                  f"ordinary flagged {flagged}/{ordinary} ({flagged / ordinary:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
