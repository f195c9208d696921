"""The machinery shared by the typed clients: one generic way to call a stub method.

A client declares each RPC in one line::

    get_training_job = Unary("GetTrainingJob", GetTrainingJobRequest, GetTrainingJobResponse)

and callers get a typed method that takes the request message or its fields as keywords, applies
the default deadline (or the one given), and raises `SluiceRpcError` subclasses instead of
`grpc.RpcError`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar, overload

import grpc
from google.protobuf.message import Message

from sluice.client.channel import create_channel
from sluice.client.config import ClientConfig
from sluice.client.errors import from_rpc_error

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)
T = TypeVar("T")
CallMetadata = Sequence[tuple[str, str]]


class ServiceClient:
    """Base of the typed clients: owns (or borrows) a channel and the generated stub.

    Args:
        config: a `ClientConfig`, a "host:port" address (other settings from the environment), or
            None for `ClientConfig.from_env(service)`.
        channel: an existing channel to use instead of creating one; it is not closed by `close`
            and it keeps whatever interceptors it has (none of the client's retries are added).
    """

    service: ClassVar[str]
    # The generated stub class; called with the channel.
    stub_class: ClassVar[type[Any]]
    # Status codes retried besides UNAVAILABLE.
    retryable: ClassVar[frozenset[grpc.StatusCode]] = frozenset()

    def __init__(
        self, config: ClientConfig | str | None = None, *, channel: grpc.Channel | None = None
    ) -> None:
        if config is None:
            config = ClientConfig.from_env(self.service)
        elif isinstance(config, str):
            config = dataclasses.replace(ClientConfig.from_env(self.service), address=config)
        self.config = config
        self._owns_channel = channel is None
        self.channel = (
            channel if channel is not None else create_channel(config, retryable=self.retryable)
        )
        self.stub = self.stub_class(self.channel)

    def close(self) -> None:
        if self._owns_channel:
            self.channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config.address!r})"

    def call_unary(
        self,
        method: str,
        request: Message,
        timeout: float | None = None,
        metadata: CallMetadata | None = None,
    ) -> Any:
        """Calls the stub's `method` with the default deadline unless `timeout` is given."""
        deadline = self.config.deadline_seconds if timeout is None else timeout
        try:
            return getattr(self.stub, method)(request, timeout=deadline, metadata=metadata)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error

    def call_stream(
        self,
        method: str,
        request: Message,
        timeout: float | None = None,
        metadata: CallMetadata | None = None,
    ) -> Generator[Any, None, None]:
        """Starts a server stream. No deadline unless `timeout` is given: Watch streams last as
        long as the work they follow. Closing the iterator (or dropping it) cancels the call."""
        call = getattr(self.stub, method)(request, timeout=timeout, metadata=metadata)
        return _typed_errors(call)


def _typed_errors(call: Any) -> Generator[Any, None, None]:
    try:
        yield from call
    except grpc.RpcError as error:
        raise from_rpc_error(error) from error
    finally:
        cancel = getattr(call, "cancel", None)
        if cancel is not None:
            cancel()


def _request(request_type: type[Req], request: Req | None, fields: dict[str, Any]) -> Req:
    if request is None:
        try:
            return request_type(**fields)
        except (ValueError, TypeError) as error:
            raise TypeError(f"{request_type.__name__}: {error}") from error
    if fields:
        raise TypeError(
            f"pass either a {request_type.__name__} or its fields as keywords, not both"
        )
    if not isinstance(request, request_type):
        raise TypeError(f"expected a {request_type.__name__}, got {type(request).__name__}")
    return request


class Unary(Generic[Req, Resp]):
    """Declares a unary RPC of a client; see the module docstring."""

    def __init__(self, method: str, request_type: type[Req], response_type: type[Resp]) -> None:
        self.method = method
        self.request_type = request_type
        self.response_type = response_type
        self.__doc__ = f"The {method} RPC: {request_type.__name__} -> {response_type.__name__}."

    @overload
    def __get__(self, client: None, owner: type[Any]) -> Unary[Req, Resp]: ...
    @overload
    def __get__(self, client: ServiceClient, owner: type[Any]) -> BoundUnary[Req, Resp]: ...
    def __get__(
        self, client: ServiceClient | None, owner: type[Any]
    ) -> Unary[Req, Resp] | BoundUnary[Req, Resp]:
        return self if client is None else BoundUnary(self, client)


class BoundUnary(Generic[Req, Resp]):
    def __init__(self, rpc: Unary[Req, Resp], client: ServiceClient) -> None:
        self.rpc = rpc
        self.client = client
        self.__doc__ = rpc.__doc__

    def __call__(
        self,
        request: Req | None = None,
        /,
        *,
        timeout: float | None = None,
        metadata: CallMetadata | None = None,
        **fields: Any,
    ) -> Resp:
        """Calls the RPC with `request`, or with a request built from `fields`.

        Args:
            timeout: deadline in seconds for this call, retries included (default: the config's).
            metadata: extra headers for this call.
        """
        message = _request(self.rpc.request_type, request, fields)
        response: Resp = self.client.call_unary(self.rpc.method, message, timeout, metadata)
        return response


class ServerStream(Generic[Req, Resp]):
    """Declares a server-streaming RPC (Watch*) of a client; calling it returns an iterator."""

    def __init__(self, method: str, request_type: type[Req], response_type: type[Resp]) -> None:
        self.method = method
        self.request_type = request_type
        self.response_type = response_type
        self.__doc__ = (
            f"The {method} RPC: {request_type.__name__} -> iterator of {response_type.__name__}."
        )

    @overload
    def __get__(self, client: None, owner: type[Any]) -> ServerStream[Req, Resp]: ...
    @overload
    def __get__(self, client: ServiceClient, owner: type[Any]) -> BoundServerStream[Req, Resp]: ...
    def __get__(
        self, client: ServiceClient | None, owner: type[Any]
    ) -> ServerStream[Req, Resp] | BoundServerStream[Req, Resp]:
        return self if client is None else BoundServerStream(self, client)


class BoundServerStream(Generic[Req, Resp]):
    def __init__(self, rpc: ServerStream[Req, Resp], client: ServiceClient) -> None:
        self.rpc = rpc
        self.client = client
        self.__doc__ = rpc.__doc__

    def __call__(
        self,
        request: Req | None = None,
        /,
        *,
        timeout: float | None = None,
        metadata: CallMetadata | None = None,
        **fields: Any,
    ) -> Generator[Resp, None, None]:
        """Starts the stream; no deadline unless `timeout` is given. `close()` cancels it."""
        message = _request(self.rpc.request_type, request, fields)
        stream: Generator[Resp, None, None] = self.client.call_stream(
            self.rpc.method, message, timeout, metadata
        )
        return stream


class _Page(Protocol):
    @property
    def next_page_token(self) -> str: ...


Page = TypeVar("Page", bound=_Page)


def paginate(fetch: Callable[[str], Page], items: Callable[[Page], Iterable[T]]) -> Iterator[T]:
    """Every item of every page: calls `fetch(page_token)` until `next_page_token` is empty.

    Pages are fetched lazily, as the caller iterates.
    """
    token = ""
    seen: set[str] = set()
    while True:
        page = fetch(token)
        yield from items(page)
        token = page.next_page_token
        if not token:
            return
        if token in seen:
            # A server bug would otherwise loop forever.
            raise RuntimeError(f"the server returned page token {token!r} twice")
        seen.add(token)
