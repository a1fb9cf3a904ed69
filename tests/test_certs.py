"""Loading certificates in the formats administrators export, and judging whether they can be used."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from runbooklib.certs import (
    LoadedCertificate,
    check_usable,
    load_certificate,
    short_thumbprint,
    thumbprint_of,
    x5t_of,
)
from runbooklib.errors import CertificateError, SecretError
from runbooklib.lab.pki import KeyPair, LabCA, new_signing_certificate
from runbooklib.secrets import MASK, redact

UTC = dt.timezone.utc
STS = "SharePoint Security Token Service"


@pytest.fixture(scope="module")
def sts() -> KeyPair:
    return new_signing_certificate(STS)


def _pfx(pair: KeyPair, password: bytes | None) -> bytes:
    encryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return pkcs12.serialize_key_and_certificates(b"sts", pair.key, pair.certificate, None, encryption)


def test_identifiers_match_independent_computation(sts: KeyPair) -> None:
    cert = load_certificate(sts.cert_der)
    sha1 = sts.certificate.fingerprint(hashes.SHA1())
    assert cert.thumbprint == sha1.hex().upper()
    assert len(cert.thumbprint) == 40 and cert.thumbprint == cert.thumbprint.upper()
    assert cert.x5t == base64.urlsafe_b64encode(sha1).decode().rstrip("=")
    assert "=" not in cert.x5t and "+" not in cert.x5t and "/" not in cert.x5t
    assert thumbprint_of(sts.cert_der) == cert.thumbprint and x5t_of(sts.cert_der) == cert.x5t
    assert cert.der == sts.cert_der


def test_short_thumbprint() -> None:
    assert short_thumbprint("F636D0A1B2C3D4E5F60718293A4B5C6D7E8F9012") == "F636D0…"
    assert short_thumbprint("ABC") == "ABC"


def test_description_of_a_signing_certificate(sts: KeyPair) -> None:
    cert = load_certificate(sts.cert_pem)
    assert cert.subject == f"CN={STS}"
    assert cert.issuer == f"CN={STS}"
    assert cert.is_self_signed
    assert cert.key_size == 2048
    assert cert.not_before.tzinfo is not None and cert.not_before.utcoffset() == dt.timedelta(0)
    assert cert.not_after > cert.not_before
    assert cert.public_pem().startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE" not in cert.public_pem()
    assert base64.b64decode(cert.public_base64()) == sts.cert_der
    assert cert.private_key is None and cert.format == "pem"
    assert STS in cert.describe() and cert.thumbprint[:6] in cert.describe()


def test_a_ca_issued_certificate_is_not_self_signed(tmp_path: Path) -> None:
    ca = LabCA.open(tmp_path / "ca")
    server = ca.issue_server_certificate(["sp-a.contoso.lab"])
    cert = load_certificate(server.cert_pem)
    assert not cert.is_self_signed
    assert cert.issuer == "CN=s2s-runbooks lab CA, O=s2s-runbooks lab"
    assert load_certificate(ca.bundle_path).is_self_signed


def test_same_subject_and_issuer_but_signed_by_another_key_is_not_self_signed(sts: KeyPair) -> None:
    # A certificate whose issuer name equals its subject but which another key signed.
    other = new_signing_certificate(STS)
    forged = (
        x509.CertificateBuilder()
        .subject_name(sts.certificate.subject)
        .issuer_name(sts.certificate.subject)
        .public_key(sts.key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(sts.certificate.not_valid_before_utc)
        .not_valid_after(sts.certificate.not_valid_after_utc)
        .sign(other.key, hashes.SHA256())
    )
    cert = load_certificate(forged.public_bytes(serialization.Encoding.DER))
    assert not cert.is_self_signed


def test_pem_and_der_files_detected_by_content_not_extension(sts: KeyPair, tmp_path: Path) -> None:
    (tmp_path / "sts.cer").write_bytes(sts.cert_pem + sts.key_pem)  # PEM under a DER name
    (tmp_path / "sts.pem").write_bytes(sts.cert_der)  # DER under a PEM name
    pem = load_certificate(tmp_path / "sts.cer")
    der = load_certificate(str(tmp_path / "sts.pem"))
    assert (pem.format, der.format) == ("pem", "der")
    assert pem.thumbprint == der.thumbprint
    assert pem.private_key is not None and der.private_key is None
    assert pem.source == str(tmp_path / "sts.cer")


def test_relative_paths_and_file_references(sts: KeyPair, tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "sts.cer").write_bytes(sts.cert_der)
    a = load_certificate("certs/sts.cer", base_dir=tmp_path)
    b = load_certificate("file:certs/sts.cer", base_dir=tmp_path)
    assert a.thumbprint == b.thumbprint


def test_pem_bundle_keeps_the_chain(sts: KeyPair, tmp_path: Path) -> None:
    ca = LabCA.open(tmp_path / "ca")
    server = ca.issue_server_certificate(["oos-1.contoso.lab"])
    cert = load_certificate(server.cert_pem + ca.bundle_path.read_bytes())
    assert cert.subject == "CN=oos-1.contoso.lab"
    ca_cert = x509.load_pem_x509_certificate(ca.bundle_path.read_bytes())
    assert [c.subject for c in cert.chain] == [ca_cert.subject]


def test_pfx_with_password_by_reference(sts: KeyPair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    password = "Pfx-p@ssw0rd-" + tmp_path.name
    (tmp_path / "sts.pfx").write_bytes(_pfx(sts, password.encode()))
    monkeypatch.setenv("RUNBOOK_PFX_PASSWORD", password)
    cert = load_certificate(tmp_path / "sts.pfx", password_ref="env:RUNBOOK_PFX_PASSWORD")
    assert cert.format == "pfx" and cert.private_key is not None
    assert cert.thumbprint == thumbprint_of(sts.cert_der)
    # The password went through resolve_secret, so it is now redacted everywhere.
    assert redact(f"pw={password}") == f"pw={MASK}"

    (tmp_path / "pfx-password").write_text(password + "\n")
    again = load_certificate("sts.pfx", password_ref="file:pfx-password", base_dir=tmp_path)
    assert again.thumbprint == cert.thumbprint


def test_pfx_wrong_password_never_shows_it(sts: KeyPair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sts.pfx").write_bytes(_pfx(sts, b"the-right-one"))
    monkeypatch.setenv("RUNBOOK_PFX_PASSWORD", "Wr0ng-guess-xyz")
    with pytest.raises(CertificateError) as info:
        load_certificate(tmp_path / "sts.pfx", password_ref="env:RUNBOOK_PFX_PASSWORD")
    text = str(info.value)
    assert f"the password for {tmp_path / 'sts.pfx'} is wrong" in text
    assert "Wr0ng-guess-xyz" not in text and "the-right-one" not in text
    assert "env:RUNBOOK_PFX_PASSWORD" in text  # the reference is shown, to say where to look


def test_protected_pfx_without_a_password(sts: KeyPair) -> None:
    with pytest.raises(CertificateError, match="protected by a password and none was given"):
        load_certificate(_pfx(sts, b"secret-pw"))


def test_unprotected_pfx_loads_without_password(sts: KeyPair) -> None:
    cert = load_certificate(_pfx(sts, None))
    assert cert.format == "pfx" and cert.private_key is not None


def test_pfx_password_reference_that_cannot_be_resolved(sts: KeyPair, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNBOOK_NO_SUCH_VAR", raising=False)
    with pytest.raises(SecretError, match="RUNBOOK_NO_SUCH_VAR"):
        load_certificate(_pfx(sts, b"pw-pw-pw"), password_ref="env:RUNBOOK_NO_SUCH_VAR")


def test_encrypted_pem_key(sts: KeyPair, monkeypatch: pytest.MonkeyPatch) -> None:
    key = sts.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pem-pass-123"),
    )
    data = sts.cert_pem + key
    with pytest.raises(CertificateError, match="encrypted and no password was given"):
        load_certificate(data)
    monkeypatch.setenv("RUNBOOK_PEM_PASSWORD", "pem-pass-123")
    assert load_certificate(data, password_ref="env:RUNBOOK_PEM_PASSWORD").private_key is not None
    monkeypatch.setenv("RUNBOOK_PEM_PASSWORD", "not-it-at-all")
    with pytest.raises(CertificateError, match="password for <bytes> is wrong"):
        load_certificate(data, password_ref="env:RUNBOOK_PEM_PASSWORD")


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"this is not a certificate at all", "not a certificate in a format"),
        (b"\x30\x82\x01\x00" + bytes(200), "not a certificate in a format"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "holds no readable certificate"),
        (b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n", "holds no readable certificate"),
        (b"   \n", "is empty"),
    ],
)
def test_corrupt_or_unknown_content(data: bytes, says: str) -> None:
    with pytest.raises(CertificateError, match=says):
        load_certificate(data)


def test_damaged_pfx(sts: KeyPair) -> None:
    good = _pfx(sts, b"pw-pw-pw")
    truncated = good[: len(good) // 2]
    with pytest.raises(CertificateError, match="looks like a PFX but cannot be read; it is damaged"):
        load_certificate(truncated)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match="does not exist"):
        load_certificate(tmp_path / "nope.pfx")
    with pytest.raises(CertificateError, match="folder"):
        load_certificate(tmp_path)


# -- usability ---------------------------------------------------------------------------------


def _dated(not_before: dt.datetime, not_after: dt.datetime, key_size: int = 2048) -> LoadedCertificate:
    pair = new_signing_certificate(STS, key_size=key_size, not_before=not_before, not_after=not_after)
    return load_certificate(pair.cert_der)


def test_a_current_2048_bit_certificate_is_usable(sts: KeyPair) -> None:
    check_usable(load_certificate(sts.cert_der))


def test_expired_certificate() -> None:
    cert = _dated(dt.datetime(2023, 1, 31, tzinfo=UTC), dt.datetime(2024, 1, 31, 12, 0, tzinfo=UTC))
    with pytest.raises(CertificateError) as info:
        check_usable(cert)
    text = str(info.value)
    assert "expired on 2024-01-31" in text and "renew it and" in text
    assert cert.thumbprint in text
    # Judged against the moment given: the same certificate was fine in mid-2023.
    check_usable(cert, now=dt.datetime(2023, 6, 1, tzinfo=UTC))
    check_usable(cert, now=dt.datetime(2023, 6, 1))  # naive means UTC


def test_not_yet_valid_certificate() -> None:
    start = dt.datetime.now(UTC) + dt.timedelta(days=3)
    cert = _dated(start, start + dt.timedelta(days=365))
    with pytest.raises(CertificateError) as info:
        check_usable(cert)
    assert f"not valid before {start:%Y-%m-%d}" in str(info.value)
    assert "clock" in str(info.value)


def test_small_key_is_refused() -> None:
    start = dt.datetime.now(UTC) - dt.timedelta(days=1)
    cert = _dated(start, start + dt.timedelta(days=30), key_size=1024)
    assert cert.key_size == 1024
    with pytest.raises(CertificateError, match="1024-bit key; at least 2048 bits"):
        check_usable(cert)
    check_usable(cert, min_key_size=1024)


def test_signing_needs_the_private_key(sts: KeyPair) -> None:
    with pytest.raises(CertificateError, match="no private key"):
        check_usable(load_certificate(sts.cert_der), need_private_key=True)
    check_usable(load_certificate(sts.cert_pem + sts.key_pem), need_private_key=True)


def test_public_names_are_sorted_and_exist() -> None:
    import runbooklib.certs as module

    assert module.__all__ == sorted(module.__all__)
    assert all(hasattr(module, name) for name in module.__all__)
