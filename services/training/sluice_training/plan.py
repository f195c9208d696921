"""`JobPlan`: everything a worker needs, resolved by the service and handed over as JSON.

The service validates a `TrainingSpec`, resolves artifact ids and the warm-start base model to
URIs, fills in defaults, and writes one `JobPlan` per attempt. The worker reads nothing else, so it
needs neither gRPC nor the metadata service, and a Kubernetes pod can start from the same file.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_BATCH_SIZE = 256
DEFAULT_FUNCTION = "build_model"
KERAS_BACKENDS = ("tensorflow", "jax", "torch")


class Task(enum.Enum):
    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"


class ModelFamily(enum.Enum):
    DNN = "dnn"
    WIDE_AND_DEEP = "wide_and_deep"
    USER_MODULE = "user_module"


@dataclass(frozen=True)
class DataRef:
    """A tabular input: a file, or every file under a prefix (uri ending in '/')."""

    uri: str
    format: str = ""  # "csv" or "parquet"; empty: from the file extension
    artifact_id: int = 0


@dataclass(frozen=True)
class ModelPlan:
    """The model to train: a built-in family, or a user module's ``build_model``."""

    family: ModelFamily
    task: Task
    hidden_units: tuple[int, ...] = ()  # empty: hyperparameter hidden_units, else (128, 64)
    num_classes: int = 0
    module: str = ""
    source_uri: str = ""
    function: str = DEFAULT_FUNCTION


@dataclass(frozen=True)
class JobPlan:
    """One attempt of one job, as the worker sees it.

    Attributes:
        job_id: the job's id (``trainingJobs/<job_id>``).
        attempt: 1 for the first attempt; later attempts resume from the last checkpoint.
        store_uri: the artifact store every key below is relative to.
        output_prefix: where the model folder is published (a key prefix, no trailing '/').
        checkpoint_prefix: where checkpoints live (shared by all attempts of the job).
        checkpoint_every_steps: 0: once per epoch.
        base_model_uri: the warm-start base model folder; empty: cold start.
        seed: seeds shuffling and initialisation, so a resumed attempt replays the same batches.
    """

    job_id: str
    attempt: int
    store_uri: str
    train_data: DataRef
    schema_uri: str
    label: str
    model: ModelPlan
    output_prefix: str
    checkpoint_prefix: str
    eval_data: DataRef | None = None
    statistics_uri: str = ""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    epochs: int = 1
    max_steps: int = 0
    batch_size: int = DEFAULT_BATCH_SIZE
    checkpoint_every_steps: int = 0
    base_model_uri: str = ""
    keras_backend: str = "tensorflow"
    num_workers: int = 1
    seed: int = 0

    def to_json(self) -> str:
        data = asdict(self)
        data["model"]["family"] = self.model.family.value
        data["model"]["task"] = self.model.task.value
        data["model"]["hidden_units"] = list(self.model.hidden_units)
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> JobPlan:
        data = json.loads(text)
        model = dict(data.pop("model"))
        model["family"] = ModelFamily(model["family"])
        model["task"] = Task(model["task"])
        model["hidden_units"] = tuple(int(u) for u in model.get("hidden_units", ()))
        eval_data = data.pop("eval_data", None)
        return cls(
            train_data=DataRef(**data.pop("train_data")),
            eval_data=None if eval_data is None else DataRef(**eval_data),
            model=ModelPlan(**model),
            **data,
        )
