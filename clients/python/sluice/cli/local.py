"""`sluice up`, `sluice down`, `sluice status`: the platform as local processes on one machine."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from sluice.cli import processes
from sluice.cli.output import console, errors, fail
from sluice.client.config import DEFAULT_BASE_PORT, SERVICE_NAMES

DATA_DIR_OPTION = typer.Option(
    str(processes.DEFAULT_DATA_DIR),
    "--data-dir",
    envvar="SLUICE_DATA_DIR",
    help="Where data, logs and pid files live.",
)
BASE_PORT_OPTION = typer.Option(
    DEFAULT_BASE_PORT,
    "--base-port",
    envvar="SLUICE_BASE_PORT",
    help="gRPC port of metadata; validation, training, evaluation, serving and pipeline follow.",
)
METRICS_BASE_PORT_OPTION = typer.Option(
    processes.DEFAULT_METRICS_BASE_PORT,
    "--metrics-base-port",
    envvar="SLUICE_METRICS_BASE_PORT",
    help="Prometheus metrics port of metadata; the others follow in the same order.",
)


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("down")(down)
    app.command("status")(status)


def available_services(base_port: int, metrics_base_port: int) -> list[processes.ServiceSpec]:
    """The installed services on their ports (a seam for tests to substitute their own)."""
    return processes.installed(processes.service_table(base_port, metrics_base_port))


def _select(
    specs: list[processes.ServiceSpec], services: str | None
) -> list[processes.ServiceSpec]:
    if not services:
        return specs
    wanted = [name.strip() for name in services.split(",") if name.strip()]
    by_name = {spec.name: spec for spec in specs}
    unknown = [name for name in wanted if name not in SERVICE_NAMES and name not in by_name]
    if unknown:
        known = ", ".join(SERVICE_NAMES)
        fail(f"--services: unknown service {unknown[0]!r}; expected some of {known}")
    missing = [name for name in wanted if name not in by_name]
    if missing:
        fail(f"--services: {missing[0]} is not installed here (no module sluice_{missing[0]})")
    return [by_name[name] for name in dict.fromkeys(wanted)]


def up(
    data_dir: str = DATA_DIR_OPTION,
    services: str | None = typer.Option(
        None, "--services", help="Comma-separated services to start (default: all installed)."
    ),
    base_port: int = BASE_PORT_OPTION,
    metrics_base_port: int = METRICS_BASE_PORT_OPTION,
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds to wait for SERVING."),
) -> None:
    """Start every installed service in the background and wait until all are SERVING."""
    specs = _select(available_services(base_port, metrics_base_port), services)
    if not specs:
        fail("no service is installed (no sluice_<service> module can be imported)")
    layout = processes.LocalLayout.at(data_dir)
    try:
        states = processes.start_stack(specs, layout, timeout=timeout)
    except processes.StartError as error:
        errors.print(f"[bold red]error:[/] {escape(str(error))}")
        errors.print(f"[dim]last lines of {escape(str(error.log))}:[/]")
        errors.print(escape(error.tail or "(empty)"), highlight=False)
        raise typer.Exit(1) from None

    by_name = {spec.name: spec for spec in specs}
    table = Table(title=f"Sluice is up (data: {escape(str(layout.data_dir))})")
    for column in ("service", "gRPC", "metrics", "pid", "log"):
        table.add_column(column, overflow="fold")
    for state in states:
        metrics = f"http://127.0.0.1:{by_name[state.name].metrics_port}/metrics"
        table.add_row(
            state.name,
            state.address,
            metrics,
            str(state.pid),
            escape(str(layout.log_file(state.name))),
        )
    console.print(table)


def down(
    data_dir: str = DATA_DIR_OPTION,
    grace: float = typer.Option(
        10.0, "--grace", help="Seconds to wait after SIGTERM before SIGKILL."
    ),
) -> None:
    """Stop the services `sluice up` started (SIGTERM, then SIGKILL after --grace seconds)."""
    layout = processes.LocalLayout.at(data_dir)
    results = processes.stop_stack(layout, grace=grace)
    if not results:
        console.print("Nothing is running.")
        return
    for result in results:
        console.print(f"{result.name} (pid {result.pid}): {result.outcome}")
    if any(result.outcome == "did not exit" for result in results):
        raise typer.Exit(1)


def status(
    data_dir: str = DATA_DIR_OPTION,
    base_port: int = BASE_PORT_OPTION,
    metrics_base_port: int = METRICS_BASE_PORT_OPTION,
) -> None:
    """Show the health of each service. Exits 1 when a started service is not SERVING."""
    layout = processes.LocalLayout.at(data_dir)
    statuses = processes.stack_status(available_services(base_port, metrics_base_port), layout)
    table = Table()
    for column in ("service", "address", "pid", "health"):
        table.add_column(column, overflow="fold")
    unhealthy = False
    for entry in statuses:
        color = "green" if entry.health == "SERVING" else "red"
        if entry.pid is None:
            pid = "-"
        elif entry.running:
            pid = str(entry.pid)
        else:
            pid = f"{entry.pid} (exited)"
        table.add_row(entry.name, entry.address, pid, f"[{color}]{entry.health}[/]")
        unhealthy |= entry.pid is not None and entry.health != "SERVING"
    console.print(table)
    if unhealthy:
        raise typer.Exit(1)
