#!/usr/bin/env python3
"""Quick start: `python3 quickstart.py serve` runs the service, `python3 quickstart.py test` runs every test.

Each first makes a virtual environment in .venv and installs journal_relay into it (again only when
pyproject.toml changes), so a fresh machine with Python 3.11+ and pip needs nothing else.
Anything after the command is passed on: `python3 quickstart.py test -k digest`,
`python3 quickstart.py client list`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".journal-relay-installed"


def ensure_installed() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - quickstart may be run by an older python3
        sys.exit(f"journal-relay needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if PYTHON.exists() and STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not PYTHON.exists():
        print("quickstart: creating .venv", file=sys.stderr)
        venv.create(VENV, with_pip=True)
    print("quickstart: installing journal-relay and its test tools into .venv", file=sys.stderr)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[test]"], check=True)
    STAMP.write_text(wanted)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    ensure_installed()
    command, rest = argv[0], argv[1:]
    if command == "test":
        os.chdir(ROOT)
        args = [str(PYTHON), "-m", "pytest", *rest]
    else:
        # Anything else is a journal-relay command: serve, therapist add, client list, ...
        args = [str(PYTHON), "-m", "journal_relay.cli", command, *rest]
    # Become the command, so Ctrl-C and SIGTERM reach it directly and it can shut down cleanly.
    os.execv(args[0], args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
