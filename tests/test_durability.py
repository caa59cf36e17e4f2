"""Never lose a message: SIGKILL `journal-relay serve` under load; every 250 must survive, none twice."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from journal_relay import db
from journal_relay.config import Settings
from tests.conftest import CLIENT_SENDER, DOMAIN, free_port, make_message, processed, register

REPO_ROOT = Path(__file__).resolve().parent.parent
SENDERS = 4
PER_SENDER_MAX = 3000  # bound on each sender's loop, whatever happens to the server
ACKED_BEFORE_KILL = 400
DEADLINE_SECONDS = 30.0


class Server:
    """`journal-relay serve` as a child process, exactly as an operator would run it."""

    def __init__(self, *, env: dict[str, str], log_path: Path, port: int, own_session: bool = False) -> None:
        self._env = env
        self._log_path = log_path
        self.port = port
        self._own_session = own_session  # its own process group, as systemd gives a service
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self._log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "journal_relay.cli", "serve"],
                cwd=REPO_ROOT, env=self._env, stdout=log_file, stderr=subprocess.STDOUT,
                start_new_session=self._own_session,
            )
        # Start-up checks the lexicon in this process while the back process builds its own (several
        # seconds each on a slow two-core machine, more when it is busy): a minute before calling it stuck.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"serve exited early; see {self._log_path}"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"serve did not listen within 60 s; see {self._log_path}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


def message_id(sender: int, number: int) -> str:
    return f"durable-{sender}-{number}@mail.test"


def body(number: int) -> str:
    # Every tenth message is flagged, so its job also writes flags and an alert: more rows to half-store.
    return "I feel suicidal tonight." if number % 10 == 0 else f"An ordinary day, number {number}."


class Load:
    """Several SMTP connections sending without pause; each outcome recorded by Message-ID."""

    def __init__(self, *, port: int, address: str) -> None:
        self._port = port
        self._address = address
        self.acked: set[str] = set()
        self.uncertain: set[str] = set()  # refused, or the connection died before an answer
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send_loop, args=(n,)) for n in range(SENDERS)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def acked_count(self) -> int:
        with self._lock:
            return len(self.acked)

    def _send_loop(self, sender: int) -> None:
        number = 0
        while number < PER_SENDER_MAX and not self._stop.is_set():
            try:
                with smtplib.SMTP("127.0.0.1", self._port, timeout=10) as client:
                    while number < PER_SENDER_MAX and not self._stop.is_set():
                        mid = message_id(sender, number)
                        raw = make_message(to=self._address, body=body(number), message_id=f"<{mid}>")
                        number += 1
                        self._record(mid, None)
                        try:
                            client.sendmail(CLIENT_SENDER, [self._address], raw)
                        except smtplib.SMTPResponseException:
                            continue  # an answer that is not 250: the sender will retry; stays uncertain
                        self._record(mid, True)
            except (OSError, smtplib.SMTPException):
                # The server is gone (killed): whatever was in flight stays uncertain.
                time.sleep(0.05)

    def _record(self, mid: str, acked: bool | None) -> None:
        with self._lock:
            if acked:
                self.uncertain.discard(mid)
                self.acked.add(mid)
            else:
                self.uncertain.add(mid)


def descendants(pid: int) -> list[int]:
    try:
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return [grandchild for child in children for grandchild in [child, *descendants(child)]]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def assert_exit(pids: list[int], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while [pid for pid in pids if alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in pids if alive(pid)], "serve's helper processes outlived it"


def practice_server(tmp_path: Path, *, own_session: bool = False) -> tuple[Server, Settings, str]:
    """A registered client and `serve` ready to start on a fresh SQLite file, rate limits lifted."""
    port = free_port()
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'journal.db'}", listen=f"127.0.0.1:{port}",
                        domain=DOMAIN, outbox_dir=tmp_path / "outbox", tick_seconds=3600)
    engine = db.make_engine(settings.database_url)
    db.create_schema(engine)
    address = register(engine, settings).address
    engine.dispose()
    env = {**os.environ, "JOURNAL_RELAY_DATABASE_URL": settings.database_url, "JOURNAL_RELAY_LISTEN": settings.listen,
           "JOURNAL_RELAY_DOMAIN": DOMAIN, "JOURNAL_RELAY_OUTBOX_DIR": str(settings.outbox_dir),
           "JOURNAL_RELAY_RATE_PER_IP_PER_MINUTE": "1000000", "JOURNAL_RELAY_RATE_PER_IP_BURST": "1000000",
           "JOURNAL_RELAY_RATE_PER_SENDER_PER_MINUTE": "1000000", "JOURNAL_RELAY_RATE_PER_SENDER_BURST": "1000000",
           "JOURNAL_RELAY_TICK_SECONDS": "3600", "JOURNAL_RELAY_LOG_LEVEL": "WARNING"}
    server = Server(env=env, log_path=tmp_path / "serve.log", port=port, own_session=own_session)
    return server, settings, address


def stored_message_ids(path: Path) -> Counter[str]:
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return Counter(row[0] for row in conn.execute("SELECT message_id FROM entry"))


@pytest.mark.slow
def test_sigkill_under_load_loses_no_acknowledged_message_and_stores_none_twice(tmp_path: Path) -> None:
    db_path = tmp_path / "journal.db"
    server, settings, address = practice_server(tmp_path)
    port = server.port

    server.start()
    load = Load(port=port, address=address)
    load.start()
    deadline = time.monotonic() + DEADLINE_SECONDS
    while load.acked_count() < ACKED_BEFORE_KILL and time.monotonic() < deadline:
        time.sleep(0.01)
    helpers = descendants(server.process.pid)  # the back process and the fork server
    assert helpers, "serve runs a back process"
    server.kill()  # mid-stream: the senders are still writing
    load.stop()
    assert_exit(helpers)  # an orphaned back process stops by itself, so it never delivers beside the next serve's
    assert len(load.acked) >= ACKED_BEFORE_KILL, f"only {len(load.acked)} acknowledged before the deadline"

    server.start()
    processed(settings)  # the new back process stores what the killed one left in the spool
    stored = stored_message_ids(db_path)
    lost = sorted(mid for mid in load.acked if stored[mid] != 1)
    assert not lost, f"{len(lost)} acknowledged message(s) not stored exactly once, e.g. {lost[:5]}"
    assert not [mid for mid, count in stored.items() if count > 1]

    # The senders' mail servers retry whatever was not acknowledged: each must now be stored, once.
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        for mid in sorted(load.uncertain):
            number = int(mid.split("@")[0].rpartition("-")[2])
            client.sendmail(CLIENT_SENDER, [address],
                            make_message(to=address, body=body(number), message_id=f"<{mid}>"))
    assert server.terminate() == 0
    stored = stored_message_ids(db_path)
    assert set(stored) == load.acked | load.uncertain
    assert set(stored.values()) == {1}


def test_sigterm_to_the_whole_service_stops_it_in_order(tmp_path: Path) -> None:
    # systemd's default KillMode sends SIGTERM to every process of the service at once: the back process
    # must still be stopped by the receiver, after the receiver has committed what it took, and finish
    # the spool rather than die with it.
    server, _settings, address = practice_server(tmp_path, own_session=True)
    server.start()
    assert server.process is not None
    try:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
            for n in range(30):
                client.sendmail(CLIENT_SENDER, [address], make_message(to=address, message_id=f"<group-{n}@mail.test>"))
        helpers = descendants(server.process.pid)
        os.killpg(server.process.pid, signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
    finally:
        if server.process.poll() is None:
            server.process.kill()
    assert_exit(helpers)
    assert sorted(stored_message_ids(tmp_path / "journal.db")) == sorted(f"group-{n}@mail.test" for n in range(30))
