"""Training throughput through the training service vs a bare ``model.fit``, same model, same data.

The reference MLP: 32 float inputs, hidden layers 256-256-128, one sigmoid output, batch 4096.
Both sides train the very model the service builds (`sluice_training.models.build_builtin`: per
feature fill-missing + normalisation, then the MLP) on the very same rows, each in a fresh process
with the same ``KERAS_BACKEND``:

* bare: ``model.fit(x, y, batch_size, epochs)`` timed around the call (compilation included);
  also a plain MLP on a (rows, 32) matrix, for reference;
* service (``--mode service``, the default): a job created through gRPC on an in-process training
  server with its real local worker process; throughput is the worker's own examples/s over its
  training loop (per-epoch checkpoints and progress events included), and end-to-end is
  rows x epochs over create -> SUCCEEDED (process start, data loading, export included);
* worker (``--mode worker``): the same worker process started directly from a plan, without the
  gRPC service, SQLAlchemy or the metadata SDK: for machines that only have the worker's
  dependencies. Without TensorFlow the export step fails with TENSORFLOW_REQUIRED, which this mode
  reports and accepts: the training figures stand.

Overhead = 1 - service examples/s / bare examples/s; the goal is at most 10 %.

    .venv/bin/python benchmarks/training_bench.py                      # TensorFlow, CPU
    KERAS_BACKEND=jax python benchmarks/training_bench.py --mode worker --rows 4194304 --epochs 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HIDDEN_UNITS = (256, 256, 128)


def _prepare(folder: Path, rows: int) -> str:
    """Write the data and the schema into a file:// artifact store under ``folder``."""
    import pyarrow.parquet as pq
    from sluice_runtime.artifacts import open_artifact_store
    from sluice_training.testing import reference_mlp_data, reference_mlp_schema

    store = open_artifact_store((folder / "artifacts").as_uri())
    local = folder / "train.parquet"
    pq.write_table(reference_mlp_data(rows), local)
    store.put_file("bench/train.parquet", local)
    store.put("bench/schema.pbtxt", reference_mlp_schema().encode())
    local.unlink()
    return store.root_uri


def _plan(store_uri: str, job_id: str, epochs: int, batch: int) -> Any:
    from sluice_training.plan import DataRef, JobPlan, ModelFamily, ModelPlan, Task

    return JobPlan(
        job_id=job_id,
        attempt=1,
        store_uri=store_uri,
        train_data=DataRef("bench/train.parquet"),
        schema_uri="bench/schema.pbtxt",
        label="label",
        model=ModelPlan(ModelFamily.DNN, Task.BINARY, hidden_units=HIDDEN_UNITS),
        output_prefix=f"models/{job_id}",
        checkpoint_prefix=f"training-jobs/{job_id}/checkpoints",
        hyperparameters={"learning_rate": 0.001},
        epochs=epochs,
        batch_size=batch,
        keras_backend=os.environ.get("KERAS_BACKEND", "tensorflow"),
        seed=1,
    )


def bare(store_uri: str, epochs: int, batch: int) -> dict[str, Any]:
    """In this (fresh) process: model.fit of the service's model, then of a plain MLP."""
    import keras
    from sluice_runtime.artifacts import open_artifact_store
    from sluice_training.preprocessing import NUMERIC_INPUT, encode
    from sluice_training.trainer import build_model, prepare_data

    store = open_artifact_store(store_uri)
    plan = _plan(store_uri, "bare", epochs, batch)
    with tempfile.TemporaryDirectory() as scratch:
        data = prepare_data(plan, store)
        x = encode(data.plan, data.x)
        model = build_model(plan, data, store, Path(scratch))
    rows = len(data.y)
    started = time.perf_counter()
    model.fit(x, data.y, batch_size=batch, epochs=epochs, shuffle=True, verbose=0)
    same_model = rows * epochs / (time.perf_counter() - started)

    matrix = x[NUMERIC_INPUT]  # the 32 features as one (rows, 32) matrix
    inputs = keras.Input((32,))
    hidden = inputs
    for width in HIDDEN_UNITS:
        hidden = keras.layers.Dense(width, activation="relu")(hidden)
    plain = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(hidden))
    plain.compile(keras.optimizers.Adam(0.001), "binary_crossentropy")
    started = time.perf_counter()
    plain.fit(matrix, data.y, batch_size=batch, epochs=epochs, shuffle=True, verbose=0)
    plain_mlp = rows * epochs / (time.perf_counter() - started)
    return {
        "backend": keras.backend.backend(),
        "same_model_examples_per_second": same_model,
        "plain_mlp_examples_per_second": plain_mlp,
    }


