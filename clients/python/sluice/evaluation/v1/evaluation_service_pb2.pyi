from sluice.common.v1 import data_pb2 as _data_pb2
from sluice.evaluation.v1 import evaluation_pb2 as _evaluation_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateEvaluationRequest(_message.Message):
    __slots__ = ("spec", "labels", "request_id")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SPEC_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    spec: _evaluation_pb2.EvaluationSpec
    labels: _containers.ScalarMap[str, str]
    request_id: str
    def __init__(self, spec: _Optional[_Union[_evaluation_pb2.EvaluationSpec, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateEvaluationResponse(_message.Message):
    __slots__ = ("evaluation",)
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    evaluation: _evaluation_pb2.Evaluation
    def __init__(self, evaluation: _Optional[_Union[_evaluation_pb2.Evaluation, _Mapping]] = ...) -> None: ...

class GetEvaluationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetEvaluationResponse(_message.Message):
    __slots__ = ("evaluation",)
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    evaluation: _evaluation_pb2.Evaluation
    def __init__(self, evaluation: _Optional[_Union[_evaluation_pb2.Evaluation, _Mapping]] = ...) -> None: ...

class ListEvaluationsRequest(_message.Message):
    __slots__ = ("model_artifact_id", "page_size", "page_token")
    MODEL_ARTIFACT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    model_artifact_id: int
    page_size: int
    page_token: str
    def __init__(self, model_artifact_id: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListEvaluationsResponse(_message.Message):
    __slots__ = ("evaluations", "next_page_token")
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    evaluations: _containers.RepeatedCompositeFieldContainer[_evaluation_pb2.Evaluation]
    next_page_token: str
    def __init__(self, evaluations: _Optional[_Iterable[_Union[_evaluation_pb2.Evaluation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelEvaluationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CancelEvaluationResponse(_message.Message):
    __slots__ = ("evaluation",)
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    evaluation: _evaluation_pb2.Evaluation
    def __init__(self, evaluation: _Optional[_Union[_evaluation_pb2.Evaluation, _Mapping]] = ...) -> None: ...

class WatchEvaluationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class WatchEvaluationResponse(_message.Message):
    __slots__ = ("evaluation",)
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    evaluation: _evaluation_pb2.Evaluation
    def __init__(self, evaluation: _Optional[_Union[_evaluation_pb2.Evaluation, _Mapping]] = ...) -> None: ...

class CompareEvaluationsRequest(_message.Message):
    __slots__ = ("baseline", "candidate")
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    baseline: str
    candidate: str
    def __init__(self, baseline: _Optional[str] = ..., candidate: _Optional[str] = ...) -> None: ...

class MetricComparison(_message.Message):
    __slots__ = ("slice", "metric", "baseline", "candidate", "difference")
    SLICE_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    slice: str
    metric: str
    baseline: float
    candidate: float
    difference: float
    def __init__(self, slice: _Optional[str] = ..., metric: _Optional[str] = ..., baseline: _Optional[float] = ..., candidate: _Optional[float] = ..., difference: _Optional[float] = ...) -> None: ...

class CompareEvaluationsResponse(_message.Message):
    __slots__ = ("comparisons",)
    COMPARISONS_FIELD_NUMBER: _ClassVar[int]
    comparisons: _containers.RepeatedCompositeFieldContainer[MetricComparison]
    def __init__(self, comparisons: _Optional[_Iterable[_Union[MetricComparison, _Mapping]]] = ...) -> None: ...

class OverrideVerdictRequest(_message.Message):
    __slots__ = ("name", "verdict", "reason", "actor")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    name: str
    verdict: _evaluation_pb2.Verdict
    reason: str
    actor: str
    def __init__(self, name: _Optional[str] = ..., verdict: _Optional[_Union[_evaluation_pb2.Verdict, str]] = ..., reason: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class OverrideVerdictResponse(_message.Message):
    __slots__ = ("evaluation",)
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    evaluation: _evaluation_pb2.Evaluation
    def __init__(self, evaluation: _Optional[_Union[_evaluation_pb2.Evaluation, _Mapping]] = ...) -> None: ...

class CreateInfraValidationRequest(_message.Message):
    __slots__ = ("model", "canary_data", "canary_requests", "load_timeout_seconds", "latency_budget_ms", "request_id")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CANARY_DATA_FIELD_NUMBER: _ClassVar[int]
    CANARY_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    LOAD_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_BUDGET_MS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    model: _data_pb2.ArtifactRef
    canary_data: _data_pb2.DataSource
    canary_requests: int
    load_timeout_seconds: float
    latency_budget_ms: float
    request_id: str
    def __init__(self, model: _Optional[_Union[_data_pb2.ArtifactRef, _Mapping]] = ..., canary_data: _Optional[_Union[_data_pb2.DataSource, _Mapping]] = ..., canary_requests: _Optional[int] = ..., load_timeout_seconds: _Optional[float] = ..., latency_budget_ms: _Optional[float] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateInfraValidationResponse(_message.Message):
    __slots__ = ("infra_validation",)
    INFRA_VALIDATION_FIELD_NUMBER: _ClassVar[int]
    infra_validation: _evaluation_pb2.InfraValidation
    def __init__(self, infra_validation: _Optional[_Union[_evaluation_pb2.InfraValidation, _Mapping]] = ...) -> None: ...

class GetInfraValidationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetInfraValidationResponse(_message.Message):
    __slots__ = ("infra_validation",)
    INFRA_VALIDATION_FIELD_NUMBER: _ClassVar[int]
    infra_validation: _evaluation_pb2.InfraValidation
    def __init__(self, infra_validation: _Optional[_Union[_evaluation_pb2.InfraValidation, _Mapping]] = ...) -> None: ...
