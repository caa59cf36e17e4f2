"""Storage failures provoked for real: read-only, full and unreachable databases answer 451 4.3.0,
store nothing of the refused message, and the next message after recovery gets 250."""

from __future__ import annotations

import gc
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from journal_relay import db, service
from journal_relay.config import Settings
from journal_relay.models import Entry, Flag, Outbound
from tests.conftest import DOMAIN, free_port, make_message, register, send

FLAGGED = "I feel suicidal tonight."  # flagged: the job writes an entry, flags and an alert


def settings_for(url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=url, listen=f"127.0.0.1:{free_port()}", domain=DOMAIN,
                    outbox_dir=tmp_path / "outbox", tick_seconds=3600, database_busy_timeout_seconds=0.5)


def row_counts(engine: Engine) -> tuple[int, int, int]:
    with db.reading(engine) as session:
        return tuple(  # type: ignore[return-value]
            session.exec(select(func.count()).select_from(table)).one() for table in (Entry, Flag, Outbound)
        )


def stored_ids(engine: Engine) -> list[str]:
    with db.reading(engine) as session:
        return list(session.exec(select(Entry.message_id)).all())


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


def umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)  # already gone is fine


def can_mount(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    probe.mkdir()
    try:
        mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe))
    except (subprocess.CalledProcessError, FileNotFoundError):
        return False
    umount(probe)
    return True


@contextmanager
def pragma_on_every_connection(engine: Engine, pragma: str) -> Iterator[None]:
    """Apply `pragma` to every connection the engine hands out inside the block (SQLite pragmas are per connection)."""

    def apply(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(pragma)

    event.listen(engine, "connect", apply)
    engine.dispose()  # drop pooled connections so none escapes the pragma
    try:
        yield
    finally:
        event.remove(engine, "connect", apply)
        engine.dispose()


# --- read-only ------------------------------------------------------------------------------


@pytest.fixture
def bind_mount(tmp_path: Path) -> Iterator[Path]:
    """A folder bind-mounted onto itself's twin, so it can be made read-only while root still cannot write."""
    if not can_mount(tmp_path):
        pytest.skip("mount is not permitted here (needs root with CAP_SYS_ADMIN)")
    source, target = tmp_path / "source", tmp_path / "mounted"
    source.mkdir()
    target.mkdir()
    mount("--bind", str(source), str(target))
    yield target
    umount(target)


def remount(target: Path, mode: str, *engines: Engine) -> None:
    # The kernel refuses a read-only remount while a file is open for writing: close every pooled
    # connection first. A connection checked out during dispose() would go back to the discarded
    # pool and stay open, so wait for the writer and the deliverer to check theirs in.
    deadline = time.monotonic() + 10
    while True:
        for engine in engines:
            while engine.pool.checkedout() and time.monotonic() < deadline:  # type: ignore[attr-defined]
                time.sleep(0.01)
            engine.dispose()
        gc.collect()  # closes connections stranded in a discarded pool
        try:
            mount("-o", f"remount,bind,{mode}", str(target))
            return
        except subprocess.CalledProcessError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_read_only_filesystem_answers_451_and_recovers(bind_mount, tmp_path):
    settings = settings_for(f"sqlite:///{bind_mount / 'journal.db'}", tmp_path)
    run = service.start(settings)
    try:
        practice = register(run.engine, settings)
        assert send(settings, make_message(to=practice.address), to=practice.address)[0] == 250
        before = row_counts(run.engine)

        remount(bind_mount, "ro", run.engine, run.spool_engine)
        code, text = send(settings, make_message(to=practice.address, body=FLAGGED,
                                                 message_id="<while-ro@mail.test>"), to=practice.address)
        assert (code, text[:5]) == (451, "4.3.0")

        remount(bind_mount, "rw")
        assert row_counts(run.engine) == before
        assert send(settings, make_message(to=practice.address, body=FLAGGED,
                                           message_id="<while-ro@mail.test>"), to=practice.address)[0] == 250
        assert stored_ids(run.engine).count("while-ro@mail.test") == 1
    finally:
        run.stop()


def test_connection_opened_while_read_only_is_not_kept_after_recovery(bind_mount, tmp_path):
    # With the WAL files left on disk (a crash, another process), SQLite opens the database read-only
    # on a read-only filesystem instead of failing, and that connection would stay read-only in the
    # pool after the filesystem recovered: every later write would fail until a restart.
    live = tmp_path / "live.db"
    keeper = sqlite3.connect(live)
    keeper.execute("PRAGMA journal_mode=WAL")
    keeper.execute("CREATE TABLE t (x)")
    keeper.commit()
    for suffix in ("", "-wal", "-shm"):
        shutil.copy(f"{live}{suffix}", bind_mount / f"journal.db{suffix}")
    keeper.close()
    engine = db.make_engine(f"sqlite:///{bind_mount / 'journal.db'}")

    remount(bind_mount, "ro")
    for _ in range(2):
        with pytest.raises(OperationalError), engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")

    remount(bind_mount, "rw")
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (2)")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT x FROM t").scalars().all() == [2]
    engine.dispose()


