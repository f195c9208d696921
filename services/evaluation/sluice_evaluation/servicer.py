"""gRPC glue: each RPC converts its request, calls the core and converts the answer.

Domain errors raised by the core travel untouched to the runtime's error interceptor, which turns
them into status codes with google.rpc details.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import grpc
from sluice.evaluation.v1 import evaluation_service_pb2 as pb
from sluice.evaluation.v1 import evaluation_service_pb2_grpc as pb_grpc
from sluice_runtime.server import RegisterServices

from sluice_evaluation import convert
from sluice_evaluation.core import EvaluationCore

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["EvaluationService"].full_name

Ctx = grpc.ServicerContext


class EvaluationServicer(pb_grpc.EvaluationServiceServicer):  # type: ignore[misc]
    def __init__(self, core: EvaluationCore) -> None:
        self._core = core

    def CreateEvaluation(
        self, request: pb.CreateEvaluationRequest, context: Ctx
    ) -> pb.CreateEvaluationResponse:
        job = self._core.create_evaluation(
            convert.spec_from_proto(request.spec), dict(request.labels), request.request_id
        )
        return pb.CreateEvaluationResponse(evaluation=convert.evaluation_to_proto(job))

    def GetEvaluation(
        self, request: pb.GetEvaluationRequest, context: Ctx
    ) -> pb.GetEvaluationResponse:
        job = self._core.get_evaluation(request.name)
        return pb.GetEvaluationResponse(evaluation=convert.evaluation_to_proto(job))

    def ListEvaluations(
        self, request: pb.ListEvaluationsRequest, context: Ctx
    ) -> pb.ListEvaluationsResponse:
        jobs, token = self._core.list_evaluations(
            request.model_artifact_id, request.page_size, request.page_token
        )
        return pb.ListEvaluationsResponse(
            evaluations=[convert.evaluation_to_proto(job) for job in jobs], next_page_token=token
        )

    def CancelEvaluation(
        self, request: pb.CancelEvaluationRequest, context: Ctx
    ) -> pb.CancelEvaluationResponse:
        job = self._core.cancel_evaluation(request.name)
        return pb.CancelEvaluationResponse(evaluation=convert.evaluation_to_proto(job))

    def WatchEvaluation(
        self, request: pb.WatchEvaluationRequest, context: Ctx
    ) -> Iterator[pb.WatchEvaluationResponse]:
        for job in self._core.watch_evaluation(request.name, context.is_active):
            yield pb.WatchEvaluationResponse(evaluation=convert.evaluation_to_proto(job))

    def CompareEvaluations(
        self, request: pb.CompareEvaluationsRequest, context: Ctx
    ) -> pb.CompareEvaluationsResponse:
        rows = self._core.compare_evaluations(request.baseline, request.candidate)
        return pb.CompareEvaluationsResponse(
            comparisons=[
                pb.MetricComparison(
                    slice=row.slice,
                    metric=row.metric,
                    baseline=row.baseline,
                    candidate=row.candidate,
                    difference=row.difference,
                )
                for row in rows
            ]
        )

    def OverrideVerdict(
        self, request: pb.OverrideVerdictRequest, context: Ctx
    ) -> pb.OverrideVerdictResponse:
        job = self._core.override_verdict(
            request.name, convert.verdict_from_proto(request.verdict), request.reason, request.actor
        )
        return pb.OverrideVerdictResponse(evaluation=convert.evaluation_to_proto(job))

    def CreateInfraValidation(
        self, request: pb.CreateInfraValidationRequest, context: Ctx
    ) -> pb.CreateInfraValidationResponse:
        job = self._core.create_infra_validation(
            convert.infra_spec_from_request(request), request.request_id
        )
        return pb.CreateInfraValidationResponse(
            infra_validation=convert.infra_validation_to_proto(job)
        )

    def GetInfraValidation(
        self, request: pb.GetInfraValidationRequest, context: Ctx
    ) -> pb.GetInfraValidationResponse:
        job = self._core.get_infra_validation(request.name)
        return pb.GetInfraValidationResponse(
            infra_validation=convert.infra_validation_to_proto(job)
        )


def register_with(core: EvaluationCore) -> RegisterServices:
    def register(server: grpc.Server) -> Iterable[str]:
        pb_grpc.add_EvaluationServiceServicer_to_server(EvaluationServicer(core), server)
        return [SERVICE_NAME]

    return register
