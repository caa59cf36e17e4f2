"""Settings: one typed object, built once at start-up from the environment (and an optional TOML file)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SEVERITY_NAMES = ("low", "medium", "high", "urgent")
CONFIG_FILE_VARIABLE = "JOURNAL_RELAY_CONFIG"

DEFAULT_CRISIS_TEXT = (
    "If you are in danger or thinking of harming yourself or someone else, "
    "call your local emergency number now (999 in the UK, 112 in the EU, 911 in the US and Canada), "
    "go to your nearest emergency department, or call a crisis line such as Samaritans on 116 123 (UK and Ireland) "
    "or 988 (US)."
)


class Settings(BaseSettings):
    """Every setting, its default and its meaning. Environment variables are JOURNAL_RELAY_<NAME>."""

    model_config = SettingsConfigDict(
        env_prefix="JOURNAL_RELAY_", extra="forbid", frozen=True, populate_by_name=True
    )

    database_url: str = Field(
        "sqlite:///journal_relay.db",
        description="SQLAlchemy URL. SQLite file in the working directory by default; "
        "postgresql+psycopg://user@host/db at scale.",
    )
    spool_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the intake spool, where a message is committed before its 250 and waits to "
        "be screened and stored. Unset: beside a SQLite database_url, in its own file (name-spool.db), so "
        "taking mail never waits for the database's write lock; the same database for PostgreSQL.",
    )
    database_busy_timeout_seconds: float = Field(
        10.0, description="How long a write waits for a locked SQLite database before answering 451.", gt=0
    )
    listen: str = Field("127.0.0.1:8025", description="host:port the SMTP receiver listens on.")
    domain: str = Field("journal.localhost", description="Domain of the clients' private addresses.")
    relay: str | None = Field(
        None,
        description="smtp://host:port (or smtp://user:password@host:port, smtps://, smtp+starttls://) "
        "for outbound mail; unset writes .eml files to outbox_dir.",
    )
    outbox_dir: Path = Field(Path("outbox"), description="Folder for outbound .eml files when no relay is set.")
    tick_seconds: float = Field(30.0, description="How often the scheduler looks for due digests.", gt=0)
    from_address: str = Field(
        "journal-relay@journal.localhost",
        validation_alias="JOURNAL_RELAY_FROM",
        description="Address digests, alerts and receipts come from (env JOURNAL_RELAY_FROM).",
    )
    practice_name: str = Field("the practice", description="Name used in receipts and digests.")
    crisis_text: str = Field(DEFAULT_CRISIS_TEXT, description="Crisis resources shown in every receipt.")
    templates_dir: Path | None = Field(
        None, description="Folder of the practice's own templates; any template found there overrides the shipped one."
    )
    lexicon: Path | None = Field(None, description="A practice's screening rules file (TOML) added to the built-in.")
    alert_severity: str = Field("urgent", description="Lowest flag severity that alerts the therapist at once.")
    receipts: bool = Field(True, description="Send clients an automatic receipt (first message and flagged ones).")
    max_message_bytes: int = Field(10 * 1024 * 1024, description="SIZE limit advertised and enforced.", gt=1024)
    max_recipients: int = Field(10, description="Recipients accepted per message.", ge=1)
    data_timeout_seconds: float = Field(300.0, description="Time allowed from DATA to our answer.", gt=0)
    delivery_retry_max_seconds: float = Field(
        3600.0, description="Upper bound of the backoff between delivery attempts.", gt=0
    )
    max_hops: int = Field(30, description="More Received: headers than this is a mail loop (554 5.4.6).", ge=5)
    log_level: str = Field("INFO", description="Logging level (DEBUG, INFO, WARNING).")
    auth_mode: Literal["off", "front-mta", "direct"] = Field(
        "off",
        description="Sender authenticity: 'front-mta' trusts Authentication-Results from auth_trusted_host; "
        "'direct' verifies DKIM and SPF here (needs DNS); 'off' checks the registered sender address only.",
    )
    auth_trusted_host: str = Field(
        "", description="authserv-id of the front MTA whose Authentication-Results are trusted (front-mta mode)."
    )
    auth_quarantine_unverified: bool = Field(
        False, description="Also quarantine mail that authentication can neither pass nor fail (no DKIM, no SPF)."
    )
    # --- durability ---
    rcpt_cache_seconds: float = Field(
        60.0,
        description="How long RCPT remembers a known private address without asking the database (0: always ask). "
        "Unknown addresses are never remembered; mail taken for a client deactivated meanwhile is quarantined "
        "for staff.",
        ge=0,
    )
    back_process_nice: int = Field(
        10,
        description="Scheduling niceness of the back process (screening, storing, sending), 0-19: when the CPU is "
        "short, taking mail (the receiver) goes first and the spool absorbs the difference.",
        ge=0, le=19,
    )
    writer_max_batch: int = Field(
        64, description="Most messages committed together (one fsync), to the spool by the receiver and as entries "
        "by the back process; each still gets 250 only after its commit.",
        ge=1, le=10_000,
    )

    @property
    def spool_database_url(self) -> str:
        if self.spool_url:
            return self.spool_url
        if self.database_url.startswith("sqlite:///") and self.database_url.endswith(".db"):
            return self.database_url.removesuffix(".db") + "-spool.db"
        if self.database_url.startswith("sqlite:///"):
            return self.database_url + "-spool"
        return self.database_url

    @field_validator("listen")
    @classmethod
    def _listen_is_host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"listen must be host:port, e.g. 127.0.0.1:8025, not {value!r}")
        return value

    @field_validator("relay")
    @classmethod
    def _relay_is_smtp_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("smtp", "smtps", "smtp+starttls") or not parts.hostname:
            raise ValueError(f"relay must look like smtp://host:port, not {value!r}")
        return value

    @field_validator("alert_severity")
    @classmethod
    def _known_severity(cls, value: str) -> str:
        if value not in SEVERITY_NAMES:
            raise ValueError(f"alert_severity must be one of {', '.join(SEVERITY_NAMES)}, not {value!r}")
        return value

    @field_validator("domain")
    @classmethod
    def _plain_domain(cls, value: str) -> str:
        value = value.strip().lower().rstrip(".")
        if not value or "@" in value or " " in value:
            raise ValueError(f"domain must be a bare domain such as journal.example.org, not {value!r}")
        return value

    @model_validator(mode="after")
    def _front_mta_named(self) -> Settings:
        if self.auth_mode == "front-mta" and not self.auth_trusted_host.strip():
            raise ValueError("auth_mode front-mta needs auth_trusted_host: the front MTA's authserv-id")
        return self

    @model_validator(mode="after")
    def _templates_dir_exists(self) -> Settings:
        if self.templates_dir is not None and not self.templates_dir.is_dir():
            raise ValueError(f"templates_dir {self.templates_dir} is not a folder")
        return self

    @property
    def listen_host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def listen_port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    # --- receiver hardening ---
    # Answers and defaults are explained in docs/receiving.md.
    max_line_bytes: int = Field(
        8192,
        description="Longest line accepted, in bytes with CRLF (500 5.5.2 beyond). RFC 5321 says 1000; "
        "the default is lenient so a mail program that does not wrap lines does not bounce a journal entry.",
        ge=1001,
        le=1024 * 1024,
    )
    command_timeout_seconds: float = Field(
        120.0, description="How long a connection may sit idle between commands before it is closed.", gt=0
    )
    max_connections: int = Field(100, description="Open connections in total (421 4.7.0 beyond).", ge=1)
    max_connections_per_ip: int = Field(
        20,
        description="Open connections from one IP address, or one IPv6 /64 (421 4.7.0 beyond). "
        "20 matches Postfix's default smtp_destination_concurrency_limit, for a front MTA.",
        ge=1,
    )
    rate_per_ip_per_minute: float = Field(
        120.0,
        description="Messages (MAIL FROM) per minute from one IP address or IPv6 /64 (451 4.7.1 beyond).",
        gt=0,
    )
    rate_per_ip_burst: int = Field(
        60, description="Messages one IP address may send at once before the rate applies.", ge=1
    )
    rate_per_sender_per_minute: float = Field(
        30.0, description="Messages (MAIL FROM) per minute from one envelope sender (451 4.7.1 beyond).", gt=0
    )
    rate_per_sender_burst: int = Field(
        20, description="Messages one envelope sender may send at once before the rate applies.", ge=1
    )
    tls_cert: Path | None = Field(None, description="PEM certificate chain offered with STARTTLS; needs tls_key.")
    tls_key: Path | None = Field(None, description="PEM private key for tls_cert.", validate_default=True)
    tls_required: bool = Field(
        False,
        description="Refuse MAIL FROM (530 5.7.0) until the client has used STARTTLS; needs tls_cert and tls_key.",
        validate_default=True,
    )

    # Field validators rather than one model validator, so an error names the variable to fix.
    @field_validator("tls_cert", "tls_key", mode="before")
    @classmethod
    def _empty_path_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("tls_cert", "tls_key")
    @classmethod
    def _tls_file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a file")
        return value

    @field_validator("tls_key")
    @classmethod
    def _tls_key_with_cert(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        # A tls_cert that failed its own check is absent here and already reported.
        if "tls_cert" in info.data and (info.data["tls_cert"] is None) != (value is None):
            raise ValueError("tls_cert and tls_key go together: set both or neither")
        return value

    @field_validator("tls_required")
    @classmethod
    def _tls_required_has_files(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("tls_cert") is None and "tls_cert" in info.data:
            raise ValueError("tls_required needs tls_cert and tls_key (PEM files) to offer STARTTLS")
        return value


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings: explicit overrides, then environment, then the TOML config file, then defaults."""
    path = config_file or (Path(os.environ[CONFIG_FILE_VARIABLE]) if os.environ.get(CONFIG_FILE_VARIABLE) else None)
    file_values: dict[str, Any] = {}
    if path is not None:
        with path.open("rb") as fh:
            file_values = tomllib.load(fh)
        if "from" in file_values:
            file_values["JOURNAL_RELAY_FROM"] = file_values.pop("from")
    env_names = {name for name in os.environ if name.startswith("JOURNAL_RELAY_")}
    # Environment beats the file: drop file values that the environment also sets.
    for key in list(file_values):
        env_key = key if key.startswith("JOURNAL_RELAY_") else f"JOURNAL_RELAY_{key.upper()}"
        if env_key in env_names:
            del file_values[key]
    return Settings(**{**file_values, **overrides})


def settings_table() -> str:
    """Every setting as a Markdown table row (the README's settings section is checked against it)."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        variable = alias if isinstance(alias, str) else f"JOURNAL_RELAY_{name.upper()}"
        default = "(the emergency-services text in config.py)" if name == "crisis_text" else f"`{field.default}`"
        rows.append(f"| `{variable}` | {default} | {field.description} |")
    return "\n".join(rows)
