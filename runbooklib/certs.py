"""Certificates as the S2S products see them: load PFX / PEM / DER, and describe them.

The identifiers the products use are computed from the certificate's DER bytes:

* ``thumbprint`` — SHA-1, upper-case hex (what ``Get-SPTrustedSecurityTokenIssuer``,
  the certificate MMC and ``New-SPTrustedSecurityTokenIssuer`` show),
* ``x5t`` — the same SHA-1 as base64url without padding (the JWT header and the JSON
  metadata's ``x5t``).

A PFX password is given by secret *reference* and resolved at the moment of loading.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .errors import CertificateError
from .secrets import resolve_secret

__all__ = [
    "CertificateFormat",
    "LoadedCertificate",
    "check_usable",
    "from_pfx",
    "load_certificate",
    "new_self_signed",
    "short_thumbprint",
    "thumbprint_of",
    "to_pfx",
    "x5t_of",
]

log = logging.getLogger(__name__)

CertificateFormat = Literal["pfx", "pem", "der"]

# A PFX is SEQUENCE { INTEGER 3, SEQUENCE { OID pkcs7-data … } … }; the OID's DER bytes sit
# within the first few dozen bytes whatever the length encoding.
_PKCS7_DATA_OID = bytes.fromhex("06092a864886f70d010701")


def thumbprint_of(der: bytes) -> str:
    """SHA-1 of the DER certificate as upper-case hex, as Windows shows it."""
    return hashlib.sha1(der).hexdigest().upper()  # noqa: S324 - the products' identifier, not security


def x5t_of(der: bytes) -> str:
    """SHA-1 of the DER certificate, base64url without padding (JWT ``x5t``)."""
    digest = hashlib.sha1(der).digest()  # noqa: S324
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def short_thumbprint(thumbprint: str) -> str:
    """The first six characters and an ellipsis, for tables (``F636D0…``)."""
    return thumbprint[:6] + "…" if len(thumbprint) > 6 else thumbprint


def _name_text(name: x509.Name) -> str:
    # Most specific first, as Windows shows it: "CN=…, OU=…, O=…".
    return ", ".join(rdn.rfc4514_string() for rdn in reversed(name.rdns))


@dataclass(frozen=True)
class LoadedCertificate:
    """A certificate, its private key when the file had one, and the identifiers the products use."""

    certificate: x509.Certificate
    private_key: PrivateKeyTypes | None = None
    #: Where it came from (a path, or "<bytes>") — for messages.
    source: str = "<bytes>"
    format: CertificateFormat = "der"
    #: Further certificates found with it (a PFX's or PEM bundle's chain).
    chain: tuple[x509.Certificate, ...] = field(default=())

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def thumbprint(self) -> str:
        return thumbprint_of(self.der)

    @property
    def x5t(self) -> str:
        return x5t_of(self.der)

    @property
    def key_size(self) -> int:
        """The public key's size in bits (0 for key types without one)."""
        return int(getattr(self.certificate.public_key(), "key_size", 0))

    @property
    def not_before(self) -> dt.datetime:
        return self.certificate.not_valid_before_utc

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc

    @property
    def subject(self) -> str:
        return _name_text(self.certificate.subject)

    @property
    def issuer(self) -> str:
        return _name_text(self.certificate.issuer)

    @property
    def serial_number(self) -> str:
        return format(self.certificate.serial_number, "X")

    @property
    def is_self_signed(self) -> bool:
        """Issued by itself: same name, and its own key verifies its signature."""
        cert = self.certificate
        if cert.subject != cert.issuer:
            return False
        try:
            cert.verify_directly_issued_by(cert)
        except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
            return False
        return True

    @property
    def has_private_key(self) -> bool:
        return self.private_key is not None

    def public_pem(self) -> str:
        """The certificate alone (no key) in PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def public_base64(self) -> str:
        """The DER certificate as plain base64 (Graph keyCredentials, JSON metadata ``value``)."""
        return base64.b64encode(self.der).decode("ascii")

    def describe(self) -> str:
        """One line for a table or a message."""
        return (
            f"{self.subject} ({short_thumbprint(self.thumbprint)}, "
            f"valid {self.not_before:%Y-%m-%d} to {self.not_after:%Y-%m-%d})"
        )

    def __repr__(self) -> str:
        return (
            f"LoadedCertificate(subject={self.subject!r}, thumbprint={self.thumbprint!r}, "
            f"format={self.format!r}, private_key={'yes' if self.private_key else 'no'})"
        )


def load_certificate(
    path_or_bytes: str | os.PathLike[str] | bytes,
    *,
    password_ref: str | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> LoadedCertificate:
    """Load a certificate from a PFX/PKCS#12, PEM or DER file (or its bytes).

    The format is detected from the content, not the extension. ``password_ref`` is a secret
    reference for a PFX's (or an encrypted PEM key's) password; without one a PFX is tried
    with no password and with the empty password. A path may be ``file:PATH``; relative
    paths start at ``base_dir``.
    """
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data, source = bytes(path_or_bytes), "<bytes>"
    else:
        path = _path(path_or_bytes, base_dir)
        source = str(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CertificateError(
                f"the certificate file {path} does not exist",
                hint="check the path (relative paths start at the inventory's folder)",
            ) from None
        except IsADirectoryError:
            raise CertificateError(f"{path} is a folder, not a certificate file") from None
        except PermissionError:
            raise CertificateError(
                f"the certificate file {path} cannot be read by this account",
                hint="give the account that runs the runbook read access to it",
            ) from None
    if not data.strip():
        raise CertificateError(f"the certificate file {source} is empty",
                               hint="export the certificate again")

    password_bytes = _password(password_ref, source, base_dir)
    stripped = data.lstrip()
    if stripped.startswith(b"-----BEGIN"):
        return _load_pem(stripped, source, password_bytes, password_ref)
    try:
        cert = x509.load_der_x509_certificate(data)
    except ValueError:
        pass
    else:
        return LoadedCertificate(cert, None, source, "der")
    return _load_pfx(data, source, password_bytes, password_ref)


def _path(value: str | os.PathLike[str], base_dir: str | os.PathLike[str] | None) -> Path:
    text = os.fspath(value)
    if isinstance(text, str) and text.startswith("file:"):
        text = text[len("file:"):]
    path = Path(text).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path.resolve()


def _password(ref: str | None, source: str, base_dir: str | os.PathLike[str] | None) -> bytes | None:
    if ref is None:
        return None
    value = resolve_secret(ref, purpose=f"the password of {source}", base_dir=base_dir)
    return value.encode("utf-8")


def _looks_like_pfx(data: bytes) -> bool:
    return data[:1] == b"\x30" and _PKCS7_DATA_OID in data[:40]


def _load_pfx(data: bytes, source: str, password: bytes | None, ref: str | None) -> LoadedCertificate:
    if not _looks_like_pfx(data):
        raise CertificateError(
            f"{source} is not a certificate in a format this tool reads (PFX/PKCS#12, PEM or DER), "
            "or it is damaged",
            hint="export the certificate again, as .pfx (with its private key) or .cer",
        )
    attempts = [password] if password is not None else [None, b""]
    last: ValueError | None = None
    for attempt in attempts:
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, attempt)
        except ValueError as exc:
            last = exc
            continue
        except UnsupportedAlgorithm as exc:
            raise CertificateError(
                f"{source} is protected with an algorithm this system does not support ({exc})",
                hint="export it again with AES-256 encryption (the default of current Windows)",
            ) from None
        if cert is None:
            raise CertificateError(f"{source} holds no certificate (only a key)",
                                   hint="export the certificate together with its key")
        return LoadedCertificate(cert, key, source, "pfx", tuple(extra))
    assert last is not None
    if "password" in str(last).lower():
        if ref is None:
            raise CertificateError(
                f"{source} is protected by a password and none was given",
                hint="give the password by reference (certificate_password: env:NAME, file:PATH "
                "or keyring:SERVICE/NAME)",
            ) from None
        raise CertificateError(
            f"the password for {source} is wrong",
            hint=f"check that {ref} holds this file's password; if it does, the file is damaged "
            "and must be exported again",
        ) from None
    raise CertificateError(
        f"{source} looks like a PFX but cannot be read; it is damaged",
        hint="export the certificate again",
    ) from None


def _load_pem(data: bytes, source: str, password: bytes | None, ref: str | None) -> LoadedCertificate:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        raise CertificateError(
            f"{source} is PEM text but holds no readable certificate (-----BEGIN CERTIFICATE-----)",
            hint="check that the file is the certificate and not only a key or a request",
        )
    key = None
    if b"PRIVATE KEY-----" in data:
        try:
            key = serialization.load_pem_private_key(data, password=password)
        except TypeError:
            # Encrypted without a password given, or a password given for a plain key.
            if password is None:
                raise CertificateError(
                    f"the private key in {source} is encrypted and no password was given",
                    hint="give the password by reference (env:NAME, file:PATH or keyring:SERVICE/NAME)",
                ) from None
            key = serialization.load_pem_private_key(data, password=None)
        except ValueError:
            if password is not None:
                raise CertificateError(
                    f"the password for {source} is wrong",
                    hint=f"check that {ref} holds the password of this file's private key",
                ) from None
            raise CertificateError(f"the private key in {source} is damaged",
                                   hint="export the key again") from None
    return LoadedCertificate(certs[0], key, source, "pem", tuple(certs[1:]))


def check_usable(
    cert: LoadedCertificate,
    *,
    min_key_size: int = 2048,
    now: dt.datetime | None = None,
    need_private_key: bool = False,
) -> None:
    """Raise :class:`CertificateError` when ``cert`` cannot be used for S2S signing or trust."""
    moment = now or dt.datetime.now(dt.timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    who = f"the certificate {cert.subject} (thumbprint {cert.thumbprint}) from {cert.source}"
    if moment > cert.not_after:
        raise CertificateError(
            f"{who} expired on {cert.not_after:%Y-%m-%d %H:%M} UTC",
            hint="renew it and use the new certificate (and register it wherever the old one "
            "was trusted)",
        )
    if moment < cert.not_before:
        raise CertificateError(
            f"{who} is not valid before {cert.not_before:%Y-%m-%d %H:%M} UTC",
            hint="check this machine's clock, or wait until the certificate becomes valid",
        )
    if cert.key_size and cert.key_size < min_key_size:
        raise CertificateError(
            f"{who} has a {cert.key_size}-bit key; at least {min_key_size} bits are required",
            hint=f"issue a new certificate with a {min_key_size}-bit (or larger) RSA key",
        )
    if need_private_key and cert.private_key is None:
        raise CertificateError(
            f"{who} has no private key, and signing needs one",
            hint="export the certificate with its private key (.pfx)",
        )


def new_self_signed(common_name: str, *, key_size: int = 2048, days: int = 730,
                    now: dt.datetime | None = None) -> LoadedCertificate:
    """A new self-signed certificate with its RSA key, for server authentication and signing.

    For test estates: a production trust should use a certificate from the organisation's CA.
    """
    moment = (now or dt.datetime.now(dt.timezone.utc)) - dt.timedelta(minutes=5)
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(moment).not_valid_after(moment + dt.timedelta(days=days))
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, content_commitment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return LoadedCertificate(cert, key, f"self-signed {common_name}", "pfx")


def to_pfx(cert: LoadedCertificate, password: str) -> bytes:
    """``cert`` with its private key as PFX bytes protected by ``password`` (AES-256)."""
    if cert.private_key is None:
        raise CertificateError(f"{cert.describe()} has no private key to put in a PFX",
                               hint="load the certificate from its .pfx, with its password")
    key = cert.private_key
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertificateError(f"{cert.describe()} has a key type Office Online Server cannot use",
                               hint="use a certificate with an RSA key")
    return pkcs12.serialize_key_and_certificates(
        None, key, cert.certificate, list(cert.chain) or None,
        serialization.BestAvailableEncryption(password.encode("utf-8")))


def from_pfx(data: bytes, password: str, *, source: str = "<bytes>") -> LoadedCertificate:
    """PFX bytes this run holds the password of (not a reference): e.g. exported from a server."""
    return _load_pfx(data, source, password.encode("utf-8"), "the run's one-time password")
