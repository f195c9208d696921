"""gRPC glue of `sluice.training.v1.TrainingService`: request -> core call -> response."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
from sluice.training.v1 import training_service_pb2 as pb
from sluice.training.v1 import training_service_pb2_grpc as pb_grpc

from sluice_training.convert import job_to_proto
from sluice_training.core import TrainingCore

SERVICE_NAME = "sluice.training.v1.TrainingService"


class TrainingServicer(pb_grpc.TrainingServiceServicer):
    def __init__(self, core: TrainingCore) -> None:
        self.core = core

    def CreateTrainingJob(
        self, request: pb.CreateTrainingJobRequest, context: grpc.ServicerContext
    ) -> pb.CreateTrainingJobResponse:
        job = self.core.create(request.spec, dict(request.labels), request.request_id)
        return pb.CreateTrainingJobResponse(job=job_to_proto(job))

    def GetTrainingJob(
        self, request: pb.GetTrainingJobRequest, context: grpc.ServicerContext
    ) -> pb.GetTrainingJobResponse:
        return pb.GetTrainingJobResponse(job=job_to_proto(self.core.get(request.name)))

    def ListTrainingJobs(
        self, request: pb.ListTrainingJobsRequest, context: grpc.ServicerContext
    ) -> pb.ListTrainingJobsResponse:
        jobs, next_token = self.core.list(request.page_size, request.page_token)
        return pb.ListTrainingJobsResponse(
            jobs=[job_to_proto(job) for job in jobs], next_page_token=next_token
        )

    def CancelTrainingJob(
        self, request: pb.CancelTrainingJobRequest, context: grpc.ServicerContext
    ) -> pb.CancelTrainingJobResponse:
        return pb.CancelTrainingJobResponse(job=job_to_proto(self.core.cancel(request.name)))

    def WatchTrainingJob(
        self, request: pb.WatchTrainingJobRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.WatchTrainingJobResponse]:
        for job in self.core.watch(request.name, is_active=context.is_active):
            yield pb.WatchTrainingJobResponse(job=job_to_proto(job))


def register_with(core: TrainingCore) -> Callable[[grpc.Server], list[str]]:
    """A `register` callable for sluice_runtime's build_server and serve."""

    def register(server: grpc.Server) -> list[str]:
        pb_grpc.add_TrainingServiceServicer_to_server(TrainingServicer(core), server)
        return [SERVICE_NAME]

    return register
