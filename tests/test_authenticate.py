"""Sender authenticity: real DKIM crypto and SPF evaluation over an injected resolver (never real DNS)."""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Iterator

import dkim
import pytest

from journal_relay.authenticate import (
    DnsTxt,
    Verdict,
    aligned,
    authenticate,
    judge_authentication_results,
    verify_directly,
)

MESSAGE = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: journal-7f3a@relay.example.net\r\n"
    b"Subject: Tuesday\r\n"
    b"Message-ID: <1@example.org>\r\n"
    b"Date: Tue, 04 Mar 2025 09:00:00 +0000\r\n"
    b"\r\n"
    b"Slept better this week.\r\n"
)


def _rsa_key() -> tuple[bytes, str]:
    """(PKCS#1 PEM private key, base64 SubjectPublicKeyInfo for the p= tag) of a throwaway key."""
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
    except ImportError:
        if not shutil.which("openssl"):
            pytest.skip("needs the cryptography package or the openssl command to make a test key")
        pem = subprocess.run(
            ["openssl", "genrsa", "-traditional", "2048"], check=True, capture_output=True
        ).stdout
        der = subprocess.run(
            ["openssl", "rsa", "-pubout", "-outform", "DER"], input=pem, check=True, capture_output=True
        ).stdout
        return pem, base64.b64encode(der).decode()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, base64.b64encode(der).decode()


