"""The receiver's limits over real SMTP: size, lines, recipients, timeouts, connections, rates, and crashes.

The answers aiosmtpd gives for limits it enforces are reworded by receive.py; these tests also pin
aiosmtpd's own strings, since a changed string would show here as its raw text.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from journal_relay import db, receive, service, throttle
from journal_relay.config import Settings
from journal_relay.models import Entry
from tests.conftest import CLIENT_SENDER, make_message, processed

Serve = Callable[..., tuple[Settings, service.Running]]


@pytest.fixture
def serve(settings: Settings, engine: object) -> Iterator[Serve]:
    """Start the whole service with some settings changed; stopped at the end of the test."""
    started: list[service.Running] = []

    def start(**changes: object) -> tuple[Settings, service.Running]:
        custom = Settings(**{**settings.model_dump(), **changes})
        run = service.start(custom)
        started.append(run)
        wait_until(lambda: run.controller.open_connections == 0)  # the controller's own start-up probe
        return custom, run

    yield start
    for run in started:
        run.stop()


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def connect(settings: Settings, source: str = "127.0.0.1") -> smtplib.SMTP:
    client = smtplib.SMTP(settings.listen_host, settings.listen_port, timeout=10, source_address=(source, 0))
    client.ehlo("sender.test")
    return client


def entries(engine):  # type: ignore[no-untyped-def]
    processed(Settings(database_url=str(engine.url)))
    with db.reading(engine) as session:
        return session.exec(select(Entry)).all()


def raw_with_line(to: str, length: int) -> bytes:
    head = f"From: {CLIENT_SENDER}\r\nTo: {to}\r\nSubject: long\r\nMessage-ID: <long-{length}@mail.test>\r\n\r\n"
    return head.encode() + b"a" * length + b"\r\n"


# --- size ---------------------------------------------------------------------------------------


def test_size_is_advertised_in_ehlo(serve):
    custom, _ = serve(max_message_bytes=4096)
    with connect(custom) as client:
        assert client.esmtp_features["size"] == "4096"
        assert "chunking" not in client.esmtp_features  # no BDAT offered


def test_declared_size_over_limit_is_refused_at_mail_in_our_words(serve):
    custom, _ = serve(max_message_bytes=4096)
    with connect(custom) as client:
        code, text = client.mail(CLIENT_SENDER, ["SIZE=5000"])
    assert code == 552 and text.decode().startswith("5.3.4 ")
    assert "4096 bytes" in text.decode() and "Error" not in text.decode()


def test_oversized_data_is_refused_stores_nothing_and_the_session_goes_on(serve, engine, practice):
    custom, _ = serve(max_message_bytes=4096)
    with connect(custom) as client:
        client.mail(CLIENT_SENDER)
        client.rcpt(practice.address)
        code, text = client.data(make_message(to=practice.address, body="x" * 60 + "\n" * 100 + "y" * 5000))
        assert code == 552 and text.decode().startswith("5.3.4 ") and "Error" not in text.decode()
        client.rset()
        assert client.sendmail(CLIENT_SENDER, [practice.address], make_message(to=practice.address)) == {}
    assert len(entries(engine)) == 1


# --- lines and commands -------------------------------------------------------------------------


def test_line_over_the_limit_is_refused_with_500_5_5_2(serve, engine, practice):
    custom, _ = serve(max_line_bytes=1001)
    with connect(custom) as client:
        client.mail(CLIENT_SENDER)
        client.rcpt(practice.address)
        code, text = client.data(raw_with_line(practice.address, 3000))
        assert code == 500 and text.decode().startswith("5.5.2 Line too long")
        client.rset()
        assert client.noop()[0] == 250
    assert entries(engine) == []


def test_default_line_limit_accepts_an_unwrapped_paragraph(running, settings, engine, practice):
    with connect(settings) as client:
        client.mail(CLIENT_SENDER)
        client.rcpt(practice.address)
        assert client.data(raw_with_line(practice.address, 3000))[0] == 250
    assert len(entries(engine)) == 1


@pytest.mark.parametrize("length", [600, 20_000])  # over aiosmtpd's command limit; over the stream limit
def test_overlong_command_gets_500_5_5_2_and_the_session_goes_on(running, settings, length):
    with connect(settings) as client:
        code, text = client.docmd("MAIL", "FROM:<" + "a" * length + "@mail.test>")
        assert code == 500 and text.decode() == "5.5.2 Command line too long."
        assert client.noop()[0] == 250


def test_bdat_is_refused_without_crashing_the_session(running, settings):
    with connect(settings) as client:
        client.mail(CLIENT_SENDER)
        client.send(b"BDAT 12 LAST\r\nhello there\r\n")
        code, _ = client.getreply()
        assert 500 <= code < 600
        client.getreply()  # the chunk, read as a (bad) command
        client.rset()
        assert client.noop()[0] == 250


def test_too_many_recipients_get_452_4_5_3(serve, engine, practice):
    custom, _ = serve(max_recipients=1)
    with connect(custom) as client:
        client.mail(CLIENT_SENDER)
        assert client.rcpt(practice.address)[0] == 250
        code, text = client.rcpt(practice.address)
    assert code == 452 and text.decode().startswith("4.5.3")


# --- timeouts -----------------------------------------------------------------------------------


def closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return True


def test_idle_connection_is_closed_after_the_command_timeout(serve):
    custom, run = serve(command_timeout_seconds=0.3)
    with socket.create_connection((custom.listen_host, custom.listen_port)) as sock:
        assert sock.recv(1024).startswith(b"220")
        assert closed_by_server(sock, within=5)
    wait_until(lambda: run.controller.open_connections == 0)


def test_data_gets_its_own_longer_timeout(serve, engine, practice):
    custom, _ = serve(command_timeout_seconds=0.3, data_timeout_seconds=10)
    with connect(custom) as client:
        client.mail(CLIENT_SENDER)
        client.rcpt(practice.address)
        client.putcmd("DATA")
        assert client.getreply()[0] == 354
        client.send(make_message(to=practice.address).replace(b"\n", b"\r\n"))
        time.sleep(1.0)  # slower than the command timeout, well within the data timeout
        client.send(b".\r\n")
        assert client.getreply()[0] == 250
    assert len(entries(engine)) == 1


def test_stalled_data_is_cut_off_and_nothing_is_stored(serve, engine, practice):
    custom, run = serve(data_timeout_seconds=0.3)
    with connect(custom) as client:
        client.mail(CLIENT_SENDER)
        client.rcpt(practice.address)
        client.putcmd("DATA")
        client.getreply()
        client.send(b"Subject: half\r\n\r\nHalf a thought")
        assert closed_by_server(client.sock, within=5)
    wait_until(lambda: run.controller.open_connections == 0)
    assert entries(engine) == []


# --- dropped connections and crashes ------------------------------------------------------------


def test_connection_dropped_mid_data_stores_nothing_and_frees_its_slot(running, settings, engine, practice):
    client = connect(settings)
    client.mail(CLIENT_SENDER)
    client.rcpt(practice.address)
    client.putcmd("DATA")
    client.getreply()
    client.send(b"From: client@mail.test\r\nSubject: half\r\n\r\nThe first half of what I meant to say")
    client.close()  # drops the connection without QUIT (closing only .sock would leave smtplib's file open)
    wait_until(lambda: running.controller.open_connections == 0)
    assert entries(engine) == []
    with connect(settings) as again:
        assert again.sendmail(CLIENT_SENDER, [practice.address], make_message(to=practice.address)) == {}
    assert len(entries(engine)) == 1


def test_error_in_a_hook_answers_451_without_leaking_it(running, settings, monkeypatch):
    def broken(self, key, *, now):  # type: ignore[no-untyped-def]
        raise RuntimeError("I wrote about my sister")

    monkeypatch.setattr(throttle.TokenBuckets, "take", broken)
    with connect(settings) as client:
        code, text = client.mail(CLIENT_SENDER)
        assert client.noop()[0] == 250
    assert (code, text.decode()) == (451, receive.ERR_451_STORAGE[4:])


def test_error_during_data_answers_451_without_leaking_it(settings, engine, practice, monkeypatch):
    async def broken(self, server, session, envelope):  # type: ignore[no-untyped-def]
        raise ValueError("I wrote about my sister")

    monkeypatch.setattr(receive.Handler, "handle_DATA", broken)
    run = service.start(settings)
    try:
        with connect(settings) as client:
            client.mail(CLIENT_SENDER)
            client.rcpt(practice.address)
            code, text = client.data(make_message(to=practice.address))
    finally:
        run.stop()
    assert (code, text.decode()) == (451, receive.ERR_451_STORAGE[4:])


# --- connections and rates ----------------------------------------------------------------------


def greeting(settings: Settings, source: str) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection((settings.listen_host, settings.listen_port), timeout=5,
                                    source_address=(source, 0))
    return sock, sock.recv(1024)


def test_connections_over_the_per_ip_and_total_limits_get_421(serve):
    custom, run = serve(max_connections=3, max_connections_per_ip=2)
    socks = []
    try:
        for source in ("127.0.0.1", "127.0.0.1"):
            sock, hello = greeting(custom, source)
            socks.append(sock)
            assert hello.startswith(b"220")
        sock, hello = greeting(custom, "127.0.0.1")
        socks.append(sock)
        assert hello.startswith(b"421 4.7.0 ")
        sock, hello = greeting(custom, "127.0.0.2")  # another address still gets in
        socks.append(sock)
        assert hello.startswith(b"220")
        sock, hello = greeting(custom, "127.0.0.3")  # but not past the total
        socks.append(sock)
        assert hello.startswith(b"421 4.7.0 ")
    finally:
        for sock in socks:
            sock.close()
    wait_until(lambda: run.controller.open_connections == 0)


def test_flood_from_one_ip_gets_451_4_7_1_while_another_ip_is_served(serve, engine, practice):
    custom, _ = serve(rate_per_ip_per_minute=1, rate_per_ip_burst=2)
    with connect(custom, "127.0.0.1") as flood:
        for _ in range(2):
            assert flood.mail(CLIENT_SENDER)[0] == 250
            flood.rset()
        code, text = flood.mail(CLIENT_SENDER)
    assert code == 451 and text.decode() == receive.ERR_451_RATE_IP[4:]
    with connect(custom, "127.0.0.2") as other:
        assert other.sendmail(CLIENT_SENDER, [practice.address], make_message(to=practice.address)) == {}
    assert len(entries(engine)) == 1


def test_flood_from_one_sender_gets_451_4_7_1_while_another_sender_is_served(serve):
    custom, _ = serve(rate_per_sender_per_minute=1, rate_per_sender_burst=1)
    with connect(custom, "127.0.0.1") as first:
        assert first.mail("Flood@mail.test")[0] == 250
    with connect(custom, "127.0.0.2") as second:  # another address, same sender (any case): still limited
        code, text = second.mail("flood@mail.test")
        assert code == 451 and text.decode() == receive.ERR_451_RATE_SENDER[4:]
        second.rset()
        assert second.mail(CLIENT_SENDER)[0] == 250


@pytest.mark.parametrize(
    ("peer", "key"),
    [
        (("192.0.2.7", 25), "192.0.2.7"),
        (("2001:db8:1:2:aaaa::1", 25, 0, 0), "2001:db8:1:2::/64"),
        (("::ffff:192.0.2.7", 25, 0, 0), "192.0.2.7"),
        (None, "None"),
    ],
)
def test_limits_count_per_ip_and_per_ipv6_64(peer, key):
    assert receive.source_key(peer) == key


def test_no_journal_text_or_address_reaches_the_logs_even_at_debug(settings, engine, practice, caplog):
    caplog.set_level(logging.DEBUG)
    run = service.start(settings)
    try:
        with connect(settings) as client:
            body = "My secret worry about the appointment."
            client.sendmail(CLIENT_SENDER, [practice.address], make_message(to=practice.address, body=body))
    finally:
        run.stop()
    assert len(entries(engine)) == 1
    assert "secret worry" not in caplog.text
    assert CLIENT_SENDER not in caplog.text and practice.address.split("@")[0] not in caplog.text


def test_every_receiving_setting_is_described_and_documented():
    doc = (Path(__file__).parent.parent / "docs" / "receiving.md").read_text()
    names = [n for n in Settings.model_fields if n.startswith(("max_", "rate_", "tls_", "command_", "data_"))]
    assert len(names) >= 12
    for name in names:
        assert Settings.model_fields[name].description, name
        assert f"`{name}`" in doc, name


@pytest.mark.parametrize(
    ("size", "text"), [(10 * 1024 * 1024, "10 MB"), (1536 * 1024, "1.5 MB"), (4096, "4096 bytes")]
)
def test_sizes_are_said_for_people(size, text):
    assert receive.human_size(size) == text
