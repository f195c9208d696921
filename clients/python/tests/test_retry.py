"""Retries with backoff, the overall deadline, and the bearer token, against real servers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import ServiceDescriptor
from sluice.client import (
    AbortedError,
    ClientConfig,
    DeadlineExceededError,
    MetadataClient,
    RetryPolicy,
    TrainingClient,
    UnavailableError,
)
from sluice.client.interceptors import RetryInterceptor
from sluice.common.v1 import job_pb2
from sluice.metadata.v1 import metadata_service_pb2 as mpb
from sluice.training.v1 import training_service_pb2 as tpb

Serve = Callable[[ServiceDescriptor, object], str]
METADATA = mpb.DESCRIPTOR.services_by_name["MetadataService"]
TRAINING = tpb.DESCRIPTOR.services_by_name["TrainingService"]
FAST = RetryPolicy(max_attempts=5, initial_backoff=0.01, max_backoff=0.02)


class FlakyMetadata:
    """Fails the first `failures` calls of GetType with `code`, then answers."""

    def __init__(self, failures: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE):
        self.failures = failures
        self.code = code
        self.attempts = 0
        self.time_remaining: list[float] = []
        self.metadata: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def GetType(self, request: mpb.GetTypeRequest, context: grpc.ServicerContext) -> Any:
        with self.lock:
            self.attempts += 1
            attempt = self.attempts
        self.time_remaining.append(context.time_remaining())
        self.metadata.append(dict(context.invocation_metadata()))
        if attempt <= self.failures:
            context.abort(self.code, f"attempt {attempt} failed")
        return mpb.GetTypeResponse(type={"id": 7, "name": request.name})


class FlakyTraining:
    def __init__(
        self, failures: int, code: grpc.StatusCode, fail_after_first_message: bool = False
    ):
        self.failures = failures
        self.code = code
        self.fail_after_first_message = fail_after_first_message
        self.attempts = 0

    def GetTrainingJob(
        self, request: tpb.GetTrainingJobRequest, context: grpc.ServicerContext
    ) -> Any:
        self.attempts += 1
        if self.attempts <= self.failures:
            context.abort(self.code, "conflict")
        return tpb.GetTrainingJobResponse(job={"name": request.name})

    def WatchTrainingJob(
        self, request: tpb.WatchTrainingJobRequest, context: grpc.ServicerContext
    ) -> Iterator[tpb.WatchTrainingJobResponse]:
        self.attempts += 1
        if self.attempts <= self.failures:
            context.abort(self.code, "not yet")
        yield tpb.WatchTrainingJobResponse(job={"state": job_pb2.JOB_STATE_RUNNING})
        if self.fail_after_first_message:
            context.abort(self.code, "lost the worker")
        yield tpb.WatchTrainingJobResponse(job={"state": job_pb2.JOB_STATE_SUCCEEDED})


def test_unavailable_twice_then_success_takes_three_attempts(serve: Serve) -> None:
    servicer = FlakyMetadata(failures=2)
    address = serve(METADATA, servicer)

    with MetadataClient(ClientConfig(address, retry=FAST)) as client:
        response = client.get_type(name="Model")

    assert response.type.id == 7
    assert servicer.attempts == 3


def test_gives_up_after_max_attempts(serve: Serve) -> None:
    servicer = FlakyMetadata(failures=100)
    address = serve(METADATA, servicer)

    with (
        MetadataClient(ClientConfig(address, retry=FAST)) as client,
        pytest.raises(UnavailableError) as caught,
    ):
        client.get_type(name="Model")

    assert servicer.attempts == 5
    assert "attempt 5 failed" in str(caught.value)


def test_aborted_is_retried_by_the_metadata_client(serve: Serve) -> None:
    servicer = FlakyMetadata(failures=1, code=grpc.StatusCode.ABORTED)
    address = serve(METADATA, servicer)

    with MetadataClient(ClientConfig(address, retry=FAST)) as client:
        assert client.get_type(name="Model").type.id == 7

    assert servicer.attempts == 2


def test_aborted_is_not_retried_where_the_client_does_not_allow_it(serve: Serve) -> None:
    servicer = FlakyTraining(failures=1, code=grpc.StatusCode.ABORTED)
    address = serve(TRAINING, servicer)

    with TrainingClient(ClientConfig(address, retry=FAST)) as client, pytest.raises(AbortedError):
        client.get_training_job(name="jobs/1")

    assert servicer.attempts == 1


def test_retries_stop_at_the_overall_deadline(serve: Serve) -> None:
    servicer = FlakyMetadata(failures=100)
    address = serve(METADATA, servicer)
    slow = RetryPolicy(max_attempts=5, initial_backoff=0.3, multiplier=1, jitter=0)

    with (
        MetadataClient(ClientConfig(address, retry=slow)) as client,
        pytest.raises((UnavailableError, DeadlineExceededError)),
    ):
        client.get_type(name="Model", timeout=0.5)

    # A second wait of 0.3 s would end past the 0.5 s deadline, so at most two attempts ran,
    # and none was given more time than the whole call had (gRPC rounds deadlines up a little).
    assert 1 <= servicer.attempts <= 2
    assert all(remaining < 0.6 for remaining in servicer.time_remaining)


def test_a_slow_server_ends_in_deadline_exceeded(serve: Serve, release: threading.Event) -> None:
    class Hanging:
        def GetType(self, request: mpb.GetTypeRequest, context: grpc.ServicerContext) -> Any:
            release.wait(5)
            return mpb.GetTypeResponse()

    address = serve(METADATA, Hanging())
    with (
        MetadataClient(ClientConfig(address, retry=FAST)) as client,
        pytest.raises(DeadlineExceededError),
    ):
        client.get_type(name="Model", timeout=0.2)


def test_default_deadline_comes_from_the_config(serve: Serve) -> None:
    servicer = FlakyMetadata(failures=0)
    address = serve(METADATA, servicer)

    with MetadataClient(ClientConfig(address, deadline_seconds=3)) as client:
        client.get_type(name="Model")

    # The config's 3 s, not the 30 s default (gRPC rounds deadlines up a little).
    assert 0 < servicer.time_remaining[0] < 3.5


def test_bearer_token_arrives_at_the_server_on_every_attempt(serve: Serve) -> None:
    servicer = FlakyMetadata(failures=1)
    address = serve(METADATA, servicer)

    with MetadataClient(ClientConfig(address, retry=FAST, token="s3cret")) as client:
        client.get_type(name="Model", metadata=[("x-request-id", "r1")])

    assert len(servicer.metadata) == 2
    for metadata in servicer.metadata:
        assert metadata["authorization"] == "Bearer s3cret"
        assert metadata["x-request-id"] == "r1"


def test_no_token_no_authorization_header(serve: Serve) -> None:
    servicer = FlakyMetadata(failures=0)
    address = serve(METADATA, servicer)

    with MetadataClient(ClientConfig(address)) as client:
        client.get_type(name="Model")

    assert "authorization" not in servicer.metadata[0]


def test_stream_is_retried_before_its_first_message(serve: Serve) -> None:
    servicer = FlakyTraining(failures=2, code=grpc.StatusCode.UNAVAILABLE)
    address = serve(TRAINING, servicer)

    with TrainingClient(ClientConfig(address, retry=FAST)) as client:
        states = [r.job.state for r in client.watch_training_job(name="jobs/1")]

    assert states == [job_pb2.JOB_STATE_RUNNING, job_pb2.JOB_STATE_SUCCEEDED]
    assert servicer.attempts == 3


def test_stream_is_not_retried_after_a_message(serve: Serve) -> None:
    servicer = FlakyTraining(
        failures=0, code=grpc.StatusCode.UNAVAILABLE, fail_after_first_message=True
    )
    address = serve(TRAINING, servicer)

    received = []
    with (
        TrainingClient(ClientConfig(address, retry=FAST)) as client,
        pytest.raises(UnavailableError),
    ):
        for response in client.watch_training_job(name="jobs/1"):
            received.append(response.job.state)

    assert received == [job_pb2.JOB_STATE_RUNNING]
    assert servicer.attempts == 1


def test_closing_a_stream_early_cancels_it(serve: Serve) -> None:
    servicer = FlakyTraining(failures=0, code=grpc.StatusCode.UNAVAILABLE)
    address = serve(TRAINING, servicer)

    with TrainingClient(ClientConfig(address, retry=FAST)) as client:
        stream = client.watch_training_job(name="jobs/1")
        first = next(stream)
        stream.close()

    assert first.job.state == job_pb2.JOB_STATE_RUNNING
    with pytest.raises(StopIteration):
        next(stream)


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=0.5, multiplier=2, jitter=0.5)
    assert [policy.backoff(n, 0.0) for n in (1, 2, 3, 4)] == pytest.approx([0.1, 0.2, 0.4, 0.5])
    # Jitter takes off up to half of the wait.
    assert policy.backoff(2, 0.999) == pytest.approx(0.1, abs=0.001)


class _Outcome:
    def __init__(self, code: grpc.StatusCode):
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code


class _Details(grpc.ClientCallDetails):
    method = "/x/Y"
    timeout = None
    metadata = None
    credentials = None
    wait_for_ready = None
    compression = None


def test_retry_interceptor_sleeps_the_schedule_it_computes() -> None:
    waits: list[float] = []
    interceptor = RetryInterceptor(FAST, sleep=waits.append, rng=lambda: 0.0)
    outcomes = iter([grpc.StatusCode.UNAVAILABLE] * 3 + [grpc.StatusCode.OK])

    result = interceptor.intercept_unary_unary(
        lambda details, request: _Outcome(next(outcomes)), _Details(), object()
    )

    assert result.code() == grpc.StatusCode.OK
    assert waits == pytest.approx([0.01, 0.02, 0.02])
