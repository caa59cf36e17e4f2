"""What a spool commit costs, alone on the machine: appending to a write-ahead log that has to grow, and
overwriting one that spool.create(preallocate=True) grew beforehand (see WAL_PREALLOCATE_BYTES).

Each commit holds four 2 KB messages, as the receiver's group commit does under 10 connections.

Usage: python benchmarks/spool_commit.py [--commits 1500] [--dir DIR]   (DIR on the disk the spool will use)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from journal_relay import db, spool  # noqa: E402


def per_commit_ms(folder: Path, *, preallocate: bool, commits: int) -> float:
    engine = db.make_engine(f"sqlite:///{folder / ('pre' if preallocate else 'grow')}-spool.db", checkpoints=False)
    spool.create(engine, preallocate=preallocate)
    taken = spool.Taken(raw=b"x" * 2048, client_ids=(1,), envelope_from="a@b.example", peer="127.0.0.1",
                        helo="h", received_at=datetime.now(UTC))
    rows = [taken.row() for _ in range(4)]
    with engine.begin() as connection:  # the pool's connection is open before timing starts
        connection.execute(spool._INSERT, rows)
    started = time.perf_counter()
    for _ in range(commits):
        with engine.begin() as connection:
            connection.execute(spool._INSERT, rows)
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed / commits * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=1500)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="spool-commit-") as name:
        folder = Path(name)
        grow = per_commit_ms(folder, preallocate=False, commits=args.commits)
        pre = per_commit_ms(folder, preallocate=True, commits=args.commits)
    print(f"{args.commits} commits of 4 messages, synchronous=FULL")
    print(f"  growing write-ahead log:      {grow:.3f} ms per commit")
    print(f"  preallocated write-ahead log: {pre:.3f} ms per commit")


if __name__ == "__main__":
    main()
