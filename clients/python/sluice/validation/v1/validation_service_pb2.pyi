from sluice.common.v1 import data_pb2 as _data_pb2
from sluice.validation.v1 import statistics_job_pb2 as _statistics_job_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Severity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEVERITY_UNSPECIFIED: _ClassVar[Severity]
    SEVERITY_WARNING: _ClassVar[Severity]
    SEVERITY_ERROR: _ClassVar[Severity]

class ComparisonKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMPARISON_KIND_UNSPECIFIED: _ClassVar[ComparisonKind]
    COMPARISON_KIND_DRIFT: _ClassVar[ComparisonKind]
    COMPARISON_KIND_SKEW: _ClassVar[ComparisonKind]
SEVERITY_UNSPECIFIED: Severity
SEVERITY_WARNING: Severity
SEVERITY_ERROR: Severity
COMPARISON_KIND_UNSPECIFIED: ComparisonKind
COMPARISON_KIND_DRIFT: ComparisonKind
COMPARISON_KIND_SKEW: ComparisonKind

class CreateStatisticsJobRequest(_message.Message):
    __slots__ = ("job", "request_id")
    JOB_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    job: _statistics_job_pb2.StatisticsJob
    request_id: str
    def __init__(self, job: _Optional[_Union[_statistics_job_pb2.StatisticsJob, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateStatisticsJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _statistics_job_pb2.StatisticsJob
    def __init__(self, job: _Optional[_Union[_statistics_job_pb2.StatisticsJob, _Mapping]] = ...) -> None: ...

class GetStatisticsJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetStatisticsJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _statistics_job_pb2.StatisticsJob
    def __init__(self, job: _Optional[_Union[_statistics_job_pb2.StatisticsJob, _Mapping]] = ...) -> None: ...

class ListStatisticsJobsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListStatisticsJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_statistics_job_pb2.StatisticsJob]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[_statistics_job_pb2.StatisticsJob, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelStatisticsJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CancelStatisticsJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _statistics_job_pb2.StatisticsJob
    def __init__(self, job: _Optional[_Union[_statistics_job_pb2.StatisticsJob, _Mapping]] = ...) -> None: ...

class WatchStatisticsJobRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class WatchStatisticsJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _statistics_job_pb2.StatisticsJob
    def __init__(self, job: _Optional[_Union[_statistics_job_pb2.StatisticsJob, _Mapping]] = ...) -> None: ...

class InferSchemaRequest(_message.Message):
    __slots__ = ("statistics", "max_domain_size", "output_uri")
    STATISTICS_FIELD_NUMBER: _ClassVar[int]
    MAX_DOMAIN_SIZE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_URI_FIELD_NUMBER: _ClassVar[int]
    statistics: _data_pb2.ArtifactRef
    max_domain_size: int
    output_uri: str
    def __init__(self, statistics: _Optional[_Union[_data_pb2.ArtifactRef, _Mapping]] = ..., max_domain_size: _Optional[int] = ..., output_uri: _Optional[str] = ...) -> None: ...

class InferSchemaResponse(_message.Message):
    __slots__ = ("schema", "schema_proto")
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_PROTO_FIELD_NUMBER: _ClassVar[int]
    schema: _data_pb2.ArtifactRef
    schema_proto: bytes
    def __init__(self, schema: _Optional[_Union[_data_pb2.ArtifactRef, _Mapping]] = ..., schema_proto: _Optional[bytes] = ...) -> None: ...

class ValidateStatisticsRequest(_message.Message):
    __slots__ = ("statistics", "schema", "environment", "previous_statistics", "serving_statistics")
    STATISTICS_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATISTICS_FIELD_NUMBER: _ClassVar[int]
    SERVING_STATISTICS_FIELD_NUMBER: _ClassVar[int]
    statistics: _data_pb2.ArtifactRef
    schema: _data_pb2.ArtifactRef
    environment: str
    previous_statistics: _data_pb2.ArtifactRef
    serving_statistics: _data_pb2.ArtifactRef
    def __init__(self, statistics: _Optional[_Union[_data_pb2.ArtifactRef, _Mapping]] = ..., schema: _Optional[_Union[_data_pb2.ArtifactRef, _Mapping]] = ..., environment: _Optional[str] = ..., previous_statistics: _Optional[_Union[_data_pb2.ArtifactRef, _Mapping]] = ..., serving_statistics: _Optional[_Union[_data_pb2.ArtifactRef, _Mapping]] = ...) -> None: ...

class AnomalySummary(_message.Message):
    __slots__ = ("feature", "kind", "severity", "description")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    feature: str
    kind: str
    severity: Severity
    description: str
    def __init__(self, feature: _Optional[str] = ..., kind: _Optional[str] = ..., severity: _Optional[_Union[Severity, str]] = ..., description: _Optional[str] = ...) -> None: ...

class ValidateStatisticsResponse(_message.Message):
    __slots__ = ("anomalies", "anomalies_proto", "summaries", "max_severity")
    ANOMALIES_FIELD_NUMBER: _ClassVar[int]
    ANOMALIES_PROTO_FIELD_NUMBER: _ClassVar[int]
    SUMMARIES_FIELD_NUMBER: _ClassVar[int]
    MAX_SEVERITY_FIELD_NUMBER: _ClassVar[int]
    anomalies: _data_pb2.ArtifactRef
    anomalies_proto: bytes
    summaries: _containers.RepeatedCompositeFieldContainer[AnomalySummary]
    max_severity: Severity
    def __init__(self, anomalies: _Optional[_Union[_data_pb2.ArtifactRef, _Mapping]] = ..., anomalies_proto: _Optional[bytes] = ..., summaries: _Optional[_Iterable[_Union[AnomalySummary, _Mapping]]] = ..., max_severity: _Optional[_Union[Severity, str]] = ...) -> None: ...

class CompareStatisticsRequest(_message.Message):
    __slots__ = ("baseline", "candidate", "schema", "kind")
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    baseline: _data_pb2.ArtifactRef
    candidate: _data_pb2.ArtifactRef
    schema: _data_pb2.ArtifactRef
    kind: ComparisonKind
    def __init__(self, baseline: _Optional[_Union[_data_pb2.ArtifactRef, _Mapping]] = ..., candidate: _Optional[_Union[_data_pb2.ArtifactRef, _Mapping]] = ..., schema: _Optional[_Union[_data_pb2.ArtifactRef, _Mapping]] = ..., kind: _Optional[_Union[ComparisonKind, str]] = ...) -> None: ...

class FeatureDistance(_message.Message):
    __slots__ = ("feature", "measure", "distance", "threshold", "over_threshold")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    MEASURE_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    OVER_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    feature: str
    measure: str
    distance: float
    threshold: float
    over_threshold: bool
    def __init__(self, feature: _Optional[str] = ..., measure: _Optional[str] = ..., distance: _Optional[float] = ..., threshold: _Optional[float] = ..., over_threshold: _Optional[bool] = ...) -> None: ...

class CompareStatisticsResponse(_message.Message):
    __slots__ = ("distances", "summaries", "anomalies_proto")
    DISTANCES_FIELD_NUMBER: _ClassVar[int]
    SUMMARIES_FIELD_NUMBER: _ClassVar[int]
    ANOMALIES_PROTO_FIELD_NUMBER: _ClassVar[int]
    distances: _containers.RepeatedCompositeFieldContainer[FeatureDistance]
    summaries: _containers.RepeatedCompositeFieldContainer[AnomalySummary]
    anomalies_proto: bytes
    def __init__(self, distances: _Optional[_Iterable[_Union[FeatureDistance, _Mapping]]] = ..., summaries: _Optional[_Iterable[_Union[AnomalySummary, _Mapping]]] = ..., anomalies_proto: _Optional[bytes] = ...) -> None: ...
