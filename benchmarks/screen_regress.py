"""Check that a change to the screening engine changes no finding: record, then compare.

The corpus is built the same way every time (fixed seeds), about 8,000 texts: the labelled and test
texts, the lexicon's examples, counter-examples and safety examples, the string literals of
tests/test_screen.py, the speed benchmark's entries, concatenations of all of these, and perturbed copies
(case, homoglyphs, leetspeak, separators, tripled letters, spelled-out words, quoted lines, Unicode junk).
Each text is screened with the built-in lexicon and a ten times larger one (every text), and with two
practice files (every third text); the full result of screen() is written, one JSON line per text.

Usage:
    python benchmarks/screen_regress.py record before.jsonl [--engine DIR]   # on the old engine
    python benchmarks/screen_regress.py compare before.jsonl [--engine DIR]  # on the new one

--engine is a checkout whose journal_relay is screened (default: this one).  compare exits 1 and prints
the line numbers (not the text) of any difference.  The output holds journal-like test text: keep it on
your own machine.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import random
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import screen_speed  # noqa: E402  (its entries() and synthetic_practice())
import screen_together  # noqa: E402  (use_engine)

HOMOGLYPHS = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "i": "і", "s": "ѕ", "k": "к"}
LEET = {"i": "1", "e": "3", "a": "@", "s": "$", "o": "0", "l": "|", "t": "7"}
SEPARATORS = [" ", ".", "-", "_", "*", "\u200b", "\u00ad"]
FRAGMENTS = ["kill", "myself", "not", "k.i.l.l", "s u i c", "ide", "\u200b", "die", ">", "\n", "'", "n't", "I", "he",
             "said", "\"", "1", "$", "*", "!!!", "years ago", "--", "my self", "my", "me", "self", "won't", "let",
             "phone", "keys", "if", "i", "leave", "he'll", "take", "the", "kids", "end", "it", "2", "tonight", "tmrw",
             "way", "out", "keep", "going", ",", ".", "k1ll", "rope", "better", "off", "without", "gone", "how",
             "many", "would", "?", "you asked", "yes", "no", "pills", "bridge", "sewer", "slide", "kms", "unalive",
             "wrote:", "On Monday", "-----Original Message-----", "\u2014", "(", ")", ";", ":", "ca", "sha", "wo",
             "d", "ll", "ve", "re", "s", "t", "m"]
PRACTICES = {
    "bus": '[[rule]]\nid = "self.practice_bus"\ncategory = "self"\nseverity = "high"\nkind = "passive"\n'
           'triggers = ["bus", "last bus"]\npatterns = [\'\\bcatch the (?:last )?bus for good\\b\']\n',
    "reweight": 'disable = ["self.preparation"]\n[severity]\n"danger.fear" = "urgent"\n'
                '[normalise.slang]\n"sewer slide" = "suicide"\n"tmrw" = "tomorrow"\n',
}


def corpus() -> list[str]:
    lexicon = tomllib.loads((ROOT / "journal_relay" / "lexicon.toml").read_text(encoding="utf-8"))
    own = [t for r in lexicon.get("rule", []) for t in r.get("examples", []) + r.get("counter_examples", [])]
    own += [s["text"] for s in lexicon.get("safety", [])]
    labelled: list[str] = []
    files = sorted((ROOT / "tests" / "data" / "screening").glob("*.jsonl"))
    files += [p for p in [ROOT / ".." / "shared" / "screening" / "dev.jsonl"] if p.exists()]
    for f in files:
        labelled += [json.loads(line)["text"] for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    tree = ast.parse((ROOT / "tests" / "test_screen.py").read_text(encoding="utf-8"))
    literals = [n.value for n in ast.walk(tree)
                if isinstance(n, ast.Constant) and isinstance(n.value, str) and 2 < len(n.value) < 400]
    texts = own + labelled + literals
    for seed in (7, 8, 9):
        for share in (0.5, 0.1, 0.9):
            texts += screen_speed.entries(n=200 if seed == 7 else 60, seed=seed, labelled_share=share)
    pool = own + labelled + literals
    rng = random.Random(1234)
    texts += [" ".join(rng.choice(pool) for _ in range(rng.randint(2, 12))) for _ in range(600)]

    def perturb(t: str) -> str:
        out = []
        for ch in t:
            r = rng.random()
            if r < 0.03 and ch.lower() in HOMOGLYPHS:
                out.append(HOMOGLYPHS[ch.lower()])
            elif r < 0.06 and ch.lower() in LEET:
                out.append(LEET[ch.lower()])
            elif r < 0.08 and ch.isalpha():
                out.append(ch * 3)
            elif r < 0.10 and ch.isalpha():
                out.append(ch + rng.choice(SEPARATORS))
            elif r < 0.12:
                out.append(ch.upper())
            elif r < 0.125 and ch == " ":
                out.append("\n")
            elif r < 0.13 and ch == " ":
                out.append("\n> ")
            elif r < 0.135 and ch == "'":
                out.append("\u2019")
            elif r < 0.14 and ch == "e":
                out.append("é")
            else:
                out.append(ch)
        return "".join(out)

    texts += [perturb(rng.choice(pool)) for _ in range(1500)]
    texts += [perturb(" ".join(rng.choice(pool) for _ in range(rng.randint(2, 8)))) for _ in range(300)]
    for _ in range(300):  # one word spelled out
        words = rng.choice(pool).split()
        if words:
            k = rng.randrange(len(words))
            words[k] = rng.choice([" ", ".", "-", " . "]).join(words[k])
        texts.append(" ".join(words))
    texts += [" ".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 30))) for _ in range(3000)]
    for _ in range(300):  # Unicode junk inside a text
        t = rng.choice(pool)
        junk = "".join(chr(rng.randint(0x20, 0x2FFF)) for _ in range(rng.randint(0, 20)))
        p = rng.randint(0, len(t))
        texts.append(t[:p] + junk + t[p:])
    return texts + ["", " ", "\n\n", "a", "I", ".", "...", "> ", "!!!"]


def results(engine: Path) -> list[str]:
    # screen_speed imported this checkout's engine: forget it, then import the one asked for.
    screen_together.use_engine(engine)
    screen_mod: Any = importlib.import_module("journal_relay.screen")
    texts = corpus()
    lexicons = {"builtin": screen_mod.load_lexicon()}
    bodies = dict(PRACTICES, big=screen_speed.synthetic_practice(9 * len(lexicons["builtin"].rules)))
    with tempfile.TemporaryDirectory() as tmp:
        for name, body in bodies.items():
            path = Path(tmp) / f"{name}.toml"
            path.write_text(body, encoding="utf-8")
            lexicons[name] = screen_mod.load_lexicon(path)
    out = []
    for name, lex in lexicons.items():
        for i, t in enumerate(texts if name in ("builtin", "big") else texts[::3]):
            found = screen_mod.screening_to_json(screen_mod.screen(t, lexicon=lex))
            out.append(json.dumps({"lexicon": name, "i": i, **found}, ensure_ascii=False))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=("record", "compare"))
    ap.add_argument("file", type=Path)
    ap.add_argument("--engine", type=Path, default=ROOT, help="checkout whose journal_relay is screened")
    args = ap.parse_args(argv)
    lines = results(args.engine.resolve())
    if args.action == "record":
        args.file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"recorded {len(lines)} results")
        return 0
    before = args.file.read_text(encoding="utf-8").splitlines()
    differ = [k + 1 for k, (a, b) in enumerate(zip(before, lines, strict=False)) if a != b]
    if len(before) != len(lines):
        print(f"{len(before)} results recorded, {len(lines)} now")
    print(f"{len(lines)} results, {len(differ)} different" + (f": lines {differ[:20]}" if differ else ""))
    return 1 if differ or len(before) != len(lines) else 0


if __name__ == "__main__":
    raise SystemExit(main())
