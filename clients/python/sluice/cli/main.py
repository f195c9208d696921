"""`sluice`: the command line of the Sluice platform.

Each command group lives in its own module under `sluice.cli` with a `register(app)` function
that adds its commands (``app.command()(fn)``) or its sub-app (``app.add_typer(group, name=...)``).
To add one, write the module and list it in `COMMAND_MODULES`.
"""

from __future__ import annotations

import typer

from sluice.cli import evaluation, lineage, local, serving, shortcuts, training, validation

app = typer.Typer(
    name="sluice",
    help="Sluice: a production ML platform of gRPC services. Run `sluice up` to start it locally.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

COMMAND_MODULES = (local, lineage, shortcuts, serving, validation, training, evaluation)
for module in COMMAND_MODULES:
    module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
