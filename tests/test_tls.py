"""STARTTLS with a real handshake: a throwaway CA made here, a client that verifies the server against it."""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from journal_relay import receive, service
from journal_relay.config import Settings
from tests.conftest import CLIENT_SENDER, make_message


@dataclass(frozen=True)
class Pki:
    ca: Path  # what the client trusts
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_pki(folder: Path) -> Pki:
    """A CA and a server certificate for 127.0.0.1 and localhost, signed by it; valid for a day."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("journal-relay test CA"))
        .issuer_name(_name("journal-relay test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(ca=folder / "ca.pem", cert=folder / "cert.pem", key=folder / "key.pem")
    pki.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
    )
    return pki


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


def tls_settings(settings: Settings, pki: Pki, **changes: object) -> Settings:
    return Settings(**{**settings.model_dump(), "tls_cert": pki.cert, "tls_key": pki.key, **changes})


@pytest.fixture
def serve_tls(settings: Settings, engine: object, pki: Pki) -> Iterator[object]:
    started: list[service.Running] = []

    def start(**changes: object) -> Settings:
        custom = tls_settings(settings, pki, **changes)
        started.append(service.start(custom))
        return custom

    yield start
    for run in started:
        run.stop()


def trusting(pki: Pki) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki.ca))


def test_starttls_verified_against_the_ca_then_message_stored(serve_tls, pki, practice):
    custom = serve_tls()
    with smtplib.SMTP(custom.listen_host, custom.listen_port, timeout=10) as client:
        client.ehlo("sender.test")
        assert client.has_extn("starttls")
        assert client.starttls(context=trusting(pki))[0] == 220
        assert isinstance(client.sock, ssl.SSLSocket) and client.sock.getpeercert()
        client.ehlo("sender.test")
        client.mail(CLIENT_SENDER)
        client.rcpt(practice.address)
        code, text = client.data(make_message(to=practice.address))
    assert code == 250 and text.decode().startswith("2.0.0")


def test_client_that_does_not_trust_the_ca_refuses_the_server(serve_tls, caplog):
    custom = serve_tls()
    client = smtplib.SMTP(custom.listen_host, custom.listen_port, timeout=10)
    client.ehlo("sender.test")
    with pytest.raises(ssl.SSLCertVerificationError):
        client.starttls(context=ssl.create_default_context())
    client.close()
    time.sleep(0.2)  # let the server notice the failed handshake
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # their refusal is not our error


def test_tls_required_refuses_plain_mail_with_530_then_accepts_after_starttls(serve_tls, pki, practice):
    custom = serve_tls(tls_required=True)
    with smtplib.SMTP(custom.listen_host, custom.listen_port, timeout=10) as client:
        client.ehlo("sender.test")
        code, text = client.mail(CLIENT_SENDER)
        assert code == 530 and text.decode() == receive.ERR_530_STARTTLS[4:]
        client.starttls(context=trusting(pki))
        client.ehlo("sender.test")
        assert not client.has_extn("starttls")
        assert client.mail(CLIENT_SENDER)[0] == 250
        client.rcpt(practice.address)
        assert client.data(make_message(to=practice.address))[0] == 250


def test_tls_required_without_certificate_is_refused_clearly(settings):
    with pytest.raises(ValidationError, match="tls_required needs tls_cert and tls_key"):
        Settings(**{**settings.model_dump(), "tls_required": True})


def test_certificate_without_key_is_refused(settings, pki):
    with pytest.raises(ValidationError, match="tls_cert and tls_key go together"):
        Settings(**{**settings.model_dump(), "tls_cert": pki.cert})


def test_missing_certificate_file_is_refused(settings, pki, tmp_path):
    with pytest.raises(ValidationError, match="is not a file"):
        tls_settings(settings, Pki(ca=pki.ca, cert=tmp_path / "nope.pem", key=pki.key))


def test_key_not_matching_the_certificate_stops_start_up(settings, pki, tmp_path):
    (tmp_path / "other").mkdir()
    other = make_pki(tmp_path / "other")
    bad = tls_settings(settings, Pki(ca=pki.ca, cert=pki.cert, key=other.key))
    with pytest.raises(receive.TLSSetupError, match="cannot use TLS certificate"):
        receive.ReceiverController(None, settings=bad)  # type: ignore[arg-type]


def test_garbage_certificate_stops_start_up(pki, tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(receive.TLSSetupError, match="junk.pem"):
        receive.starttls_context(cert=junk, key=pki.key)


def test_tls_settings_come_from_the_environment(monkeypatch, pki):
    monkeypatch.setenv("JOURNAL_RELAY_TLS_CERT", str(pki.cert))
    monkeypatch.setenv("JOURNAL_RELAY_TLS_KEY", str(pki.key))
    monkeypatch.setenv("JOURNAL_RELAY_TLS_REQUIRED", "true")
    loaded = Settings()
    assert (loaded.tls_cert, loaded.tls_key, loaded.tls_required) == (pki.cert, pki.key, True)


def test_cli_names_the_setting_to_fix(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from journal_relay.cli import main

    monkeypatch.setenv("JOURNAL_RELAY_DATABASE_URL", f"sqlite:///{tmp_path / 'j.db'}")
    monkeypatch.setenv("JOURNAL_RELAY_TLS_REQUIRED", "true")
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 1
    assert "JOURNAL_RELAY_TLS_REQUIRED: tls_required needs tls_cert and tls_key" in result.output
