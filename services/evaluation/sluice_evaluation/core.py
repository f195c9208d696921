"""The evaluation service's operations, free of gRPC: what each RPC does, on plain data."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from sluice_runtime.errors import FailedPrecondition, InvalidArgument

from sluice_evaluation.evaluator import Evaluator, Workspace, compare
from sluice_evaluation.infra import InfraValidator, SandboxSettings
from sluice_evaluation.jobs import Job, JobRunner, JobState
from sluice_evaluation.spec import (
    EvaluationResult,
    EvaluationSpec,
    InfraValidationResult,
    InfraValidationSpec,
)
from sluice_evaluation.thresholds import Verdict

EvaluationJob = Job[EvaluationSpec, EvaluationResult]
InfraValidationJob = Job[InfraValidationSpec, InfraValidationResult]

MAX_LABELS = 64
MAX_LABEL_LENGTH = 256
MAX_REASON_LENGTH = 4096


@dataclass(frozen=True)
class MetricComparison:
    """One metric on one slice in two evaluations; ``difference`` is candidate - baseline."""

    slice: str
    metric: str
    baseline: float
    candidate: float

    @property
    def difference(self) -> float:
        return self.candidate - self.baseline


class EvaluationCore:
    """Evaluations and infra validations as resources, each kind on its own worker pool."""

    def __init__(
        self,
        workspace: Workspace,
        sandbox: SandboxSettings,
        *,
        evaluation_workers: int = 1,
        infra_workers: int = 1,
    ) -> None:
        self.workspace = workspace
        self.evaluator = Evaluator(workspace)
        self.evaluations: JobRunner[EvaluationSpec, EvaluationResult] = JobRunner(
            "evaluations", self.evaluator, workers=evaluation_workers
        )
        self.infra_validations: JobRunner[InfraValidationSpec, InfraValidationResult] = JobRunner(
            "infraValidations",
            InfraValidator(workspace.store, workspace.lineage, workspace.scratch_dir, sandbox),
            workers=infra_workers,
        )

    # -- evaluations -----------------------------------------------------------------------------

    def create_evaluation(
        self, spec: EvaluationSpec, labels: Mapping[str, str], request_id: str = ""
    ) -> EvaluationJob:
        _check_labels(labels)
        return self.evaluations.create(spec.checked(), labels, request_id)

    def get_evaluation(self, name: str) -> EvaluationJob:
        return self.evaluations.get(name)

    def list_evaluations(
        self, model_artifact_id: int = 0, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[EvaluationJob], str]:
        if model_artifact_id < 0:
            raise InvalidArgument(
                "model_artifact_id: must not be negative", field="model_artifact_id"
            )

        def of_model(job: EvaluationJob) -> bool:
            if not model_artifact_id or job.spec.model.artifact_id == model_artifact_id:
                return True
            return job.result is not None and job.result.model.artifact_id == model_artifact_id

        return self.evaluations.list(of_model, page_size, page_token)

    def cancel_evaluation(self, name: str) -> EvaluationJob:
        return self.evaluations.cancel(name)

    def watch_evaluation(
        self, name: str, active: Callable[[], bool] = lambda: True
    ) -> Iterator[EvaluationJob]:
        return self.evaluations.watch(name, active)

    def compare_evaluations(self, baseline: str, candidate: str) -> list[MetricComparison]:
        """Every metric of every slice the two evaluations share, in the candidate's order."""
        results = []
        for field, name in (("baseline", baseline), ("candidate", candidate)):
            if not name:
                raise InvalidArgument(f"{field}: name an evaluation", field=field)
            job = self.evaluations.get(name)
            if job.state is not JobState.SUCCEEDED or job.result is None:
                raise FailedPrecondition(
                    f"{field}: {name} is {job.state.name}; only SUCCEEDED evaluations have metrics",
                    field=field,
                    reason="NOT_SUCCEEDED",
                )
            results.append(job.result)
        return [MetricComparison(*row) for row in compare(results[0], results[1])]

    def override_verdict(
        self, name: str, verdict: Verdict, reason: str, actor: str
    ) -> EvaluationJob:
        """A person's verdict on a SUCCEEDED evaluation; recorded with the reason and the actor.

        A failed evaluation cannot be overridden: there are no metrics to vouch for the model.
        """
        for field, text in (("reason", reason), ("actor", actor)):
            if not text.strip():
                raise InvalidArgument(f"{field}: required", field=field)
            if len(text) > MAX_REASON_LENGTH:
                raise InvalidArgument(
                    f"{field}: at most {MAX_REASON_LENGTH} characters", field=field
                )
        return self.evaluations.update_result(
            name,
            lambda result: self.evaluator.override(
                name, result, verdict, reason.strip(), actor.strip()
            ),
        )

    # -- infra validations -----------------------------------------------------------------------

    def create_infra_validation(
        self, spec: InfraValidationSpec, request_id: str = ""
    ) -> InfraValidationJob:
        return self.infra_validations.create(spec.checked(), None, request_id)

    def get_infra_validation(self, name: str) -> InfraValidationJob:
        return self.infra_validations.get(name)

    def close(self, wait: bool = True) -> None:
        """Cancel the jobs; with ``wait``, wait for the workers to stop (see `JobRunner.close`)."""
        self.evaluations.close(wait)
        self.infra_validations.close(wait)


def _check_labels(labels: Mapping[str, str]) -> None:
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(f"labels: at most {MAX_LABELS}", field="labels")
    for key, value in labels.items():
        if not key or len(key) > MAX_LABEL_LENGTH or len(value) > MAX_LABEL_LENGTH:
            raise InvalidArgument(
                f"labels: keys of 1 to {MAX_LABEL_LENGTH} characters, values up to "
                f"{MAX_LABEL_LENGTH}; got {key!r}",
                field=f"labels.{key}",
            )
