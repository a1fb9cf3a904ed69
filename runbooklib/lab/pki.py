"""The lab's certificates: one CA that every lab server's TLS certificate chains to, and
self-signed signing certificates (STS, ACS, Entra ID) whose private keys stay in lab state.

Clients trust the lab exactly as they would trust a real estate: through a CA bundle
(``<lab dir>/ca.pem``) named in the inventory. Nothing here disables verification.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["KeyPair", "LabCA", "new_signing_certificate", "load_key_pair", "save_key_pair"]

_CA_CERT = "ca.pem"
_CA_KEY = "ca-key.pem"


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its RSA private key."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey

    @classmethod
    def from_pem(cls, cert_pem: str | bytes, key_pem: str | bytes) -> "KeyPair":
        """The pair a state file keeps as PEM text (the key unencrypted: state files are 0600)."""
        as_bytes = [v.encode() if isinstance(v, str) else v for v in (cert_pem, key_pem)]
        key = serialization.load_pem_private_key(as_bytes[1], password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("a lab key pair holds an RSA key")
        return cls(x509.load_pem_x509_certificate(as_bytes[0]), key)

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def cert_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _new_key(key_size: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=key_size)


def new_signing_certificate(
    common_name: str,
    *,
    key_size: int = 2048,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> KeyPair:
    """A self-signed certificate for token signing, like the ones SharePoint, ACS and Entra ID use."""
    key = _new_key(key_size)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = not_before or (_now() - dt.timedelta(days=1))
    end = not_after or (start + dt.timedelta(days=365 * 10))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert, key)


def save_key_pair(pair: KeyPair, cert_path: Path, key_path: Path) -> None:
    cert_path.write_bytes(pair.cert_pem)
    _write_private(key_path, pair.key_pem)


def load_key_pair(cert_path: Path, key_path: Path) -> KeyPair:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return KeyPair(cert, key)


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


class LabCA:
    """The lab's certificate authority, kept in a directory as ``ca.pem`` and ``ca-key.pem``."""

    def __init__(self, pair: KeyPair, directory: Path) -> None:
        self._pair = pair
        self.directory = directory

    @property
    def bundle_path(self) -> Path:
        """The CA bundle clients verify lab servers with."""
        return self.directory / _CA_CERT

    @classmethod
    def open(cls, directory: Path) -> "LabCA":
        """Load the CA from ``directory``, creating it on first use."""
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / _CA_CERT, directory / _CA_KEY
        if cert_path.exists() and key_path.exists():
            return cls(load_key_pair(cert_path, key_path), directory)
        key = _new_key(2048)
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "s2s-runbooks lab"),
                x509.NameAttribute(NameOID.COMMON_NAME, "s2s-runbooks lab CA"),
            ]
        )
        start = _now() - dt.timedelta(days=1)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        pair = KeyPair(cert, key)
        save_key_pair(pair, cert_path, key_path)
        return cls(pair, directory)

    def issue_server_certificate(self, hosts: list[str]) -> KeyPair:
        """A TLS server certificate for ``hosts`` (DNS names or IP addresses), signed by this CA."""
        key = _new_key(2048)
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        start = _now() - dt.timedelta(hours=1)
        ca_cert, ca_key = self._pair.certificate, self._pair.key
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=825))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        return KeyPair(cert, key)
