"""``python -m sluice_runtime.healthcheck HOST:PORT``: exit 0 when the server there is SERVING.

For container health checks (docker-compose.yml, Kubernetes exec probes): the image carries no
grpc_health_probe binary, and every Sluice service answers grpc.health.v1. It speaks plain gRPC
(the compose stack runs without TLS); prints the status, or the gRPC error, on one line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def serving_status(address: str, service: str = "", timeout: float = 3.0) -> str:
    """The health status name the server at ``address`` reports (grpc.RpcError when none)."""
    with grpc.insecure_channel(address) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout
        )
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="host:port of the gRPC server")
    parser.add_argument("--service", default="", help="one service's health (default: server)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for an answer")
    args = parser.parse_args(argv)
    try:
        status = serving_status(args.address, args.service, args.timeout)
    except grpc.RpcError as error:
        print(f"{args.address}: {error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    print(f"{args.address}: {status}")
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
