"""Metadata service throughput and lineage latency, through gRPC, beside the MLMD reference.

    .venv/bin/python benchmarks/metadata_bench.py                  # SQLite in a temp dir
    .venv/bin/python benchmarks/metadata_bench.py --postgres       # a fresh PostgreSQL database
    .venv/bin/python benchmarks/metadata_bench.py --store-size 20000   # quicker lineage phase

The server runs in its own process (as in production, so it does not share the client's GIL);
the client is one thread making blocking calls with the generated stub. Measures:

1. single-artifact PutArtifacts calls per second;
2. artifacts per second in PutArtifacts batches of 1,000;
3. PutExecution calls per second (an execution, 2 new artifacts, an input and an output event);
4. GetLineage latency, 10 hops upstream, over a store of --store-size artifacts (default 100,000)
   holding a layered pipeline graph (each execution reads two artifacts of the layer before).

The MLMD figures are ML Metadata 1.16 in-process on SQLite on the same kind of machine
(/work/shared/design/facts.md); they pay no RPC at all, so the comparison is severe.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from multiprocessing.connection import Connection
from pathlib import Path

import grpc
from sluice.metadata.v1 import (
    artifact_pb2,
    context_pb2,
    event_pb2,
    execution_pb2,
    lineage_pb2,
    type_pb2,
    value_pb2,
)
from sluice.metadata.v1 import metadata_service_pb2 as pb
from sluice.metadata.v1 import metadata_service_pb2_grpc as pb_grpc

MLMD = {"single": 881.0, "batch": 27_900.0, "put_execution": 724.0}
TARGETS = {"single": 1_000.0, "batch": 30_000.0, "put_execution": 800.0, "lineage_ms": 50.0}
BATCH = 1_000
INPUT = event_pb2.Event.TYPE_INPUT
OUTPUT = event_pb2.Event.TYPE_OUTPUT


def _serve(database_url: str, reply: Connection) -> None:
    """The server process: build the server, report its port, serve until the pipe closes."""
    from sluice_metadata.config import MetadataConfig
    from sluice_metadata.server import build_server

    with build_server(MetadataConfig(database_url=database_url), port=0) as server:
        reply.send(server.port)
        with suppress(EOFError):
            reply.recv()


@contextmanager
def running_server(database_url: str) -> Iterator[int]:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_serve, args=(database_url, child), daemon=True)
    process.start()
    try:
        if not parent.poll(60):
            raise RuntimeError("the metadata server did not start within 60 s")
        yield int(parent.recv())
    finally:
        parent.send("stop")
        process.join(30)
        if process.is_alive():
            process.terminate()


def model(index: int) -> artifact_pb2.Artifact:
    return artifact_pb2.Artifact(
        type="Model",
        uri=f"s3://bench/models/{index}",
        state=artifact_pb2.Artifact.STATE_LIVE,
        properties={
            "span": value_pb2.Value(int_value=index),
            "accuracy": value_pb2.Value(double_value=0.5),
        },
        custom_properties={"tag": value_pb2.Value(string_value="bench")},
    )


def rate(count: int, call: Callable[[int], object]) -> float:
    start = time.perf_counter()
    for index in range(count):
        call(index)
    return count / (time.perf_counter() - start)


def register_types(stub: pb_grpc.MetadataServiceStub) -> None:
    properties = {"span": value_pb2.PROPERTY_TYPE_INT, "accuracy": value_pb2.PROPERTY_TYPE_DOUBLE}
    for kind, name in (
        (type_pb2.TYPE_KIND_ARTIFACT, "Model"),
        (type_pb2.TYPE_KIND_EXECUTION, "Trainer"),
        (type_pb2.TYPE_KIND_CONTEXT, "Run"),
    ):
        declared = properties if kind == type_pb2.TYPE_KIND_ARTIFACT else {}
        stub.PutType(
            pb.PutTypeRequest(type=type_pb2.Type(kind=kind, name=name, properties=declared))
        )


def bench_puts(stub: pb_grpc.MetadataServiceStub, singles: int, batches: int) -> dict[str, float]:
    single = rate(
        singles, lambda i: stub.PutArtifacts(pb.PutArtifactsRequest(artifacts=[model(i)]))
    )
    requests = [
        pb.PutArtifactsRequest(artifacts=[model(b * BATCH + i) for i in range(BATCH)])
        for b in range(batches)
    ]
    batch = rate(batches, lambda b: stub.PutArtifacts(requests[b])) * BATCH
    return {"single": single, "batch": batch}


def bench_put_execution(stub: pb_grpc.MetadataServiceStub, calls: int) -> float:
    def put_execution(index: int) -> None:
        stub.PutExecution(
            pb.PutExecutionRequest(
                execution=execution_pb2.Execution(
                    type="Trainer", state=execution_pb2.Execution.STATE_COMPLETE
                ),
                artifact_events=[
                    pb.ArtifactAndEvent(artifact=model(index), event=event_pb2.Event(type=INPUT)),
                    pb.ArtifactAndEvent(artifact=model(index), event=event_pb2.Event(type=OUTPUT)),
                ],
            )
        )

    return rate(calls, put_execution)


def build_lineage_store(
    stub: pb_grpc.MetadataServiceStub, store_size: int, layers: int, width: int
) -> tuple[list[int], int]:
    """Fills the store up to `store_size` artifacts and adds a layered graph; the last layer's
    artifact ids and the store's artifact count."""
    count = _count_artifacts(stub)
    graph_artifacts = width * (layers + 1)
    filler = max(0, store_size - count - graph_artifacts)
    for start in range(0, filler, BATCH):
        size = min(BATCH, filler - start)
        stub.PutArtifacts(pb.PutArtifactsRequest(artifacts=[model(start + i) for i in range(size)]))
    layer = list(
        stub.PutArtifacts(
            pb.PutArtifactsRequest(artifacts=[model(i) for i in range(width)])
        ).artifact_ids
    )
    rng = random.Random(7)
    run = context_pb2.Context(type="Run", name="bench-run")
    for depth in range(layers):
        next_layer = []
        for index in range(width):
            inputs = rng.sample(layer, 2)
            response = stub.PutExecution(
                pb.PutExecutionRequest(
                    execution=execution_pb2.Execution(
                        type="Trainer", external_id=f"l{depth}-{index}"
                    ),
                    artifact_events=[
                        *(
                            pb.ArtifactAndEvent(
                                artifact=artifact_pb2.Artifact(id=i),
                                event=event_pb2.Event(type=INPUT),
                            )
                            for i in inputs
                        ),
                        pb.ArtifactAndEvent(
                            artifact=model(index), event=event_pb2.Event(type=OUTPUT)
                        ),
                    ],
                    contexts=[run],
                )
            )
            next_layer.append(response.artifact_ids[-1])
        layer = next_layer
    return layer, _count_artifacts(stub)


