"""TLS and mutual TLS with certificates from a throwaway CA made here."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sluice_runtime.config import ServerConfig
from sluice_runtime.server import RunningServer

# Fixture factories from conftest.py (runtime_start_server, runtime_connect).
StartServer = Callable[..., RunningServer]
Connect = Callable[..., Any]


@dataclass(frozen=True)
class Identity:
    certificate: bytes
    private_key: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(common_name: str) -> tuple[Identity, ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
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
        .sign(key, hashes.SHA256())
    )
    return _identity(certificate, key), key, certificate


def issue(
    ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, common_name: str, *, server: bool
) -> Identity:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if server:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return _identity(builder.sign(ca_key, hashes.SHA256()), key)


def _identity(certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Identity:
    return Identity(
        certificate=certificate.public_bytes(serialization.Encoding.PEM),
        private_key=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


@dataclass(frozen=True)
class Pki:
    ca: Identity
    server: Identity
    client: Identity
    stranger: Identity  # a client certificate from another CA
    cert_file: Path
    key_file: Path
    ca_file: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    ca, ca_key, ca_cert = make_ca("sluice test CA")
    _, other_key, other_cert = make_ca("some other CA")
    directory = tmp_path_factory.mktemp("pki")
    server = issue(ca_key, ca_cert, "localhost", server=True)
    files = {
        "server.pem": server.certificate,
        "server.key": server.private_key,
        "ca.pem": ca.certificate,
    }
    for name, content in files.items():
        (directory / name).write_bytes(content)
    return Pki(
        ca=ca,
        server=server,
        client=issue(ca_key, ca_cert, "pipeline-service", server=False),
        stranger=issue(other_key, other_cert, "intruder", server=False),
        cert_file=directory / "server.pem",
        key_file=directory / "server.key",
        ca_file=directory / "ca.pem",
    )


def secure_channel(port: int, pki: Pki, client: Identity | None = None) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.ca.certificate,
        private_key=None if client is None else client.private_key,
        certificate_chain=None if client is None else client.certificate,
    )
    return grpc.secure_channel(f"127.0.0.1:{port}", credentials)


def test_tls_serves_clients_that_trust_the_ca(
    pki: Pki, runtime_start_server: StartServer, runtime_connect: Connect
) -> None:
    running = runtime_start_server(tls_cert=pki.cert_file, tls_key=pki.key_file)
    assert running.config.tls_enabled and not running.config.mutual_tls

    client = runtime_connect(running.port, channel=secure_channel(running.port, pki))
    assert client.call("Echo", "sealed") == "sealed"

    with pytest.raises(grpc.RpcError) as plaintext:
        runtime_connect(running.port).call("Echo", "open", timeout=5)
    assert plaintext.value.code() == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_requires_a_client_certificate_from_the_ca(
    pki: Pki, runtime_start_server: StartServer, runtime_connect: Connect
) -> None:
    running = runtime_start_server(
        tls_cert=pki.cert_file, tls_key=pki.key_file, tls_client_ca=pki.ca_file
    )
    assert running.config.mutual_tls

    trusted = runtime_connect(running.port, channel=secure_channel(running.port, pki, pki.client))
    assert trusted.call("Echo", "hello") == "hello"

    for identity in (None, pki.stranger):
        channel = secure_channel(running.port, pki, identity)
        with pytest.raises(grpc.RpcError) as refused:
            runtime_connect(running.port, channel=channel).call("Echo", "hello", timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_tls_settings_come_from_the_environment(pki: Pki) -> None:
    config = ServerConfig.from_env(
        "echo",
        0,
        {
            "SLUICE_TLS_CERT": str(pki.cert_file),
            "SLUICE_TLS_KEY": str(pki.key_file),
            "SLUICE_TLS_CLIENT_CA": str(pki.ca_file),
        },
    )

    assert (config.tls_cert, config.tls_key, config.tls_client_ca) == (
        pki.cert_file,
        pki.key_file,
        pki.ca_file,
    )
