"""Client of the evaluation service: evaluations, verdicts and infra validations."""

from __future__ import annotations

from collections.abc import Iterator

from sluice.client._rpc import ServerStream, ServiceClient, Unary, paginate
from sluice.evaluation.v1 import evaluation_pb2, evaluation_service_pb2_grpc
from sluice.evaluation.v1 import evaluation_service_pb2 as pb


class EvaluationClient(ServiceClient):
    """The evaluation service; each RPC is a method named after it (see `ServiceClient`)."""

    service = "evaluation"
    stub_class = evaluation_service_pb2_grpc.EvaluationServiceStub

    create_evaluation = Unary(
        "CreateEvaluation", pb.CreateEvaluationRequest, pb.CreateEvaluationResponse
    )
    get_evaluation = Unary("GetEvaluation", pb.GetEvaluationRequest, pb.GetEvaluationResponse)
    list_evaluations = Unary(
        "ListEvaluations", pb.ListEvaluationsRequest, pb.ListEvaluationsResponse
    )
    cancel_evaluation = Unary(
        "CancelEvaluation", pb.CancelEvaluationRequest, pb.CancelEvaluationResponse
    )
    watch_evaluation = ServerStream(
        "WatchEvaluation", pb.WatchEvaluationRequest, pb.WatchEvaluationResponse
    )
    compare_evaluations = Unary(
        "CompareEvaluations", pb.CompareEvaluationsRequest, pb.CompareEvaluationsResponse
    )
    override_verdict = Unary(
        "OverrideVerdict", pb.OverrideVerdictRequest, pb.OverrideVerdictResponse
    )
    create_infra_validation = Unary(
        "CreateInfraValidation", pb.CreateInfraValidationRequest, pb.CreateInfraValidationResponse
    )
    get_infra_validation = Unary(
        "GetInfraValidation", pb.GetInfraValidationRequest, pb.GetInfraValidationResponse
    )

    def iter_evaluations(
        self, model_artifact_id: int = 0, *, page_size: int = 0, timeout: float | None = None
    ) -> Iterator[evaluation_pb2.Evaluation]:
        """Every evaluation, or those of one model artifact."""
        return paginate(
            lambda token: self.list_evaluations(
                model_artifact_id=model_artifact_id,
                page_size=page_size,
                page_token=token,
                timeout=timeout,
            ),
            lambda page: page.evaluations,
        )