def _count_artifacts(stub: pb_grpc.MetadataServiceStub) -> int:
    # The last id is the count: ids are dense and nothing is deleted.
    page = stub.ListArtifacts(pb.ListArtifactsRequest(order_by="id desc", page_size=1))
    return page.artifacts[0].id if page.artifacts else 0


def bench_lineage(
    stub: pb_grpc.MetadataServiceStub, starts: list[int], queries: int
) -> dict[str, float]:
    latencies = []
    nodes = []
    for index in range(queries):
        start = time.perf_counter()
        graph = stub.GetLineage(
            pb.GetLineageRequest(
                artifact_ids=[starts[index % len(starts)]],
                direction=lineage_pb2.LINEAGE_DIRECTION_UPSTREAM,
                max_hops=10,
            )
        ).graph
        latencies.append((time.perf_counter() - start) * 1000)
        nodes.append(len(graph.artifacts) + len(graph.executions))
    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies),
        "p95_ms": latencies[int(len(latencies) * 0.95) - 1],
        "nodes": statistics.mean(nodes),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--postgres",
        nargs="?",
        const="default",
        help="run on PostgreSQL (admin URL; a fresh database is made and dropped)",
    )
    parser.add_argument("--singles", type=int, default=2_000, help="single-artifact puts")
    parser.add_argument("--batches", type=int, default=20, help="batches of 1,000 artifacts")
    parser.add_argument("--executions", type=int, default=2_000, help="PutExecution calls")
    parser.add_argument(
        "--store-size",
        type=int,
        default=100_000,
        help="artifacts in the store for the lineage query",
    )
    parser.add_argument("--queries", type=int, default=100, help="lineage queries")
    args = parser.parse_args(argv)

    with ExitStack() as stack:
        if args.postgres:
            from sluice_metadata.testing import (
                DEFAULT_POSTGRES_ADMIN_URL,
                temporary_postgres_database,
            )

            admin = DEFAULT_POSTGRES_ADMIN_URL if args.postgres == "default" else args.postgres
            database_url = stack.enter_context(temporary_postgres_database(admin))
            backend = "PostgreSQL"
        else:
            directory = stack.enter_context(tempfile.TemporaryDirectory())
            database_url = f"sqlite:///{Path(directory) / 'metadata.db'}"
            backend = "SQLite"
        port = stack.enter_context(running_server(database_url))
        channel = stack.enter_context(
            grpc.insecure_channel(
                f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 64 << 20)]
            )
        )
        stub = pb_grpc.MetadataServiceStub(channel)
        register_types(stub)
        print(f"Sluice metadata through gRPC on {backend} (server in its own process)", flush=True)
        puts = bench_puts(stub, args.singles, args.batches)
        put_execution = bench_put_execution(stub, args.executions)
        fill_start = time.perf_counter()
        starts, size = build_lineage_store(stub, args.store_size, layers=30, width=20)
        fill_s = time.perf_counter() - fill_start
        lineage = bench_lineage(stub, starts, args.queries)

    rows = [
        ("single-artifact puts/s", puts["single"], MLMD["single"], f">= {TARGETS['single']:,.0f}"),
        (
            "artifacts/s, batches of 1,000",
            puts["batch"],
            MLMD["batch"],
            f">= {TARGETS['batch']:,.0f}",
        ),
        (
            "put-execution calls/s",
            put_execution,
            MLMD["put_execution"],
            f">= {TARGETS['put_execution']:,.0f}",
        ),
    ]
    print(f"{'measure':<34}{'Sluice':>12}{'MLMD ref':>12}{'target':>12}")
    for name, value, reference, target in rows:
        print(f"{name:<34}{value:>12,.0f}{reference:>12,.0f}{target:>12}")
    print(
        f"{'10-hop lineage, p50 ms':<34}{lineage['p50_ms']:>12.1f}{'-':>12}"
        f"{'< ' + format(TARGETS['lineage_ms'], '.0f'):>12}"
    )
    print(f"{'10-hop lineage, p95 ms':<34}{lineage['p95_ms']:>12.1f}")
    print(
        f"(lineage over {size:,} artifacts; {lineage['nodes']:.0f} nodes per answer on average; "
        f"store filled in {fill_s:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
