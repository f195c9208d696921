"""The worker process: ``python -m sluice_training.worker``.

    python -m sluice_training.worker --plan /jobs/x/attempt-1/plan.json \\
        --events /jobs/x/attempt-1/events-0.jsonl --work-dir /jobs/x/attempt-1/work-0
    python -m sluice_training.worker --plan-key training-jobs/x/attempt-1/plan.json \\
        --store-events training-jobs/x/attempt-1/events-0.json          # in a Kubernetes pod

``KERAS_BACKEND`` must be set in the environment before the process starts (the launchers do);
the plan's backend wins if it differs, as long as Keras was not imported yet. Several workers
(``num_workers`` > 1) need ``TF_CONFIG`` or ``SLUICE_TRAINING_WORKER_HOSTS`` +
``JOB_COMPLETION_INDEX``. With ``--parent-pid`` the worker exits when that process goes away,
so no orphan keeps training after the service died.

Exit status: 0 done (result or a reported failure), 1 crashed (the traceback is on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from sluice_runtime.artifacts import open_artifact_store
from sluice_runtime.errors import grpc_code_name_of

from sluice_training.events import EventSink, FileEventSink, StoreEventSink
from sluice_training.failures import TrainingFailure
from sluice_training.jobs import JobFailure, code_number
from sluice_training.plan import JobPlan

PARENT_POLL_SECONDS = 1.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sluice_training.worker")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--plan", help="the job plan JSON file")
    source.add_argument("--plan-key", help="the job plan's key in SLUICE_ARTIFACT_STORE_URI")
    sink = parser.add_mutually_exclusive_group(required=True)
    sink.add_argument("--events", help="JSON-lines file to append events to")
    sink.add_argument("--store-events", help="artifact store key of the events document")
    parser.add_argument("--work-dir", help="scratch folder (default: a temporary one)")
    parser.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.parent_pid:
        _exit_with_parent(args.parent_pid)
    if args.plan:
        plan = JobPlan.from_json(Path(args.plan).read_text())
    else:
        store_uri = os.environ.get("SLUICE_ARTIFACT_STORE_URI", "")
        plan = JobPlan.from_json(open_artifact_store(store_uri).get_bytes(args.plan_key))
    _choose_backend(plan.keras_backend)

    sink: EventSink
    if args.events:
        sink = FileEventSink(args.events)
    else:
        sink = StoreEventSink(open_artifact_store(plan.store_uri), args.store_events)
    work_dir = Path(args.work_dir or _temporary_dir())
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        return run(plan, sink, work_dir)
    finally:
        sink.close()


def run(plan: JobPlan, sink: EventSink, work_dir: Path) -> int:
    """Run one attempt and report its outcome on ``sink``; the exit status to use."""
    try:
        strategy = None
        index = 0
        if plan.num_workers > 1:
            from sluice_training.distributed import create_strategy, task_index

            strategy = create_strategy()
            index = task_index()
        from sluice_training.trainer import run_attempt

        result = run_attempt(plan, sink, work_dir, strategy=strategy, is_chief=index == 0)
        if result is not None:
            sink.emit("result", result=result.to_json())
        return 0
    except TrainingFailure as known:
        sink.emit("failed", failure=known.to_failure().to_json())
        return 0
    except Exception as error:
        code_name = grpc_code_name_of(error)
        if code_name is not None:  # a domain error of the runtime (bad key, store unavailable)
            failure = JobFailure(
                code=code_number(code_name),
                message=str(error),
                reason=getattr(error, "reason", None) or code_name,
                field=getattr(error, "field", None) or "",
            )
        else:
            traceback.print_exc()
            failure = JobFailure(
                code=code_number("INTERNAL"),
                message=f"the worker crashed: {type(error).__name__}: {error} (see the worker log)",
                reason="INTERNAL",
            )
        sink.emit("failed", failure=failure.to_json())
        return 1


def _choose_backend(backend: str) -> None:
    if os.environ.get("KERAS_BACKEND") != backend:
        if "keras" in sys.modules:
            raise RuntimeError(f"KERAS_BACKEND must be {backend!r} before Keras is imported")
        os.environ["KERAS_BACKEND"] = backend


def _exit_with_parent(parent_pid: int) -> None:
    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(3)  # the service is gone: stop, the next service resumes the job
            time.sleep(PARENT_POLL_SECONDS)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _temporary_dir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="sluice-worker-")


if __name__ == "__main__":
    sys.exit(main())
