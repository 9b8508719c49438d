"""`appliance certs`: a local certificate authority and a device certificate signed by it, for
the config API's HTTPS (as the reference system's scripts made with openssl). Operators trust
the CA once on their machines; the device presents its certificate."""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import socket
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

EXIT_OK, EXIT_BAD_INPUT = 0, 2
CA_DAYS, DEVICE_DAYS = 3650, 825


def add_certs_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    certs = commands.add_parser(
        "certs",
        help="make a local CA and a device certificate for the API's HTTPS",
        description="Write ca.crt/ca.key (kept if they exist) and device.crt/device.key, signed by that CA, for "
        "HOST... (names and IP addresses), into FOLDER. Then set api.tls.cert_file and api.tls.key_file to "
        "device.crt and device.key, and give ca.crt to the API's clients.",
    )
    certs.add_argument("hosts", nargs="*", metavar="HOST", help="names and addresses (default: this host's name)")
    certs.add_argument("--out", type=Path, required=True, metavar="FOLDER", help="where to write the files")
    certs.set_defaults(command=_certs)


def _certs(args: argparse.Namespace) -> int:
    hosts = args.hosts or [socket.gethostname(), "localhost", "127.0.0.1"]
    try:
        written = make_certificates(args.out, hosts)
    except (OSError, ValueError) as error:
        print(f"appliance certs: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for path in written:
        print(path)
    return EXIT_OK


def make_certificates(folder: Path, hosts: list[str]) -> list[Path]:
    """The CA (made once, then reused) and a device certificate for `hosts`; the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key_path, ca_cert_path = folder / "ca.key", folder / "ca.crt"
    if ca_key_path.exists() and ca_cert_path.exists():
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{ca_key_path} is not a key this command made")
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Distancing appliance local CA")])
        ca_cert = (
            _builder(name, name, ca_key.public_key(), CA_DAYS)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        _write(ca_key_path, _private_pem(ca_key), private=True)
        _write(ca_cert_path, ca_cert.public_bytes(serialization.Encoding.PEM))
    device_key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0][:64])])
    device_cert = (
        _builder(subject, ca_cert.subject, device_key.public_key(), DEVICE_DAYS)
        .add_extension(x509.SubjectAlternativeName([_alternative_name(host) for host in hosts]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(folder / "device.key", _private_pem(device_key), private=True)
    _write(folder / "device.crt", device_cert.public_bytes(serialization.Encoding.PEM))
    return [ca_cert_path, folder / "device.crt", folder / "device.key"]


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePublicKey, days: int
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def _alternative_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, private: bool = False) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(data)
