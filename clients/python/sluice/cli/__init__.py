"""The `sluice` command line (needs the `cli` extra: typer and rich)."""
