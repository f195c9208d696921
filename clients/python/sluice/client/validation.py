"""Client of the validation service: statistics jobs, schema inference, anomalies, drift, skew."""

from __future__ import annotations

from collections.abc import Iterator

from sluice.client._rpc import ServerStream, ServiceClient, Unary, paginate
from sluice.validation.v1 import statistics_job_pb2, validation_service_pb2_grpc
from sluice.validation.v1 import validation_service_pb2 as pb


class ValidationClient(ServiceClient):
    """The validation service; each RPC is a method named after it (see `ServiceClient`)."""

    service = "validation"
    stub_class = validation_service_pb2_grpc.ValidationServiceStub

    create_statistics_job = Unary(
        "CreateStatisticsJob", pb.CreateStatisticsJobRequest, pb.CreateStatisticsJobResponse
    )
    get_statistics_job = Unary(
        "GetStatisticsJob", pb.GetStatisticsJobRequest, pb.GetStatisticsJobResponse
    )
    list_statistics_jobs = Unary(
        "ListStatisticsJobs", pb.ListStatisticsJobsRequest, pb.ListStatisticsJobsResponse
    )
    cancel_statistics_job = Unary(
        "CancelStatisticsJob", pb.CancelStatisticsJobRequest, pb.CancelStatisticsJobResponse
    )
    watch_statistics_job = ServerStream(
        "WatchStatisticsJob", pb.WatchStatisticsJobRequest, pb.WatchStatisticsJobResponse
    )
    infer_schema = Unary("InferSchema", pb.InferSchemaRequest, pb.InferSchemaResponse)
    validate_statistics = Unary(
        "ValidateStatistics", pb.ValidateStatisticsRequest, pb.ValidateStatisticsResponse
    )
    compare_statistics = Unary(
        "CompareStatistics", pb.CompareStatisticsRequest, pb.CompareStatisticsResponse
    )

    def iter_statistics_jobs(
        self, *, page_size: int = 0, timeout: float | None = None
    ) -> Iterator[statistics_job_pb2.StatisticsJob]:
        return paginate(
            lambda token: self.list_statistics_jobs(
                page_size=page_size, page_token=token, timeout=timeout
            ),
            lambda page: page.jobs,
        )
