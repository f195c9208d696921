"""`make demo`: start the local stack, check that it is healthy, record a model's lineage through
the SDK, print its provenance with the CLI, and stop the stack.

The pipeline service will turn this into the whole continuous loop; until then it shows the
foundation end to end: processes, health, the SDK, the metadata service and the CLI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from sluice.client import Sluice
from sluice.metadata.v1 import artifact_pb2, event_pb2, execution_pb2, metadata_service_pb2

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("SLUICE_DEMO_DATA_DIR", ROOT / ".data" / "demo"))
SLUICE = str(Path(sys.executable).parent / "sluice")
# Default: every installed service. A comma-separated subset, e.g. "metadata", narrows it.
SERVICES = os.environ.get("SLUICE_DEMO_SERVICES", "")


def sluice(*args: str) -> None:
    print(f"\n$ sluice {' '.join(args)}", flush=True)
    subprocess.run([SLUICE, *args], check=True)


def step(
    client: Sluice,
    execution_type: str,
    inputs: dict[str, int],
    outputs: dict[str, tuple[str, str]],
) -> list[int]:
    """Records one component run: its inputs (existing ids) and new outputs (type, uri)."""
    artifact_events = [
        metadata_service_pb2.ArtifactAndEvent(
            artifact=artifact_pb2.Artifact(id=artifact_id),
            event=event_pb2.Event(type=event_pb2.Event.TYPE_INPUT, path=role),
        )
        for role, artifact_id in inputs.items()
    ]
    artifact_events += [
        metadata_service_pb2.ArtifactAndEvent(
            artifact=artifact_pb2.Artifact(
                type=artifact_type, uri=uri, state=artifact_pb2.Artifact.STATE_LIVE
            ),
            event=event_pb2.Event(type=event_pb2.Event.TYPE_OUTPUT, path=role),
        )
        for role, (artifact_type, uri) in outputs.items()
    ]
    reply = client.metadata.put_execution(
        execution=execution_pb2.Execution(
            type=execution_type, state=execution_pb2.Execution.STATE_COMPLETE
        ),
        artifact_events=artifact_events,
    )
    return list(reply.artifact_ids[len(inputs) :])


def record_lineage(client: Sluice) -> int:
    """A TFX-shaped chain: span -> statistics -> schema -> training -> model -> blessing."""
    metadata = client.metadata
    for name in ("DataSpan", "Statistics", "Schema", "Model", "ModelBlessing"):
        metadata.put_type(name, kind="artifact")
    for name in ("StatisticsGen", "SchemaGen", "Trainer", "Evaluator"):
        metadata.put_type(name, kind="execution")

    store = f"file://{DATA_DIR / 'artifacts'}"
    span = metadata.put_artifact("DataSpan", f"{store}/spans/1/", name="span-1")
    (statistics,) = step(
        client, "StatisticsGen", {"examples": span}, {"statistics": ("Statistics", f"{store}/s/1")}
    )
    (schema,) = step(
        client, "SchemaGen", {"statistics": statistics}, {"schema": ("Schema", f"{store}/schema")}
    )
    (model,) = step(
        client,
        "Trainer",
        {"examples": span, "schema": schema},
        {"model": ("Model", f"{store}/models/1/")},
    )
    step(client, "Evaluator", {"model": model}, {"blessing": ("ModelBlessing", f"{store}/b/1")})
    return model


def main() -> int:
    shutil.rmtree(DATA_DIR, ignore_errors=True)
    sluice("up", "--data-dir", str(DATA_DIR), *(["--services", SERVICES] if SERVICES else []))
    try:
        sluice("status", "--data-dir", str(DATA_DIR))
        with Sluice() as client:
            model_id = record_lineage(client)
        print(f"\nRecorded a model (artifact {model_id}) and the lineage that produced it.")
        sluice("lineage", str(model_id))
    finally:
        sluice("down", "--data-dir", str(DATA_DIR))
    print("\nDemo finished: the stack started healthy, answered through the SDK and stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
