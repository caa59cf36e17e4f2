"""The command line: every command has help with an example and is documented; bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from journal_relay.cli import main
from journal_relay.config import settings_table

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += commands(command, f"{prefix}{name} ")
        else:
            found.append((f"{prefix}{name}", command))
    return found


@pytest.fixture
def run(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("JOURNAL_RELAY_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("JOURNAL_RELAY_DOMAIN", "journal.test")
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(main, list(args), input=input, catch_exceptions=False)

    return invoke


@pytest.mark.parametrize("name,command", commands(main), ids=[n for n, _ in commands(main)])
def test_every_command_has_an_example_and_is_in_the_readme(name, command):
    assert "Example" in (command.help or "")
    assert f"journal-relay {name}" in README


def test_readme_documents_every_setting():
    assert settings_table() in README


def test_therapist_client_session_round_trip(run):
    added = run("therapist", "add", "--name", "Dr A", "--email", "a@p.test", "--timezone", "America/New_York")
    assert added.exit_code == 0
    address = run("client", "add", "--therapist", "a@p.test", "--name", "Sam", "--sender", "s@m.test").output.strip()
    assert address.endswith("@journal.test") and len(address.split("@")[0]) >= 16
    result = run("session", "add", "--client", address, "--at", "2099-03-01T15:00", "--every", "week", "--count", "3")
    assert result.exit_code == 0, result.output
    sessions = json.loads(run("session", "list", "--json").output)
    # Wall-clock 15:00 in New York kept across the March DST change.
    assert [s["starts_at"][11:16] for s in sessions] == ["20:00", "19:00", "19:00"]
    clients = json.loads(run("client", "list", "--json").output)
    assert clients[0]["senders"] == ["s@m.test"] and clients[0]["address"] == address


@pytest.mark.parametrize(
    "args,message",
    [
        (["client", "add", "--therapist", "nobody@p.test", "--name", "X", "--sender", "x@y.test"], "no therapist"),
        (["therapist", "add", "--name", "B", "--email", "b@p.test", "--timezone", "Mars/Base"], "unknown time zone"),
        (["therapist", "add", "--name", "B", "--email", "b@p.test", "--digest-lead", "soon"], "cannot read duration"),
        (["session", "add", "--client", "nope@journal.test", "--at", "2099-01-01T10:00"], "not a client's private"),
        (["flags", "ack", "999"], "no flag with id 999"),
        (["quarantine", "release", "5"], "no quarantined entry"),
    ],
)
def test_bad_input_is_one_clear_line(run, args, message):
    result = run(*args)
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_duplicate_therapist_and_bad_time_are_refused(run):
    run("therapist", "add", "--name", "A", "--email", "a@p.test")
    assert "already exists" in run("therapist", "add", "--name", "A", "--email", "A@p.test").output
    address = run("client", "add", "--therapist", "a@p.test", "--name", "S", "--sender", "s@m.test").output.strip()
    assert "cannot read time" in run("session", "add", "--client", address, "--at", "next tuesday").output
    assert "in the past" in run("session", "add", "--client", address, "--at", "2001-01-01T10:00").output


def test_bad_setting_names_the_variable(run, monkeypatch):
    monkeypatch.setenv("JOURNAL_RELAY_LISTEN", "8025")
    result = run("therapist", "list")
    assert result.exit_code != 0 and "JOURNAL_RELAY_LISTEN" in result.output


def test_screen_reads_stdin_and_jsonl(run):
    result = run("screen", input="I want to kill myself.")
    assert json.loads(result.output)["flags"][0]["category"] == "self"
    lines = run("screen", "--jsonl", input='{"id": "a", "text": "A nice walk."}\n').output.splitlines()
    assert json.loads(lines[0]) == {"id": "a", "flags": [], "discounted": []}


def test_config_file_is_read_and_environment_wins(run, tmp_path, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text('domain = "from-file.test"\npractice_name = "File Practice"\nfrom = "x@from-file.test"\n')
    monkeypatch.setenv("JOURNAL_RELAY_DOMAIN", "from-env.test")
    output = run("--config", str(config), "check").output
    assert "domain = from-env.test" in output and "practice_name = File Practice" in output
    assert "from_address = x@from-file.test" in output


def test_check_tells_when_the_spool_is_stuck(run, tmp_path):
    from datetime import UTC, datetime, timedelta

    from journal_relay import db, spool
    from journal_relay.config import Settings

    assert "spool: 0 message(s) waiting" in run("check").output
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'cli.db'}")
    engine = db.make_engine(settings.spool_database_url)
    spool.create(engine)
    writer = spool.SpoolWriter(engine)
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    writer.submit(spool.Taken(raw=b"Subject: x\r\n\r\nx\r\n", client_ids=(1,), envelope_from="", peer="", helo="",
                              received_at=long_ago)).result()
    writer.close()
    engine.dispose()
    # Before serve starts (systemd's ExecStartPre), a full spool is no reason to refuse: serve empties it.
    result = CliRunner().invoke(main, ["check"])
    assert result.exit_code == 0 and "spool: 1 message(s) waiting" in result.output
    result = CliRunner().invoke(main, ["check", "--spool"])
    assert result.exit_code == 1
    assert "spool: 1 message(s) waiting" in result.output and "is `journal-relay serve` running?" in result.output


def test_check_names_a_practice_pattern_no_trigger_reaches(run, tmp_path, monkeypatch):
    practice = tmp_path / "practice.toml"
    practice.write_text('[[rule]]\nid = "self.zorb"\ncategory = "self"\nseverity = "high"\nkind = "injury"\n'
                        'triggers = ["zorbed"]\npatterns = [\'\\bi (?:zorbed|blimmed) my arm\\b\']\n', encoding="utf-8")
    monkeypatch.setenv("JOURNAL_RELAY_LEXICON", str(practice))
    output = run("check").output
    assert "lexicon: rule 'self.zorb' pattern 1 matches text holding none of its triggers, such as " \
           "'i blimmed my arm'" in output
