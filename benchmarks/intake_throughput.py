"""Intake throughput: the same SMTP load against a bare aiosmtpd sink and against `journal-relay serve`.

Both servers run as child processes on loopback; this process is only the client. Prints messages/s for
each (a 250 from the relay means the message is committed, with full sync, to its intake spool), their
ratio, how long the relay's back process took to screen and store everything as entries (end to end),
and the memory of every relay process (VmRSS, VmHWM) at checkpoints.

    python benchmarks/intake_throughput.py                      # 10 connections, 5000 messages each server
    python benchmarks/intake_throughput.py --messages 100000 --only relay   # long run: is memory flat?
    python benchmarks/intake_throughput.py --only relay --set writer_max_batch=16  # any setting, for the relay
    python benchmarks/intake_throughput.py --rounds 3 --fast-bare   # also against a bare server that reads
                                                                    # addresses as fast as the relay does
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "journal.bench"
SENDER = "client@mail.bench"
BODY_LINE = "Today was long and mostly ordinary; I noticed the tiredness again in the afternoon.\r\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def message(to: str, number: int, size: int = 2048) -> bytes:
    head = (
        f"From: {SENDER}\r\nTo: {to}\r\nSubject: journal {number}\r\n"
        f"Message-ID: <bench-{number}-{time.time_ns()}@mail.bench>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    body = BODY_LINE * ((size - len(head)) // len(BODY_LINE) + 1)
    return (head + body).encode()[:size].rsplit(b"\r\n", 1)[0] + b"\r\n"


def memory_kb(pid: int) -> dict[str, int]:
    found = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0])
    return found


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants: serve runs the receiver, the back process and a fork server."""
    found = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            children = [int(c) for c in fh.read().split()]
    except OSError:
        return found
    for child in children:
        found += process_tree(child)
    return found


def tree_memory(pid: int) -> str:
    parts = []
    for each in process_tree(pid):
        try:
            mem = memory_kb(each)
            with open(f"/proc/{each}/comm") as fh:
                name = fh.read().strip()
        except OSError:
            continue
        parts.append((name, each, mem))
    total = sum(m["VmRSS"] for _, _, m in parts) / 1024
    detail = ", ".join(f"{name}[{p}] {m['VmRSS'] / 1024:.1f} (peak {m['VmHWM'] / 1024:.1f})" for name, p, m in parts)
    return f"VmRSS total {total:.1f} MB: {detail}"


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time a process has used so far, all its threads included."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def tree_cpu(pid: int) -> dict[int, tuple[float, float]]:
    found = {}
    for each in process_tree(pid):
        try:
            found[each] = cpu_seconds(each)
        except OSError:
            continue
    return found


def cpu_report(before: dict[int, tuple[float, float]], after: dict[int, tuple[float, float]], messages: int) -> str:
    """CPU per message of each process over a run (user + system): what taking mail costs, beside how
    fast it goes."""
    parts = []
    for pid, (user, system) in after.items():
        user -= before.get(pid, (0.0, 0.0))[0]
        system -= before.get(pid, (0.0, 0.0))[1]
        if user + system > 0.005:
            per = 1000 / max(messages, 1)
            parts.append(f"[{pid}] {per * (user + system):.2f} ({per * user:.2f} + {per * system:.2f})")
    return "CPU ms per message (user + system): " + ", ".join(parts)


def spool_files(folder: Path) -> str:
    """Sizes of the spool's files: its write-ahead log and that log's index are mapped into the receiver."""
    sizes = []
    for suffix in ("", "-wal", "-shm"):
        path = folder / f"journal-spool.db{suffix}"
        if path.exists():
            sizes.append(f"{path.name} {path.stat().st_size / 1e6:.1f} MB")
    return "spool files: " + ", ".join(sizes)


def spool_size(folder: Path) -> int:
    """Messages waiting in every spool file (journal-spool.db, journal-spool-2.db, ...)."""
    total = 0
    for path in folder.glob("journal-spool*.db"):
        with sqlite3.connect(path) as conn:
            total += int(conn.execute("SELECT count(*) FROM inbound").fetchone()[0])
    return total


def entry_count(database: Path) -> int:
    with sqlite3.connect(database) as conn:
        return int(conn.execute("SELECT count(*) FROM entry").fetchone()[0])


# --- the client -----------------------------------------------------------------------------


@dataclass
class Run:
    target: int
    to: str
    next_number: int = 0
    ok: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    checkpoints: list[int] = field(default_factory=list)
    on_checkpoint: object = None

    def take(self) -> int | None:
        if self.next_number >= self.target:
            return None
        self.next_number += 1
        return self.next_number


async def _reply(reader: asyncio.StreamReader) -> str:
    while True:
        line = (await reader.readline()).decode()
        if not line:
            raise ConnectionError("server closed the connection")
        if line[3:4] != "-":
            return line.strip()


