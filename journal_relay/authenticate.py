"""Sender authenticity: decide whether a message really comes from the domain in its From address.

One job: turn the evidence about a message's origin (a trusted front MTA's Authentication-Results
header, or DKIM and SPF checked here directly) into a `Verdict` of pass, fail or none, with a sentence
staff can read.  Intake decides what to do with it (quarantine on fail, by policy on none).

Pure: no I/O except DNS look-ups in direct mode, and those go through an injectable resolver
(`dns_txt`) so that tests never touch real DNS.  Imports nothing from the rest of the package.

Wiring notes: pass `raw` exactly as received (aiosmtpd's `envelope.original_content`); a
re-serialised message no longer matches its DKIM signature.  The DNS look-ups in `verify_directly`
block; call it from async code via `asyncio.to_thread`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import authres
import dkim
import spf

__all__ = [
    "MODES",
    "DnsTxt",
    "Verdict",
    "aligned",
    "authenticate",
    "judge_authentication_results",
    "verify_directly",
]

MODES = ("off", "front-mta", "direct")

#: Look up the TXT records at a name: one string per record (its character-strings joined), [] when
#: the name has no TXT records or does not exist.  Raising anything means "could not find out"
#: (timeout, SERVFAIL) and is treated as a temporary DNS error, never as an absent record.
DnsTxt = Callable[[str], list[str]]

# Seconds: the timeout of one DNS look-up, and the budget for a whole SPF evaluation
# (RFC 7208 section 4.6.4 recommends at least 20 s in total).
_DNS_TIMEOUT = 5
_SPF_QUERY_TIME = 20
# A DKIM-Signature header is costly to verify; a message with dozens is an attack, not mail.
_MAX_SIGNATURES = 5


@dataclass(frozen=True)
class Verdict:
    outcome: str  # "pass" | "fail" | "none"  (none = nothing to judge by)
    method: str  # "authentication-results" | "dkim" | "spf" | "dmarc" | "off"
    reason: str  # one sentence for staff; built from a fixed vocabulary plus domains/IPs, never content
    details: tuple[str, ...] = ()  # e.g. ("spf=pass smtp.mailfrom=example.org", "dkim=fail header.d=...")
    temporary: bool = False  # outcome none because DNS could not answer now: the caller may answer 451


# --------------------------------------------------------------------------------------------------
# Domains and alignment
# --------------------------------------------------------------------------------------------------

_DOMAIN_SAFE = re.compile(r"[^a-z0-9.\-_]")


def _domain(value: str) -> str:
    """Normalise a domain (or the domain of an address) for comparison: lower case, no trailing dot,
    A-labels for internationalised names (DKIM's d= is always ASCII)."""
    value = value.strip().strip("<>").rsplit("@", 1)[-1].strip().rstrip(".").lower()
    if not value.isascii():
        try:
            value = value.encode("idna").decode("ascii")
        except UnicodeError:
            return ""  # not a domain we could ever align with
    return value


def _shown(domain: str) -> str:
    """A domain as it may appear in a staff sentence: the values come from headers an attacker can
    write, so keep only domain characters and a sane length (the staff view must not render markup
    or someone's prose smuggled into a d= tag)."""
    cleaned = _DOMAIN_SAFE.sub("", domain.lower())[:100]
    return cleaned or "(unnamed domain)"


def aligned(domain: str, from_domain: str) -> bool:
    """Relaxed DMARC alignment (RFC 7489 section 3.1), simplified: the two domains are equal, or one is
    a parent domain of the other.

    Why not organisational domains: that needs the Public Suffix List, one more dependency to keep
    fresh.  The simplification only differs when a shared parent is itself a public suffix
    (e.g. From a.github.io, signed by b.github.io): we then call it unaligned, the safe direction.  A
    bare top-level domain (one label) never aligns, so "d=com" proves nothing about example.com.
    """
    d, f = _domain(domain), _domain(from_domain)
    if not d or not f:
        return False
    if d == f:
        return True
    parent, child = (d, f) if len(d) < len(f) else (f, d)
    return "." in parent and child.endswith("." + parent)


# --------------------------------------------------------------------------------------------------
# Front-MTA mode: Authentication-Results (RFC 8601)
# --------------------------------------------------------------------------------------------------

# The authserv-id is the first token, before ';' (an optional version number and comments may
# follow it).  Used only to tell whose header an unparsable value is.
_AUTHSERV_ID = re.compile(r"^\s*(?:\([^)]*\)\s*)*([^\s;()]+)")


def _authserv_id_of(value: str) -> str | None:
    m = _AUTHSERV_ID.match(value)
    return m.group(1).lower() if m else None


def _prop(result: authres.core.AuthenticationResult, ptype: str, name: str) -> str | None:
    for p in getattr(result, "properties", ()) or ():
        if (p.type or "").lower() == ptype and (p.name or "").lower() == name and p.value:
            return str(p.value)
    return None


def _token(text: str) -> str:
    # method and result names: keep them to RFC 8601 keyword characters for the staff view
    return re.sub(r"[^a-z0-9\-_.]", "", text.lower())[:40]


def judge_authentication_results(
    header_values: Iterable[str], *, trusted_authserv_id: str, from_domain: str
) -> Verdict:
    """Judge the message by the Authentication-Results header its trusted front MTA added.

    `header_values` must be in header order, topmost first (as `email.message.Message.get_all`
    gives them).  Only the topmost header whose authserv-id is the front MTA's name counts: the
    front MTA prepends its header, so any header with the same id further down was already in the
    message when it arrived, i.e. written by the sender (RFC 8601 section 5).  Headers with other
    ids are ignored as forgeable.  Consequence for operators: the front MTA must put all its results
    (SPF, DKIM, DMARC) into one header, and must always add one.

    dmarc=pass/fail decides.  Without a usable DMARC result: pass if an aligned dkim=pass (by
    header.d) or an aligned spf=pass (by smtp.mailfrom) is present; fail if any dkim=fail or
    spf=fail is present and nothing aligned passes; none otherwise.  Never raises.
    """
    method = "authentication-results"
    trusted = trusted_authserv_id.strip().lower()
    if not trusted:
        # An empty name would match a header forged with an empty-looking id; refuse to guess.
        return Verdict("none", method, "No trusted front MTA name is configured, so no header is honoured.")
    from_dom = _domain(from_domain)

    ours: authres.AuthenticationResultsHeader | None = None
    try:
        # A lone string is an Iterable[str] too (of characters): take it as one header value.
        values = [header_values] if isinstance(header_values, str) else list(header_values)
    except Exception:  # noqa: BLE001 - a bad iterable must not take intake down
        values = []
    for raw in values:
        value = re.sub(r"\r?\n[ \t]*", " ", str(raw))  # unfold, in case the caller kept folding
        try:
            header = authres.AuthenticationResultsHeader.parse_value(value)
        except Exception:  # noqa: BLE001 - authres raises its own SyntaxError, maybe others on junk
            if _authserv_id_of(value) == trusted:
                # The front MTA's own header is unreadable.  Do not fall through to a lower header
                # with our id: that one would be the sender's.
                return Verdict(
                    "none",
                    method,
                    f"The Authentication-Results header from {_shown(trusted)} could not be parsed.",
                    ("malformed",),
                )
            continue  # someone else's unreadable header: ignored like any untrusted one
        if (header.authserv_id or "").strip().lower() == trusted:
            ours = header
            break  # topmost only; see docstring

    if ours is None:
        return Verdict(
            "none",
            method,
            f"The message carries no Authentication-Results header from the trusted front MTA "
            f"{_shown(trusted)}.",
        )

    details: list[str] = []
    dmarc: str | None = None
    dmarc_foreign = False
    dkim_pass_aligned: str | None = None
    spf_pass_aligned: str | None = None
    dkim_pass_unaligned: str | None = None
    spf_pass_unaligned: str | None = None
    failures: list[str] = []
    for r in ours.results or ():
        m, res = _token(r.method or ""), _token(r.result or "")
        if m == "dkim":
            d = _prop(r, "header", "d") or _prop(r, "header", "i") or ""
            details.append(f"dkim={res} header.d={_shown(_domain(d))}" if d else f"dkim={res}")
            if res == "pass":
                if aligned(d, from_dom):
                    dkim_pass_aligned = dkim_pass_aligned or _domain(d)
                else:
                    dkim_pass_unaligned = dkim_pass_unaligned or _domain(d)
            elif res == "fail":
                failures.append(
                    f"DKIM signature of {_shown(_domain(d))} fails" if d else "a DKIM signature fails"
                )
        elif m == "spf":
            mf = _prop(r, "smtp", "mailfrom") or _prop(r, "smtp", "helo") or ""
            details.append(f"spf={res} smtp.mailfrom={_shown(_domain(mf))}" if mf else f"spf={res}")
            if res == "pass":
                if aligned(mf, from_dom):
                    spf_pass_aligned = spf_pass_aligned or _domain(mf)
                else:
                    spf_pass_unaligned = spf_pass_unaligned or _domain(mf)
            elif res == "fail":
                failures.append(f"SPF fails for {_shown(_domain(mf))}" if mf else "SPF fails")
        elif m == "dmarc":
            hf = _prop(r, "header", "from")
            details.append(f"dmarc={res}")
            # A DMARC result about another From domain (two From headers, or our from_domain came
            # from elsewhere) says nothing about the one we were asked about.
            if hf is not None and _domain(hf) != from_dom:
                dmarc_foreign = True
            elif dmarc is None:
                dmarc = res
        elif m:
            details.append(f"{m}={res}")

    shown_from = _shown(from_dom)
    if dmarc == "pass":
        return Verdict(
            "pass", "dmarc", f"DMARC passes for {shown_from} at {_shown(trusted)}.", tuple(details)
        )
    if dmarc == "fail":
        return Verdict("fail", "dmarc", f"DMARC fails for {shown_from} at {_shown(trusted)}.", tuple(details))
    if dkim_pass_aligned:
        return Verdict(
            "pass",
            "dkim",
            f"DKIM signature of {_shown(dkim_pass_aligned)} verifies at {_shown(trusted)}.",
            tuple(details),
        )
    if spf_pass_aligned:
        return Verdict(
            "pass", "spf", f"SPF passes for {_shown(spf_pass_aligned)} at {_shown(trusted)}.", tuple(details)
        )
    if failures:
        which = "dkim" if failures[0].startswith(("DKIM", "a DKIM")) else "spf"
        return Verdict(
            "fail",
            which,
            f"{failures[0]} at {_shown(trusted)}, and nothing aligned with {shown_from} passes.",
            tuple(details),
        )
    if dkim_pass_unaligned or spf_pass_unaligned:
        other = dkim_pass_unaligned or spf_pass_unaligned or ""
        reason = f"Only {_shown(other)} is authenticated, which does not align with {shown_from}."
    elif dmarc_foreign:
        reason = f"The DMARC result at {_shown(trusted)} is about another From domain than {shown_from}."
    else:
        reason = f"The header from {_shown(trusted)} has no usable SPF, DKIM or DMARC result."
    return Verdict("none", method, reason, tuple(details))


# --------------------------------------------------------------------------------------------------
# Direct mode: DKIM (dkimpy) and SPF (pyspf)
# --------------------------------------------------------------------------------------------------


class _Lookups:
    """Wraps the TXT resolver for both libraries and records what the last DKIM key look-up found:
    dkimpy turns a DNS timeout, a missing key and a bad signature all into a plain False, so this
    wrapper is the only place that can tell "could not ask" from "no key" from "wrong signature"."""

    def __init__(self, dns_txt: DnsTxt | None) -> None:
        self.dns_txt = dns_txt
        self.key_state = ""  # "" (not looked up) | "ok" | "missing" | "bad" | "temporary"

    def txt(self, name: str) -> list[str]:
        name = name.rstrip(".").lower()
        if self.dns_txt is not None:
            return [str(r) for r in self.dns_txt(name)]
        return _real_dns_txt(name)

    def dkim_dnsfunc(self, name: bytes, timeout: int = _DNS_TIMEOUT) -> bytes | None:
        """dkimpy's dnsfunc: the key record at `name` as bytes, None when absent."""
        try:
            records = self.txt(name.decode("ascii"))
        except UnicodeDecodeError:
            self.key_state = "missing"
            return None
        except Exception as e:
            self.key_state = "temporary"
            raise dkim.DnsTimeoutError(type(e).__name__) from e
        # RFC 6376 3.6.2.2: more than one key record is ambiguous; like dkimpy's resolver, take the
        # first that looks like a key, else the first.
        keys = [r for r in records if "p=" in r] or records
        if not keys:
            self.key_state = "missing"
            return None
        record = keys[0].encode("utf-8")
        try:
            dkim.evaluate_pk(name, record)  # parse only; dkimpy does it again, but won't say why it fails
            self.key_state = "ok"
        except Exception:  # noqa: BLE001 - KeyFormatError, binascii.Error, ...
            self.key_state = "bad"
        return record


def _real_dns_txt(name: str) -> list[str]:
    """Production TXT resolver (dnspython).  Unlike dkimpy's own it reports SERVFAIL as an error, so
    that a broken name server is a temporary error and not a missing key."""
    return [b"".join(r.strings).decode("utf-8", "replace") for r in _real_dns(name, "TXT")]


def _real_dns(name: str, qtype: str) -> list[Any]:
    """One dnspython query; [] for NXDOMAIN or no data, raises on timeout or server failure.
    search=False: a name from a DNS record is absolute, never to be completed by resolv.conf's search
    list (the deprecated dns.resolver.query that pyspf uses does complete it)."""
    import dns.resolver

    try:
        return list(dns.resolver.resolve(name, qtype, lifetime=_DNS_TIMEOUT, search=False))
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []


class _SpfQuery(spf.query):  # type: ignore[misc]
    """pyspf's query with every DNS look-up going through `_Lookups`.

    pyspf has no resolver parameter: its `dns` method funnels all look-ups into a module-global
    function.  Overriding `dns` is the narrowest injection (monkeypatching the global would leak
    between concurrent checks).  With an injected TXT resolver, A, AAAA, MX and PTR look-ups (the
    a, mx, ptr and exists mechanisms) raise a temporary error rather than silently matching nothing.
    In production they go to dnspython, as TXT does.
    """

    def __init__(self, *args: Any, lookups: _Lookups, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lookups = lookups
        # RFC 7208 section 4.6.4: bound the whole evaluation in time, not only each look-up.
        self._deadline = time.monotonic() + _SPF_QUERY_TIME

    def dns(self, name: str, qtype: str, cnames: object = None, ignore_void: bool = False) -> list[Any]:
        if qtype == "SPF":
            return []  # the obsolete type 99 record: treated as absent (RFC 7208 section 3.1)
        name = str(name).rstrip(".").lower()
        if not name or any(not 0 < len(label) < 64 for label in name.split(".")):
            return []  # not a valid DNS name, as pyspf's own resolver path treats it
        if time.monotonic() > self._deadline:
            raise spf.TempError("DNS: the SPF evaluation took too long")
        try:
            if qtype == "TXT":
                result: list[Any] = [(r.encode("utf-8"),) for r in self._lookups.txt(name)]
            elif self._lookups.dns_txt is not None:
                raise spf.TempError(f"DNS {qtype} look-ups are not available to this check")
            elif qtype in ("A", "AAAA"):
                result = [r.address for r in _real_dns(name, qtype)]
            elif qtype == "MX":
                result = [(r.preference, r.exchange.to_text(True)) for r in _real_dns(name, qtype)]
            elif qtype == "PTR":
                result = [r.target.to_text(True) for r in _real_dns(name, qtype)]
            else:
                raise spf.PermError(f"DNS {qtype} look-ups are not part of SPF")
        except (spf.TempError, spf.PermError):
            raise
        except Exception as e:
            raise spf.TempError(f"DNS {type(e).__name__}") from e
        if not result and not ignore_void:
            # The void-lookup limit of pyspf's own path (RFC 7208 section 4.6.4).
            self.void_lookups += 1
            if self.void_lookups > spf.MAX_VOID_LOOKUPS:
                raise spf.PermError(f"Void lookup limit of {spf.MAX_VOID_LOOKUPS} exceeded")
        return result


def _dkim_failure_phrase(exc: Exception) -> str:
    """A fixed phrase for a dkimpy exception: its messages can quote header lines of the message."""
    text = str(exc)
    if "body hash mismatch" in text:
        return "body hash mismatch"
    if isinstance(exc, dkim.KeyFormatError):
        return "public key is unusable"
    if isinstance(exc, dkim.MessageFormatError):
        return "the message or signature is malformed"
    if isinstance(exc, dkim.ValidationError):
        return "the signature's fields are invalid"
    return "verification error"


@dataclass(frozen=True)
class _Check:
    result: str  # RFC 8601 words: pass, fail, softfail, neutral, none, permerror, temperror
    domain: str  # d= for DKIM, the MAIL FROM (or HELO) domain for SPF
    why: str  # fixed phrase


def _signature_domain(value: bytes) -> str:
    try:
        return _domain(dkim.util.parse_tag_value(value).get(b"d", b"").decode("ascii", "replace"))
    except Exception:  # noqa: BLE001 - malformed tag list: dkimpy will say so when verifying
        return ""


def _check_dkim(raw: bytes, lookups: _Lookups, from_domain: str) -> list[_Check]:
    try:
        d = dkim.DKIM(raw, timeout=_DNS_TIMEOUT)
        signatures = [v for name, v in d.headers if name.lower() == b"dkim-signature"]
    except Exception:  # noqa: BLE001 - unparsable message: no DKIM answer
        return [_Check("permerror", "", "the message could not be parsed for DKIM")]
    # Verify the signatures that could make the message pass (d= aligned) first, so that junk
    # signatures added on top cannot push the author's own past the bound.
    order = sorted(
        range(len(signatures)), key=lambda i: not aligned(_signature_domain(signatures[i]), from_domain)
    )
    checks: list[_Check] = []
    for idx in order[:_MAX_SIGNATURES]:
        lookups.key_state = ""
        d.domain = None  # dkimpy keeps the previous signature's d= when parsing the next one fails
        try:
            ok = d.verify(idx=idx, dnsfunc=lookups.dkim_dnsfunc)
            error: Exception | None = None
        except Exception as e:  # noqa: BLE001 - dkimpy raises assorted errors on hostile input
            ok, error = False, e
        domain = _domain((d.domain or b"").decode("ascii", "replace"))
        if ok:
            checks.append(_Check("pass", domain, "verifies"))
        elif lookups.key_state == "temporary":
            checks.append(_Check("temperror", domain, "its key could not be looked up (temporary DNS error)"))
        elif lookups.key_state == "missing":
            # RFC 6376 section 6.1.2: no key record is a permanent error, not a failed signature.
            checks.append(_Check("permerror", domain, "no public key is published for it"))
        elif lookups.key_state == "bad":
            checks.append(_Check("permerror", domain, "its public key record is unusable"))
        elif error is not None:
            # A body hash mismatch is a signature that is there and is wrong: fail.  Anything else
            # raised is a malformed signature or message: permerror (RFC 8601 section 2.7.1).
            result = "fail" if "body hash mismatch" in str(error) else "permerror"
            checks.append(_Check(result, domain, _dkim_failure_phrase(error)))
        else:
            checks.append(_Check("fail", domain, "the signature does not verify"))
    return checks


def _check_spf(mail_from: str, client_ip: str, helo: str, lookups: _Lookups) -> _Check:
    # With a null reverse-path SPF checks the HELO identity (RFC 7208 section 2.4), and that is
    # then the domain that must align (RFC 7489 section 3.1.2).
    sender = mail_from.strip().strip("<>")
    domain = _domain(sender) if sender else _domain(helo)
    if not domain or not client_ip:
        return _Check("none", domain, "cannot be checked (no sender domain or client address)")
    try:
        q = _SpfQuery(i=client_ip, s=sender, h=helo, lookups=lookups)
        result, _code, _explanation = q.check()  # the explanation is the domain's text: not shown
    except Exception:  # noqa: BLE001 - e.g. an unparsable client address
        return _Check("permerror", domain, "could not be checked (unusable client address or sender)")
    phrases = {
        "pass": f"authorises {client_ip}",
        "fail": f"does not authorise {client_ip}",
        "softfail": f"discourages {client_ip} but does not forbid it",
        "neutral": "makes no statement about this client",
        "none": "publishes no SPF record",
        "permerror": "has a broken SPF record",
        "temperror": "could not be checked (temporary DNS error)",
    }
    result = result if result in phrases else "permerror"  # e.g. pyspf's 'ambiguous' in harsh mode
    return _Check(result, domain, phrases[result])


def verify_directly(
    raw: bytes,
    *,
    from_domain: str,
    mail_from: str,
    client_ip: str,
    helo: str,
    dns_txt: DnsTxt | None = None,
) -> Verdict:
    """Verify DKIM (every signature, up to a bound) and SPF here, for deployments without a front MTA.

    pass: a valid DKIM signature whose d= aligns with from_domain, or SPF pass for an aligned MAIL
    FROM (or, with a null reverse-path, HELO) domain.  fail: an explicit DKIM fail (bad signature,
    body hash mismatch) or SPF fail, and nothing aligned passes.  Unaligned failures count too:
    a broken signature or an SPF fail is evidence of tampering or spoofing, and a quarantined
    message stays visible to staff.  none: nothing answered (no signature, no SPF record,
    softfail/neutral, permanent or temporary errors); `temporary` says a retry may answer.

    dns_txt None means real DNS through dnspython.  Never raises.
    """
    from_dom = _domain(from_domain)
    shown_from = _shown(from_dom)
    lookups = _Lookups(dns_txt)
    try:
        dkim_checks = _check_dkim(raw, lookups, from_dom)
    except Exception:  # noqa: BLE001 - belt and braces: this function must not raise
        dkim_checks = [_Check("permerror", "", "the DKIM check could not run")]
    try:
        spf_check = _check_spf(mail_from, client_ip, helo, lookups)
    except Exception:  # noqa: BLE001
        spf_check = _Check("permerror", "", "could not be checked")

    details = tuple(
        [f"dkim={c.result} header.d={_shown(c.domain)}" for c in dkim_checks]
        + [f"spf={spf_check.result} smtp.mailfrom={_shown(spf_check.domain)}"]
    )

    for c in dkim_checks:
        if c.result == "pass" and aligned(c.domain, from_dom):
            return Verdict("pass", "dkim", f"DKIM signature of {_shown(c.domain)} verifies.", details)
    if spf_check.result == "pass" and aligned(spf_check.domain, from_dom):
        return Verdict("pass", "spf", f"SPF for {_shown(spf_check.domain)} {spf_check.why}.", details)
    for c in dkim_checks:
        if c.result == "fail":
            return Verdict(
                "fail",
                "dkim",
                f"DKIM signature of {_shown(c.domain)} fails: {c.why}; "
                f"nothing aligned with {shown_from} passes.",
                details,
            )
    if spf_check.result == "fail":
        return Verdict(
            "fail",
            "spf",
            f"SPF for {_shown(spf_check.domain)} {spf_check.why}; nothing aligned with {shown_from} passes.",
            details,
        )

    # Nothing decided.  Say the most useful thing: a temporary error first (a retry may decide),
    # then an unaligned pass (why a valid signature did not count), then what was missing.
    temporary = any(c.result == "temperror" for c in dkim_checks) or spf_check.result == "temperror"
    unaligned = [c for c in dkim_checks if c.result == "pass"]
    if temporary:
        reason = f"Sender authenticity for {shown_from} could not be checked: temporary DNS error."
    elif unaligned:
        reason = (
            f"DKIM signature of {_shown(unaligned[0].domain)} verifies but does not align with {shown_from}, "
            f"and SPF for {_shown(spf_check.domain)} {spf_check.why}."
        )
    elif spf_check.result == "pass":
        reason = f"SPF passes only for {_shown(spf_check.domain)}, which does not align with {shown_from}."
    elif dkim_checks:
        c = dkim_checks[0]
        which = f"DKIM signature of {_shown(c.domain)}" if c.domain else "A DKIM signature"
        reason = f"{which}: {c.why}; SPF for {_shown(spf_check.domain)} {spf_check.why}."
    else:
        reason = f"The message has no DKIM signature and SPF for {_shown(spf_check.domain)} {spf_check.why}."
    method = "dkim" if dkim_checks else "spf"
    return Verdict("none", method, reason, details, temporary=temporary)


# --------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------


def authenticate(
    raw: bytes,
    *,
    mode: str,
    trusted_authserv_id: str,
    header_values: Iterable[str],
    from_domain: str,
    mail_from: str,
    client_ip: str,
    helo: str,
    dns_txt: DnsTxt | None = None,
) -> Verdict:
    """Judge a message's sender authenticity in the configured mode (one of MODES).

    An unknown mode raises ValueError: it is a configuration error, and silently treating a typo as
    "off" would switch a security check off.  Validate the setting against MODES at start-up.
    """
    if mode == "off":
        return Verdict("none", "off", "Sender authentication is switched off.")
    if mode == "front-mta":
        return judge_authentication_results(
            header_values, trusted_authserv_id=trusted_authserv_id, from_domain=from_domain
        )
    if mode == "direct":
        return verify_directly(
            raw, from_domain=from_domain, mail_from=mail_from, client_ip=client_ip, helo=helo, dns_txt=dns_txt
        )
    raise ValueError(f"unknown authentication mode {mode!r}; expected one of {MODES}")
