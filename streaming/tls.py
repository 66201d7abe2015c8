"""https:// for the server: browsers give a page the microphone only on https:// or on localhost,
so a person on another machine needs the page over TLS.

Two ways: the user's own certificate and key (PEM files, e.g. from their CA or Let's Encrypt), or
a self-signed certificate made here for the names the server is reached at. The self-signed pair
is kept in the posetalk cache folder ($POSETALK_CACHE or ~/.cache/posetalk, under tls/) and reused
on later starts, so the fingerprint a person accepted in the browser stays the same; it is made
again only when it no longer covers the names or is about to expire. The SHA-256 fingerprint is
printed so the person can compare it with what the browser shows before accepting the warning."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from posetalk.streaming.errors import ServerConfigError

log = logging.getLogger(__name__)

VALID_DAYS = 365
RENEW_BEFORE = datetime.timedelta(days=7)
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class Tls:
    """What the server serves https:// with."""

    context: ssl.SSLContext
    cert: Path
    fingerprint: str  # SHA-256 of the certificate, "AB:CD:...", as browsers show it


def context(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    """A server context from PEM files; ServerConfigError naming the file that cannot be used."""
    for what, path in (("certificate", cert), ("key", key)):
        p = Path(path)
        if not p.is_file():
            raise ServerConfigError(f"the TLS {what} file {p} does not exist (or is not a file)")
        if not os.access(p, os.R_OK):
            raise ServerConfigError(f"the TLS {what} file {p} cannot be read (permissions)")
    _parse(Path(cert), Path(key))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except ssl.SSLError as exc:  # most often a key that does not belong to the certificate
        raise ServerConfigError(
            f"cannot use the TLS certificate {cert} with the key {key}: {exc.reason or exc}; "
            "the key must be the certificate's"
        ) from None
    except OSError as exc:
        raise ServerConfigError(f"cannot read the TLS certificate or key: {exc}") from None
    return ctx


def _parse(cert: Path, key: Path) -> None:
    """ServerConfigError naming the file that is not what it should be (OpenSSL's own message
    for that is "PEM lib")."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        x509.load_pem_x509_certificates(cert.read_bytes())
    except ValueError:
        raise ServerConfigError(f"the TLS certificate file {cert} is not a PEM certificate") from None
    except OSError as exc:
        raise ServerConfigError(f"cannot read the TLS certificate file {cert}: {exc}") from None
    try:
        load_pem_private_key(key.read_bytes(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:  # TypeError: it needs a password
        raise ServerConfigError(f"the TLS key file {key} is not an unencrypted PEM private key ({exc})") from None
    except OSError as exc:
        raise ServerConfigError(f"cannot read the TLS key file {key}: {exc}") from None


def fingerprint(cert: str | Path) -> str:
    """The SHA-256 fingerprint of the first certificate in a PEM file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    first = x509.load_pem_x509_certificate(Path(cert).read_bytes())
    return first.fingerprint(hashes.SHA256()).hex(":").upper()


def names_for(host: str) -> list[str]:
    """The names and addresses a server bound to ``host`` is reached at: the host itself, or for
    0.0.0.0 / :: this machine's name and its interface addresses; and always the loopback names
    (the page on this machine)."""
    names: list[str] = []
    if host in WILDCARD_HOSTS:
        import aioice.ice

        names += [socket.gethostname(), socket.getfqdn()]
        names += aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True)
    else:
        names.append(host.strip("[]"))
    names += ["localhost", "127.0.0.1", "::1"]
    return list(dict.fromkeys(_canonical(n) for n in names if n and "%" not in n))  # no scoped IPv6


def _canonical(name: str) -> str:
    """An address in its one written form (as the certificate stores it), a name in lower case."""
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower()


def cache_folder() -> Path:
    """Where the self-signed pair is kept: under the posetalk cache folder."""
    from posetalk.models.render.avatar import cache_root

    return cache_root() / "tls"


def self_signed(names: list[str], folder: Path | None = None) -> tuple[Path, Path]:
    """(certificate, key) PEM files for ``names``: the ones in ``folder`` when they still cover
    the names, else new ones written there. ServerConfigError when the folder cannot be written."""
    folder = folder or cache_folder()
    cert, key = folder / "self-signed.crt", folder / "self-signed.key"
    reason = _unusable(cert, key, names)
    if reason is None:
        return cert, key
    log.info("making a self-signed TLS certificate for %s (%s)", ", ".join(names), reason)
    cert_pem, key_pem = _make(names)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _write(key, key_pem, 0o600)  # the private key: readable by this user only
        _write(cert, cert_pem, 0o644)
    except OSError as exc:
        raise ServerConfigError(f"cannot store the self-signed certificate in {folder}: {exc}") from None
    return cert, key


def setup(host: str, cert: str | None, key: str | None, make_self_signed: bool) -> Tls | None:
    """The server's TLS from its settings (None: plain http)."""
    if make_self_signed:
        cert_path, key_path = self_signed(names_for(host))
    elif cert is not None and key is not None:
        cert_path, key_path = Path(cert), Path(key)
    else:
        return None
    return Tls(context(cert_path, key_path), cert_path, fingerprint(cert_path))


def _unusable(cert: Path, key: Path, names: list[str]) -> str | None:
    """Why the stored pair cannot be reused (None: it can)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    if not cert.is_file() or not key.is_file():
        return "none stored yet"
    try:
        c = x509.load_pem_x509_certificate(cert.read_bytes())
        k = load_pem_private_key(key.read_bytes(), password=None)
        san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm, x509.ExtensionNotFound) as exc:
        return f"the stored one cannot be read: {exc}"
    if k.public_key() != c.public_key():
        return "the stored key does not match the stored certificate"
    covered = {str(n.value).lower() for n in san if isinstance(n, (x509.DNSName, x509.IPAddress))}
    missing = [n for n in names if n not in covered]
    if missing:
        return f"the stored one does not cover {', '.join(missing)}"
    if c.not_valid_after_utc - datetime.datetime.now(datetime.UTC) < RENEW_BEFORE:
        return "the stored one expires soon"
    return None


def _make(names: list[str]) -> tuple[bytes, bytes]:
    """A self-signed certificate (PEM) for ``names`` and its EC P-256 key (PEM, unencrypted)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for n in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alt.append(x509.DNSName(n))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "posetalk (self-signed)")])  # fmt: skip
    now = datetime.datetime.now(datetime.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # a client clock a little behind
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())  # fmt: skip
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` whole or not at all (a server starting beside this one reads either pair)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


__all__ = ["Tls", "cache_folder", "context", "fingerprint", "names_for", "self_signed", "setup"]
