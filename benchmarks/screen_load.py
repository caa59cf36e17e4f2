"""How long a fresh process waits before the screener answers: loading the lexicon, then the first entries.

Each figure comes from a new Python process (nothing cached), the median of --runs:
  load       import journal_relay.screen and load the built-in lexicon (what `journal-relay screen` and each
             of the service's processes pay at start-up);
  everyday   then screen one ~2 KB entry of ordinary journal prose;
  risk       then screen one short entry with risk language (the rules it reaches are made ready first);
  all rules  then make every rule ready (the whole cost, paid once per process, now or bit by bit).

Usage: python benchmarks/screen_load.py [--runs 3] [--engine DIR]
--engine is a checkout whose journal_relay is measured (default: this one), to set two side by side.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2])
t0 = time.perf_counter()
from journal_relay import screen as S
lex = S.load_lexicon()
t1 = time.perf_counter()
from screen_speed import everyday_entries
everyday = everyday_entries(n=1)[0]
t2 = time.perf_counter()
S.screen(everyday, lexicon=lex, model=None)
t3 = time.perf_counter()
S.screen("I can't do this anymore. I want to kill myself tonight and I have the pills.", lexicon=lex, model=None)
t4 = time.perf_counter()
for r in lex.rules:
    S._gate(r)
t5 = time.perf_counter()
print(json.dumps({"load": t1 - t0, "everyday": t3 - t2, "risk": t4 - t3, "all rules": t5 - t4}))
"""


def one_run(engine: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(engine), str(ROOT / "benchmarks")],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--engine", type=Path, default=ROOT)
    args = ap.parse_args(argv)
    runs = [one_run(args.engine.resolve()) for _ in range(args.runs)]
    print(f"engine {args.engine}: median of {args.runs} fresh processes (seconds)")
    for key in runs[0]:
        print(f"  {key:10s} {statistics.median(r[key] for r in runs):6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
