"""Client of the training service: training jobs."""

from __future__ import annotations

from collections.abc import Iterator

from sluice.client._rpc import ServerStream, ServiceClient, Unary, paginate
from sluice.training.v1 import training_job_pb2, training_service_pb2_grpc
from sluice.training.v1 import training_service_pb2 as pb


class TrainingClient(ServiceClient):
    """The training service; each RPC is a method named after it (see `ServiceClient`)."""

    service = "training"
    stub_class = training_service_pb2_grpc.TrainingServiceStub

    create_training_job = Unary(
        "CreateTrainingJob", pb.CreateTrainingJobRequest, pb.CreateTrainingJobResponse
    )
    get_training_job = Unary("GetTrainingJob", pb.GetTrainingJobRequest, pb.GetTrainingJobResponse)
    list_training_jobs = Unary(
        "ListTrainingJobs", pb.ListTrainingJobsRequest, pb.ListTrainingJobsResponse
    )
    cancel_training_job = Unary(
        "CancelTrainingJob", pb.CancelTrainingJobRequest, pb.CancelTrainingJobResponse
    )
    watch_training_job = ServerStream(
        "WatchTrainingJob", pb.WatchTrainingJobRequest, pb.WatchTrainingJobResponse
    )

    def iter_training_jobs(
        self, *, page_size: int = 0, timeout: float | None = None
    ) -> Iterator[training_job_pb2.TrainingJob]:
        return paginate(
            lambda token: self.list_training_jobs(
                page_size=page_size, page_token=token, timeout=timeout
            ),
            lambda page: page.jobs,
        )
