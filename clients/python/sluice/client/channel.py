"""Builds the gRPC channel every client uses: TLS or plaintext, size limits, interceptors."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import grpc

from sluice.client.config import ClientConfig, TlsConfig
from sluice.client.interceptors import HeaderInterceptor, RetryInterceptor


def create_channel(
    config: ClientConfig, *, retryable: Iterable[grpc.StatusCode] = ()
) -> grpc.Channel:
    """A channel to `config.address`, with retries, the bearer token and trace propagation.

    Args:
        config: where and how to connect.
        retryable: status codes to retry besides UNAVAILABLE (e.g. ABORTED for transactional
            services).
    """
    options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", config.max_message_bytes),
        ("grpc.max_receive_message_length", config.max_message_bytes),
    ]
    if config.tls is None:
        channel = grpc.insecure_channel(config.address, options=options)
    else:
        if config.tls.server_name_override:
            options.append(("grpc.ssl_target_name_override", config.tls.server_name_override))
        channel = grpc.secure_channel(config.address, _credentials(config.tls), options=options)

    if config.tracing:
        channel = _with_tracing(channel)
    interceptors: list[Any] = [RetryInterceptor(config.retry, retryable)]
    if config.token:
        interceptors.append(HeaderInterceptor([("authorization", f"Bearer {config.token}")]))
    return grpc.intercept_channel(channel, *interceptors)


def _credentials(tls: TlsConfig) -> grpc.ChannelCredentials:
    def read(path: str | None, what: str) -> bytes | None:
        if path is None:
            return None
        try:
            return Path(path).read_bytes()
        except OSError as error:
            raise ValueError(f"{what}: cannot read {path!r}: {error.strerror}") from error

    return grpc.ssl_channel_credentials(
        root_certificates=read(tls.root_ca_path, "tls.root_ca_path"),
        private_key=read(tls.client_key_path, "tls.client_key_path"),
        certificate_chain=read(tls.client_cert_path, "tls.client_cert_path"),
    )


def _with_tracing(channel: grpc.Channel) -> grpc.Channel:
    """Adds OpenTelemetry's client interceptor when it is installed (it is optional).

    Innermost of all interceptors, so each attempt is its own span and carries the trace context
    to the server.
    """
    try:
        from opentelemetry.instrumentation.grpc import client_interceptor, grpcext
    except ImportError:
        return channel
    traced: grpc.Channel = grpcext.intercept_channel(channel, client_interceptor())  # type: ignore[no-untyped-call]
    return traced
