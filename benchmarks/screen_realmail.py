"""How many real, ordinary emails the screener flags: the public mail samples in ../shared/mail-samples
(replies from many mail clients, bounces, mailing-list prose; no risk language), parsed as the receiver
parses them, those with at least 40 characters of the client's words kept (as tests/test_score.py does).

Usage: python benchmarks/screen_realmail.py [--free 0.95,0.98] [--names]
--free: also with the built-in model's free threshold set to each of these (the shipped one first).
--names: the file names of the flagged samples (public files; never their text).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from journal_relay import score  # noqa: E402
from journal_relay.parse import parse_message  # noqa: E402
from journal_relay.screen import load_lexicon, screen  # noqa: E402

SAMPLES = ROOT / ".." / "shared" / "mail-samples"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--free", default="", help="free thresholds to try besides the shipped one (comma-separated)")
    ap.add_argument("--names", action="store_true", help="print the flagged samples' file names")
    args = ap.parse_args(argv)
    if not SAMPLES.is_dir():
        print(f"{SAMPLES} not found")
        return 1
    lex = load_lexicon()
    texts = [(p.name, t) for p, t in ((p, parse_message(p.read_bytes()).text) for p in sorted(SAMPLES.rglob("*"))
                                      if p.is_file() and p.suffix != ".md") if len(t) >= 40]
    shipped = score.load_model()
    models = [("shipped", shipped)] + [(f"free {f}", dataclasses.replace(shipped, free_threshold=float(f)))
                                       for f in args.free.split(",") if f.strip()]
    for label, model in models:
        flagged = [name for name, t in texts if screen(t, lexicon=lex, model=model).flags]
        print(f"{label:12s} {len(flagged)} of {len(texts)} flagged ({len(flagged) / len(texts):.3f})")
        if args.names and flagged:
            print("  " + ", ".join(flagged))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