@pytest.fixture(autouse=True)
def no_real_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail the test if anything reaches for real DNS instead of the injected resolver (the code under
    test swallows resolver errors into 'temporary', so a raise alone would go unnoticed)."""
    import dns.resolver
    import spf

    calls: list[str] = []

    def refuse(*args: object, **kwargs: object) -> None:
        calls.append(repr(args[:2]))
        raise OSError("real DNS is not allowed in tests")

    monkeypatch.setattr(dns.resolver, "resolve", refuse)
    monkeypatch.setattr(dns.resolver, "query", refuse)
    monkeypatch.setattr(spf, "DNSLookup", refuse)
    monkeypatch.setattr(dkim, "get_txt", refuse)
    yield
    assert not calls, f"real DNS was queried: {calls}"


@pytest.fixture(scope="module")
def key() -> tuple[bytes, str]:
    return _rsa_key()


def resolver(records: dict[str, list[str]]) -> DnsTxt:
    def dns_txt(name: str) -> list[str]:
        return records.get(name, [])

    return dns_txt


def signed(key: tuple[bytes, str], domain: str, message: bytes = MESSAGE) -> bytes:
    return bytes(dkim.sign(message, b"s1", domain.encode(), key[0])) + message


def direct(raw: bytes, records: dict[str, list[str]], **kw: str) -> Verdict:
    args = {
        "from_domain": "example.org",
        "mail_from": "alice@example.org",
        "client_ip": "192.0.2.10",
        "helo": "mail.example.org",
    }
    args.update(kw)
    return verify_directly(raw, dns_txt=resolver(records), **args)


# ---- DKIM, real signatures ------------------------------------------------------------------------


def test_dkim_aligned_signature_passes(key: tuple[bytes, str]) -> None:
    v = direct(signed(key, "example.org"), {"s1._domainkey.example.org": [f"v=DKIM1; k=rsa; p={key[1]}"]})
    assert (v.outcome, v.method) == ("pass", "dkim")
    assert "dkim=pass header.d=example.org" in v.details


def test_dkim_tampered_body_fails(key: tuple[bytes, str]) -> None:
    raw = signed(key, "example.org").replace(b"Slept better", b"Slept worse")
    v = direct(raw, {"s1._domainkey.example.org": [f"v=DKIM1; p={key[1]}"]})
    assert (v.outcome, v.method) == ("fail", "dkim")
    assert "body hash mismatch" in v.reason and "worse" not in v.reason


def test_dkim_unaligned_signature_does_not_pass(key: tuple[bytes, str]) -> None:
    v = direct(
        signed(key, "mailer.example.com"), {"s1._domainkey.mailer.example.com": [f"v=DKIM1; p={key[1]}"]}
    )
    assert v.outcome == "none"
    assert "does not align" in v.reason


def test_dkim_subdomain_signature_aligns(key: tuple[bytes, str]) -> None:
    v = direct(signed(key, "mail.example.org"), {"s1._domainkey.mail.example.org": [f"v=DKIM1; p={key[1]}"]})
    assert v.outcome == "pass"


def test_dkim_aligned_signature_is_checked_even_under_many_others(key: tuple[bytes, str]) -> None:
    raw = signed(key, "example.org")
    for i in range(8):  # each lacks a key: costs a look-up, and must not crowd out the author's
        raw = signed(key, f"x{i}.example.com", raw)
    v = direct(raw, {"s1._domainkey.example.org": [f"v=DKIM1; p={key[1]}"]})
    assert v.outcome == "pass" and len(v.details) <= 6


def test_dkim_missing_key_and_dns_error(key: tuple[bytes, str]) -> None:
    v = direct(signed(key, "example.org"), {})
    assert v.outcome == "none" and not v.temporary
    assert "dkim=permerror header.d=example.org" in v.details

    def broken(name: str) -> list[str]:
        raise TimeoutError("SERVFAIL")

    v = verify_directly(
        signed(key, "example.org"),
        from_domain="example.org",
        mail_from="alice@example.org",
        client_ip="192.0.2.10",
        helo="mail.example.org",
        dns_txt=broken,
    )
    assert v.outcome == "none" and v.temporary
    assert "temporary DNS error" in v.reason


# ---- SPF via the injected TXT resolver -------------------------------------------------------------


def test_spf_pass_fail_none() -> None:
    record = {"example.org": ["v=spf1 ip4:192.0.2.0/24 -all", "google-site-verification=x"]}
    v = direct(MESSAGE, record, client_ip="192.0.2.10")
    assert (v.outcome, v.method) == ("pass", "spf")

    v = direct(MESSAGE, record, client_ip="198.51.100.7")
    assert (v.outcome, v.method) == ("fail", "spf")
    assert "198.51.100.7" in v.reason

    v = direct(MESSAGE, {}, client_ip="192.0.2.10")
    assert v.outcome == "none" and not v.temporary
    assert "spf=none smtp.mailfrom=example.org" in v.details


def test_spf_unaligned_pass_is_not_pass() -> None:
    v = direct(
        MESSAGE, {"bounces.example.com": ["v=spf1 ip4:192.0.2.10 -all"]}, mail_from="b@bounces.example.com"
    )
    assert v.outcome == "none" and "does not align" in v.reason


def test_spf_mechanism_needing_other_lookups_is_temporary_not_silent() -> None:
    v = direct(MESSAGE, {"example.org": ["v=spf1 mx -all"]})
    assert v.outcome == "none" and v.temporary


def test_never_raises_on_junk() -> None:
    v = verify_directly(
        b"\x00garbage", from_domain="", mail_from="", client_ip="not-an-ip", helo="", dns_txt=resolver({})
    )
    assert v.outcome == "none"
    v = direct(b"DKIM-Signature: v=1; d=example.org; b=!!!\r\n" + MESSAGE, {}, client_ip="not-an-ip")
    assert v.outcome == "none"


# ---- Authentication-Results from the trusted front MTA ------------------------------------------------

TRUSTED = "mx.relay.example.net"


def judge(*values: str, from_domain: str = "example.org") -> Verdict:
    return judge_authentication_results(values, trusted_authserv_id=TRUSTED, from_domain=from_domain)


def test_ar_dmarc_decides() -> None:
    assert judge(f"{TRUSTED}; dmarc=pass header.from=example.org").outcome == "pass"
    v = judge(f"{TRUSTED}; dkim=pass header.d=example.org; dmarc=fail header.from=example.org")
    assert (v.outcome, v.method) == ("fail", "dmarc")
    assert v.details == ("dkim=pass header.d=example.org", "dmarc=fail")
    # a DMARC verdict about some other From domain is not about ours
    assert judge(f"{TRUSTED}; dmarc=pass header.from=evil.example").outcome == "none"


def test_ar_without_dmarc_uses_aligned_dkim_or_spf() -> None:
    assert judge("MX.Relay.Example.NET; dkim=pass header.d=example.org header.s=s1").outcome == "pass"
    assert judge(f"{TRUSTED}; spf=pass smtp.mailfrom=alice@example.org").outcome == "pass"
    assert judge(f"{TRUSTED}; dkim=pass header.d=esp.example.com").outcome == "none"
    v = judge(f"{TRUSTED}; spf=fail smtp.mailfrom=example.org; dkim=fail header.d=example.org")
    assert v.outcome == "fail"
    assert judge(f"{TRUSTED}; spf=softfail smtp.mailfrom=example.org").outcome == "none"
    assert judge(f"{TRUSTED} 1; none").outcome == "none"


def test_ar_untrusted_and_forged_headers_are_ignored() -> None:
    # Another authserv-id saying pass: ignored.
    assert judge("mx.evil.example; dmarc=pass header.from=example.org").outcome == "none"
    # Our id, but below the front MTA's own (topmost) header: written by the sender, not honoured.
    v = judge(
        f"{TRUSTED}; spf=fail smtp.mailfrom=example.org",
        f"{TRUSTED}; dmarc=pass header.from=example.org",
    )
    assert v.outcome == "fail"
    # Untrusted headers above ours don't displace it either.
    v = judge("mx.evil.example; dmarc=pass", f"{TRUSTED}; dmarc=fail header.from=example.org")
    assert v.outcome == "fail"


def test_ar_malformed_never_raises() -> None:
    v = judge(f"{TRUSTED}; ;;; ===", f"{TRUSTED}; dmarc=pass header.from=example.org")
    assert v.outcome == "none" and "could not be parsed" in v.reason
    assert judge("", "(", "\x00;").outcome == "none"
    lone = judge_authentication_results(
        f"{TRUSTED}; dmarc=pass", trusted_authserv_id=TRUSTED, from_domain="example.org"
    )
    assert lone.outcome == "pass"
    assert (
        judge_authentication_results(
            [f"{TRUSTED}; dmarc=pass"], trusted_authserv_id="", from_domain="example.org"
        ).outcome
        == "none"
    )


# ---- Glue ------------------------------------------------------------------------------------------


def test_alignment_rule() -> None:
    assert aligned("example.org", "EXAMPLE.org.")
    assert aligned("mail.example.org", "example.org") and aligned("example.org", "mail.example.org")
    assert not aligned("example.org.evil.com", "example.org")
    assert not aligned("org", "example.org")


def test_authenticate_modes(key: tuple[bytes, str]) -> None:
    def run(
        mode: str, raw: bytes = MESSAGE, headers: tuple[str, ...] = (), dns: DnsTxt | None = None
    ) -> Verdict:
        return authenticate(
            raw,
            mode=mode,
            trusted_authserv_id=TRUSTED,
            header_values=headers,
            from_domain="example.org",
            mail_from="alice@example.org",
            client_ip="192.0.2.10",
            helo="mail.example.org",
            dns_txt=dns,
        )

    assert run("off") == Verdict("none", "off", "Sender authentication is switched off.")
    assert run("front-mta", headers=(f"{TRUSTED}; dmarc=pass",)).outcome == "pass"
    dns = resolver({"s1._domainkey.example.org": [f"v=DKIM1; p={key[1]}"]})
    assert run("direct", signed(key, "example.org"), dns=dns).outcome == "pass"
    with pytest.raises(ValueError):
        run("of")  # a typo must not quietly switch authentication off


# ---- Production resolver path: dnspython's answers, its network call replaced -------------------------


def test_real_dns_path_with_dnspython_answers(
    monkeypatch: pytest.MonkeyPatch, key: tuple[bytes, str]
) -> None:
    import dns.rdata
    import dns.resolver

    def txt(value: str) -> str:  # a TXT record as 255-octet character-strings, as a zone holds it
        return " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))

    zone = {
        ("example.org", "TXT"): [txt("v=spf1 mx a:out.example.org -all")],
        ("example.org", "MX"): ["10 mx.example.org."],
        ("mx.example.org", "A"): ["192.0.2.10"],
        ("out.example.org", "A"): ["192.0.2.20"],
        ("s1._domainkey.example.org", "TXT"): [txt(f"v=DKIM1; k=rsa; p={key[1]}")],
    }
    servfail = False

    def resolve(name: str, qtype: str, **kwargs: object) -> list[object]:
        if servfail:
            raise dns.resolver.NoNameservers()  # type: ignore[no-untyped-call]
        rows = zone.get((str(name).rstrip("."), qtype))
        if rows is None:
            raise dns.resolver.NXDOMAIN()  # type: ignore[no-untyped-call]
        return [dns.rdata.from_text("IN", qtype, r) for r in rows]

    monkeypatch.setattr(dns.resolver, "resolve", resolve)

    def run(raw: bytes, ip: str) -> Verdict:
        return verify_directly(
            raw, from_domain="example.org", mail_from="alice@example.org", client_ip=ip, helo="mx.example.org"
        )

    assert run(signed(key, "example.org"), "203.0.113.5").method == "dkim"
    assert run(signed(key, "example.org"), "203.0.113.5").outcome == "pass"
    assert (run(MESSAGE, "192.0.2.10").outcome, run(MESSAGE, "192.0.2.20").outcome) == ("pass", "pass")
    assert run(MESSAGE, "198.51.100.1").outcome == "fail"
    servfail = True
    v = run(signed(key, "example.org"), "192.0.2.10")
    assert v.outcome == "none" and v.temporary