async def _connection(host: str, port: int, run: Run, ready: asyncio.Event, opened: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    await _reply(reader)
    writer.write(b"EHLO bench.client\r\n")
    await _reply(reader)
    opened.append(1)
    await ready.wait()
    try:
        while (number := run.take()) is not None:
            for command in (f"MAIL FROM:<{SENDER}>\r\n", f"RCPT TO:<{run.to}>\r\n", "DATA\r\n"):
                writer.write(command.encode())
                reply = await _reply(reader)
                if not reply.startswith(("250", "354")):
                    break
            else:
                writer.write(message(run.to, number) + b".\r\n")
                reply = await _reply(reader)
            if reply.startswith("250"):
                run.ok += 1
                if run.checkpoints and run.ok >= run.checkpoints[0]:
                    run.checkpoints.pop(0)
                    run.on_checkpoint(run.ok)  # type: ignore[operator]
            else:
                run.refused[reply[:9]] = run.refused.get(reply[:9], 0) + 1
                if not reply.startswith("250"):
                    writer.write(b"RSET\r\n")
                    await _reply(reader)
        writer.write(b"QUIT\r\n")
        await _reply(reader)
    finally:
        writer.close()


async def drive(host: str, port: int, *, to: str, connections: int, messages: int,
                checkpoints: list[int] | None = None, on_checkpoint: object = None) -> tuple[float, Run]:
    run = Run(target=messages, to=to, checkpoints=list(checkpoints or []), on_checkpoint=on_checkpoint)
    ready = asyncio.Event()
    opened: list[int] = []
    tasks = [asyncio.create_task(_connection(host, port, run, ready, opened)) for _ in range(connections)]
    while len(opened) < connections:
        await asyncio.sleep(0.01)
    started = time.perf_counter()
    ready.set()
    await asyncio.gather(*tasks)
    return time.perf_counter() - started, run


# --- the servers ----------------------------------------------------------------------------


class Sink:
    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        return "250 2.0.0 OK"


def bare_server(port: int, *, plain_addresses: bool = False) -> None:
    """A bare aiosmtpd server with the relay's SMTP options: accepts and discards. `plain_addresses`: it
    also reads plain MAIL and RCPT addresses the relay's fast way (journal_relay.receive.plain_address)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP

    from journal_relay.receive import plain_address

    class FastSMTP(SMTP):
        def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
            return plain_address(arg) or super()._getaddr(arg)

    class SinkController(Controller):
        def factory(self) -> SMTP:
            return (FastSMTP if plain_addresses else SMTP)(
                self.handler, data_size_limit=10 * 1024 * 1024, enable_SMTPUTF8=True, decode_data=False,
                hostname=DOMAIN, ident="bench-sink")

    controller = SinkController(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


def wait_listening(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not listen within 30 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()


def relay_env(folder: Path, port: int, log_level: str, extra: list[str] = ()) -> dict[str, str]:  # type: ignore[assignment]
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNAL_RELAY_")}
    env.update({
        "JOURNAL_RELAY_DATABASE_URL": f"sqlite:///{folder / 'journal.db'}",
        "JOURNAL_RELAY_LISTEN": f"127.0.0.1:{port}",
        "JOURNAL_RELAY_DOMAIN": DOMAIN,
        "JOURNAL_RELAY_OUTBOX_DIR": str(folder / "outbox"),
        "JOURNAL_RELAY_TICK_SECONDS": "3600",
        # A benchmark is one sender flooding on purpose: lift the per-IP and per-sender rate limits.
        "JOURNAL_RELAY_RATE_PER_IP_PER_MINUTE": "100000000",
        "JOURNAL_RELAY_RATE_PER_IP_BURST": "100000000",
        "JOURNAL_RELAY_RATE_PER_SENDER_PER_MINUTE": "100000000",
        "JOURNAL_RELAY_RATE_PER_SENDER_BURST": "100000000",
        "JOURNAL_RELAY_LOG_LEVEL": log_level,
    })
    for setting in extra:
        name, _, value = setting.partition("=")
        env[f"JOURNAL_RELAY_{name.strip().upper()}"] = value
    return env


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "journal_relay.cli", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def run_bare(args: argparse.Namespace, *, plain_addresses: bool = False) -> float:
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--bare-server", str(port)]
                               + (["--plain-addresses"] if plain_addresses else []), cwd=REPO_ROOT)
    try:
        wait_listening(process, port)
        cpu_before = tree_cpu(process.pid)
        elapsed, run = asyncio.run(drive("127.0.0.1", port, to=f"anyone@{DOMAIN}", connections=args.connections,
                                         messages=args.messages))
        cpu_after = tree_cpu(process.pid)
    finally:
        stop(process)
    rate = run.ok / elapsed
    name = "bare aiosmtpd, relay's address reading" if plain_addresses else "bare aiosmtpd"
    print(f"{name}: {run.ok} messages in {elapsed:.1f} s = {rate:.0f} messages/s"
          + (f"; refused {run.refused}" if run.refused else ""))
    print(f"  {cpu_report(cpu_before, cpu_after, run.ok)}")
    return rate


def run_relay(args: argparse.Namespace) -> float:
    with tempfile.TemporaryDirectory(prefix="journal-relay-bench-") as folder:
        port = free_port()
        env = relay_env(Path(folder), port, args.log_level, args.set)
        cli(env, "therapist", "add", "--name", "Dr Bench", "--email", "dr@practice.bench")
        address = cli(env, "client", "add", "--therapist", "dr@practice.bench", "--name", "Bench",
                      "--sender", SENDER)
        with open(Path(folder) / "serve.log", "wb") as log_file:
            process = subprocess.Popen([sys.executable, "-m", "journal_relay.cli", "serve"], cwd=REPO_ROOT, env=env,
                                       stdout=log_file, stderr=subprocess.STDOUT)
        try:
            wait_listening(process, port)
            time.sleep(1)  # the back process starts beside the receiver
            print(f"relay pid {process.pid}; memory at start: {tree_memory(process.pid)}")
            marks = [args.messages * k // 5 for k in range(1, 6)]

            def checkpoint(done: int) -> None:
                print(f"  after {done:>7} messages: {tree_memory(process.pid)}; {spool_files(Path(folder))}",
                      flush=True)

            cpu_before = tree_cpu(process.pid)
            started = time.perf_counter()
            elapsed, run = asyncio.run(drive("127.0.0.1", port, to=address, connections=args.connections,
                                             messages=args.messages, checkpoints=marks, on_checkpoint=checkpoint))
            cpu_answered = tree_cpu(process.pid)
            database = Path(folder) / "journal.db"
            backlog = spool_size(Path(folder))
            while spool_size(Path(folder)):
                time.sleep(0.05)
            processed = time.perf_counter() - started
            print(f"  when the last message was answered: {tree_memory(process.pid)}")
            print(f"  until the last 250: {cpu_report(cpu_before, cpu_answered, run.ok)}")
            print(f"  until all were entries: {cpu_report(cpu_before, tree_cpu(process.pid), run.ok)}")
        finally:
            stop(process)
        rate = run.ok / elapsed
        stored = entry_count(database)
        if stored != run.ok:
            log_lines = (Path(folder) / "serve.log").read_text(errors="replace").splitlines()
            print(f"!! {run.ok - stored} messages answered 250 are not entries; the end of serve.log:")
            print("\n".join(log_lines[-30:]))
        print(f"journal-relay serve: {run.ok} messages answered 250 (each committed to the spool) in {elapsed:.1f} s"
              f" = {rate:.0f} messages/s" + (f"; refused {run.refused}" if run.refused else ""))
        print(f"  spool backlog when the last 250 went out: {backlog}; all screened and stored as entries "
              f"{processed:.1f} s after the first message = {stored / processed:.0f} entries/s end to end "
              f"({stored} entries for {run.ok} answered 250)")
        return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=10, help="concurrent SMTP connections (default 10)")
    parser.add_argument("--messages", type=int, default=5000, help="messages per server (default 5000)")
    parser.add_argument("--only", choices=("bare", "relay", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=1,
                        help="alternate bare and relay this many times and print the median ratio (a shared "
                        "machine's noise hits both alike)")
    parser.add_argument("--log-level", default="INFO", help="the relay's JOURNAL_RELAY_LOG_LEVEL (default INFO)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a relay setting for this run, e.g. writer_max_batch=16 (repeatable)")
    parser.add_argument("--fast-bare", action="store_true",
                        help="also run a bare server that reads plain addresses the relay's way (its aiosmtpd "
                        "subclass skips the full RFC 5322 parser), and print the ratio against it too")
    parser.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--plain-addresses", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        bare_server(args.bare_server, plain_addresses=args.plain_addresses)
        return
    print(f"{args.connections} connections, {args.messages} messages of 2 KB to one client address"
          + (f"; relay settings {', '.join(args.set)}" if args.set else ""))
    ratios: list[float] = []
    fast_ratios: list[float] = []
    for round_number in range(1, args.rounds + 1):
        if args.rounds > 1:
            print(f"-- round {round_number} of {args.rounds}")
        bare = run_bare(args) if args.only in ("bare", "both") else None
        fast = run_bare(args, plain_addresses=True) if args.fast_bare and args.only == "both" else None
        relay = run_relay(args) if args.only in ("relay", "both") else None
        if bare and relay:
            ratios.append(relay / bare)
            print(f"ratio relay/bare: {relay / bare:.2f} (target >= 0.6)")
        if fast and relay:
            fast_ratios.append(relay / fast)
            print(f"ratio relay/bare with the relay's address reading: {relay / fast:.2f}")
    for name, found in (("", ratios), (" against the bare server with the relay's address reading", fast_ratios)):
        if len(found) > 1:
            print(f"median ratio{name} over {len(found)} rounds: {statistics.median(found):.2f} "
                  f"(each: {', '.join(f'{r:.2f}' for r in found)}" + ("; target >= 0.6)" if not name else ")"))


if __name__ == "__main__":
    main()
