"""Fixtures: real gRPC servers on 127.0.0.1, started inside the test process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message_factory import GetMessageClass


@pytest.fixture
def grpc_server() -> Iterator[Callable[..., str]]:
    """start(*generic_handlers, setup=None) -> "127.0.0.1:<port>" of a running server.

    `setup(server)` may add servicers (grpc health, for example). Servers stop when the test ends.
    """
    servers: list[grpc.Server] = []

    def start(
        *handlers: grpc.GenericRpcHandler[Any, Any],
        setup: Callable[[grpc.Server], None] | None = None,
    ) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        if handlers:
            server.add_generic_rpc_handlers(handlers)
        if setup is not None:
            setup(server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop(None).wait(5)


@pytest.fixture
def serve(grpc_server: Callable[..., str]) -> Callable[[ServiceDescriptor, object], str]:
    """serve(service_descriptor, implementation) -> address of a server for that service.

    The implementation is any object with methods named like the RPCs it answers
    (``def GetType(self, request, context)``); the others answer UNIMPLEMENTED. Unlike the
    generated servicer base classes, it need not implement everything.
    """

    def start(service: ServiceDescriptor, implementation: object) -> str:
        handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
        for method in service.methods:
            function = getattr(implementation, method.name, None)
            if function is None:
                continue
            make = (
                grpc.unary_stream_rpc_method_handler
                if method.server_streaming
                else grpc.unary_unary_rpc_method_handler
            )
            handlers[method.name] = make(
                function,
                request_deserializer=GetMessageClass(method.input_type).FromString,
                response_serializer=GetMessageClass(method.output_type).SerializeToString,
            )
        return grpc_server(grpc.method_handlers_generic_handler(service.full_name, handlers))

    return start


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """An event slow handlers wait on; set at teardown so their threads end promptly."""
    event = threading.Event()
    yield event
    event.set()