def test_query_only_database_answers_451_and_recovers(running, settings, engine, practice):
    # Where mounts are not permitted: SQLite's own read-only switch on every server connection.
    before = row_counts(engine)
    # On the spool, which is what the receiver writes before its 250.
    with pragma_on_every_connection(running.spool_engine, "PRAGMA query_only=ON"):
        code, text = send(settings, make_message(to=practice.address, body=FLAGGED), to=practice.address)
    assert (code, text[:5]) == (451, "4.3.0")
    assert row_counts(engine) == before
    assert send(settings, make_message(to=practice.address), to=practice.address)[0] == 250


# --- disk full ------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs: a real filesystem that really runs out of space."""
    if not can_mount(tmp_path):
        pytest.skip("mount is not permitted here (needs root with CAP_SYS_ADMIN)")
    target = tmp_path / "small"
    target.mkdir()
    mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(target))
    yield target
    umount(target)


def fill(folder: Path) -> Path:
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as fh:
        for chunk in (b"\0" * 65536, b"\0" * 512):
            try:
                while True:
                    fh.write(chunk)
            except OSError:
                pass  # ENOSPC: the disk is full, as intended
    return filler


def big_message(to: str, message_id: str) -> bytes:
    # Larger than any free page the WAL already has, so the commit must grab new space.
    body = FLAGGED + "\n" + "A long day, written out.\n" * 20_000
    # CRLF as on the wire: aiosmtpd reads DATA by CRLF lines, and 500 KB of bare-LF text is one over-long line.
    return make_message(to=to, body=body, message_id=message_id).replace(b"\n", b"\r\n")


def test_full_disk_answers_451_and_recovers(small_disk, tmp_path):
    settings = settings_for(f"sqlite:///{small_disk / 'journal.db'}", tmp_path)
    run = service.start(settings)
    try:
        practice = register(run.engine, settings)
        assert send(settings, make_message(to=practice.address), to=practice.address)[0] == 250
        before = row_counts(run.engine)

        filler = fill(small_disk)
        code, text = send(settings, big_message(practice.address, "<while-full@mail.test>"), to=practice.address)
        assert (code, text[:5]) == (451, "4.3.0")
        assert row_counts(run.engine) == before

        filler.unlink()
        code, _ = send(settings, big_message(practice.address, "<while-full@mail.test>"), to=practice.address)
        assert code == 250
        assert stored_ids(run.engine).count("while-full@mail.test") == 1
    finally:
        run.stop()


def test_database_at_its_page_limit_answers_451_and_recovers(running, settings, engine, practice):
    # Where mounts are not permitted: SQLITE_FULL through SQLite's own size cap on every server connection.
    assert send(settings, make_message(to=practice.address), to=practice.address)[0] == 250
    before = row_counts(engine)
    with running.spool_engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
    with pragma_on_every_connection(running.spool_engine, f"PRAGMA max_page_count={pages}"):
        code, text = send(settings, big_message(practice.address, "<at-cap@mail.test>"), to=practice.address)
    assert (code, text[:5]) == (451, "4.3.0")
    assert row_counts(engine) == before
    assert send(settings, big_message(practice.address, "<at-cap@mail.test>"), to=practice.address)[0] == 250
