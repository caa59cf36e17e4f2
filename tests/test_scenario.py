"""The whole relay as a user runs it: CLI set-up, `journal-relay serve` as a process, real SMTP in and out."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import Catcher, free_port, make_message

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
THERAPIST = "ada@practice.test"
SENDER = "sam@mail.test"
TICK = 3

HTML_REPLY = """<html><body>
<div dir="ltr">I keep coming back to the argument with my brother.<br>It sits in my chest all day.</div>
<br><div class="gmail_quote">
<div dir="ltr" class="gmail_attr">On Mon, 30 Nov 2026 at 10:00, Ada &lt;ada@practice.test&gt; wrote:<br></div>
<blockquote class="gmail_quote" style="margin:0 0 0 .8ex;border-left:1px #ccc solid;padding-left:1ex">
Have you had thoughts of harming yourself since we last met?</blockquote></div>
</body></html>"""


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "journal_relay.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def start_serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "journal_relay.cli", "serve"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("serve did not start listening")


def stop_serve(proc: subprocess.Popen[bytes], how: signal.Signals = signal.SIGTERM) -> None:
    proc.send_signal(how)
    assert proc.wait(timeout=30) == 0


def deliver(port: int, raw: bytes, *, to: str, mail_from: str = SENDER) -> int:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("mail.test")
        client.mail(mail_from)
        code, _ = client.rcpt(to)
        if code >= 300:
            return code
        return client.data(raw)[0]


def test_mail_in_screened_stored_alerted_digested_mail_out(tmp_path: Path, catcher: Catcher) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNAL_RELAY_")} | {
        "JOURNAL_RELAY_DATABASE_URL": f"sqlite:///{tmp_path / 'journal.db'}",
        "JOURNAL_RELAY_LISTEN": f"127.0.0.1:{port}",
        "JOURNAL_RELAY_DOMAIN": "journal.test",
        "JOURNAL_RELAY_RELAY": f"smtp://127.0.0.1:{catcher.port}",
        "JOURNAL_RELAY_FROM": "relay@journal.test",
        "JOURNAL_RELAY_TICK_SECONDS": str(TICK),
    }
    cli(env, "therapist", "add", "--name", "Dr Ada", "--email", THERAPIST, "--timezone", "Europe/London",
        "--digest-lead", "2h")
    address = cli(env, "client", "add", "--therapist", THERAPIST, "--name", "Sam", "--sender", SENDER)

    serve = start_serve(env, port)
    try:
        assert deliver(port, make_message(to=address, sender=SENDER, body="A quiet walk, and I felt a bit lighter."),
                       to=address) == 250
        assert deliver(port, make_message(to=address, sender=SENDER, html=HTML_REPLY, subject="Re: our session"),
                       to=address) == 250
        assert deliver(port, make_message(to=address, sender=SENDER, body="Tonight I want to kill myself."),
                       to=address) == 250
        assert deliver(port, make_message(to="nobody@journal.test"), to="nobody@journal.test") == 550
        stranger = make_message(to=address, sender="stranger@evil.test", body="Written by somebody else.")
        deliver(port, stranger, to=address, mail_from="stranger@evil.test")

        assert len(catcher.wait_for("alert", timeout=20)) == 1
        assert len(catcher.wait_for("receipt", count=2, timeout=20)) == 2
        # The session is booked now that the entries are stored: its digest is due at once (2 h lead).
        soon = datetime.now(ZoneInfo("Europe/London")) + timedelta(minutes=1)
        cli(env, "session", "add", "--client", address, "--at", soon.strftime("%Y-%m-%dT%H:%M:%S"))
        (digest,) = catcher.wait_for("digest", timeout=TICK * 5)
        stop_serve(serve)
    finally:
        if serve.poll() is None:
            serve.kill()

    assert digest.rcpt_tos == [THERAPIST]
    text = digest.message.get_body(("plain",)).get_content()
    assert "3 new entries" in text
    assert "A quiet walk, and I felt a bit lighter." in text
    assert "I keep coming back to the argument with my brother." in text
    assert "Tonight I want to kill myself." in text
    assert "harming yourself" not in text and "wrote:" not in text
    assert "Written by somebody else." not in text
    assert "[FLAGGED: self/" in text
    assert {r.rcpt_tos[0] for r in catcher.of_kind("receipt")} == {SENDER}

    serve = start_serve(env, port)
    try:
        time.sleep(TICK * 2.5)
        stop_serve(serve, signal.SIGINT)  # Ctrl-C: a clean stop too
    finally:
        if serve.poll() is None:
            serve.kill()
    assert len(catcher.of_kind("digest")) == 1
    assert len(catcher.of_kind("alert")) == 1 and len(catcher.of_kind("receipt")) == 2