def through_service(store_uri: str, folder: Path, epochs: int, batch: int) -> dict[str, Any]:
    from google.protobuf import struct_pb2
    from sluice.client import TrainingClient
    from sluice.common.v1 import data_pb2, job_pb2
    from sluice.training.v1 import training_job_pb2 as pb
    from sluice_runtime.config import ServerConfig
    from sluice_training.config import TrainingConfig
    from sluice_training.server import build_server

    config = TrainingConfig(
        data_dir=folder / "service",
        artifact_store_uri=store_uri,
        server=ServerConfig(service="training", port=0),
        default_backend=os.environ.get("KERAS_BACKEND", "tensorflow"),
    )
    hyperparameters = struct_pb2.Struct()
    hyperparameters.update({"learning_rate": 0.001})
    spec = pb.TrainingSpec(
        train_data=data_pb2.DataSource(data=data_pb2.ArtifactRef(uri="bench/train.parquet")),
        schema=data_pb2.ArtifactRef(uri="bench/schema.pbtxt"),
        label="label",
        builtin=pb.BuiltinModel(task=pb.TASK_BINARY_CLASSIFICATION, hidden_units=HIDDEN_UNITS),
        hyperparameters=hyperparameters,
        epochs=epochs,
        batch_size=batch,
        warm_start=pb.WarmStart(mode=pb.WarmStart.MODE_NONE),
    )
    with build_server(config) as server, TrainingClient(server.address) as client:
        job = client.create_training_job(spec=spec).job
        for response in client.watch_training_job(name=job.name, timeout=3600):
            job = response.job
    if job.state != job_pb2.JOB_STATE_SUCCEEDED:
        raise SystemExit(f"the job did not succeed: {job.error}")
    seconds = (job.end_time.ToDatetime() - job.create_time.ToDatetime()).total_seconds()
    return {
        "examples_per_second": job.progress.examples_per_second,
        "end_to_end_examples_per_second": job.progress.total_steps * batch / seconds,
        "end_to_end_seconds": seconds,
        "steps": job.progress.step,
    }


def through_worker(store_uri: str, folder: Path, epochs: int, batch: int) -> dict[str, Any]:
    plan = _plan(store_uri, "0000000000000b00", epochs, batch)
    attempt = folder / "worker"
    attempt.mkdir()
    (attempt / "plan.json").write_text(plan.to_json())
    events_path = attempt / "events.jsonl"
    command = [sys.executable, "-m", "sluice_training.worker", "--plan", str(attempt / "plan.json")]
    command += ["--events", str(events_path), "--work-dir", str(attempt / "work")]
    started = time.perf_counter()
    completed = subprocess.run(
        command,
        check=False,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    events = [json.loads(line) for line in events_path.read_text().splitlines() if line]
    progress = [e["progress"] for e in events if e["event"] == "progress"]
    failed = [e["failure"] for e in events if e["event"] == "failed"]
    if (failed and failed[0]["reason"] != "TENSORFLOW_REQUIRED") or not progress:
        sys.stderr.write(completed.stderr[-3000:])
        raise SystemExit(f"the worker failed: {failed or completed.returncode}")
    started_event = next(e for e in events if e["event"] == "started")
    return {
        "examples_per_second": progress[-1]["examples_per_second"],
        "end_to_end_examples_per_second": progress[-1]["total_steps"] * batch / seconds,
        "end_to_end_seconds": seconds,
        "steps": progress[-1]["step"],
        "tensorflow_loaded": started_event.get("tensorflow_loaded"),
        "export": "skipped: no TensorFlow here" if failed else "SavedModel + model.keras",
    }


def _bare_child(store_uri: str, epochs: int, batch: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--bare-store", store_uri]
    command += ["--epochs", str(epochs), "--batch", str(batch)]
    child = subprocess.run(command, check=False, capture_output=True, text=True)
    if child.returncode:
        sys.stderr.write(child.stderr[-3000:])
        raise SystemExit("the bare model.fit failed")
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=262_144)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--mode", choices=("service", "worker"), default="service")
    parser.add_argument(
        "--rounds", type=int, default=2, help="bare/measured pairs, alternated (median reported)"
    )
    parser.add_argument("--bare-store", help=argparse.SUPPRESS)  # internal: the bare child
    args = parser.parse_args()
    if args.bare_store:
        print(json.dumps(bare(args.bare_store, args.epochs, args.batch)))
        return

    pairs = []
    with tempfile.TemporaryDirectory(prefix="sluice-training-bench-") as scratch:
        folder = Path(scratch)
        store_uri = _prepare(folder, args.rows)
        for round_number in range(args.rounds):
            # Alternate the order: on a shared machine the load drifts between the two runs.
            def measure(n: int = round_number) -> dict[str, Any]:
                run_folder = folder / f"round-{n}"
                run_folder.mkdir()
                if args.mode == "service":
                    return through_service(store_uri, run_folder, args.epochs, args.batch)
                return through_worker(store_uri, run_folder, args.epochs, args.batch)

            if round_number % 2 == 0:
                reference = _bare_child(store_uri, args.epochs, args.batch)
                measured = measure()
            else:
                measured = measure()
                reference = _bare_child(store_uri, args.epochs, args.batch)
            pairs.append((reference, measured))

    print(
        f"backend {pairs[0][0]['backend']}, {args.rows} rows x {args.epochs} epochs, "
        f"batch {args.batch}, mode {args.mode}, {args.rounds} round(s)"
    )
    for number, (reference, measured) in enumerate(pairs, 1):
        overhead = 1 - measured["examples_per_second"] / reference["same_model_examples_per_second"]
        rows = [
            ("bare model.fit, plain MLP (reference)", reference["plain_mlp_examples_per_second"]),
            ("bare model.fit, the service's model", reference["same_model_examples_per_second"]),
            (f"{args.mode}: worker training loop", measured["examples_per_second"]),
            (f"{args.mode}: end to end", measured["end_to_end_examples_per_second"]),
        ]
        print(f" round {number}:")
        for name, value in rows:
            print(f"  {name:<42} {value:>12,.0f} examples/s")
        print(f"  overhead of the training loop vs bare fit: {overhead:+.1%}")
        print(f"  end to end {measured['end_to_end_seconds']:.1f} s: {json.dumps(measured)}")
    overheads = [
        1 - m["examples_per_second"] / r["same_model_examples_per_second"] for r, m in pairs
    ]
    print(f" median overhead: {statistics.median(overheads):+.1%} (goal <= 10%)")


if __name__ == "__main__":
    main()
