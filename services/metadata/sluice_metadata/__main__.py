"""`python -m sluice_metadata` / `sluice-metadata`: serve, migrate, or show the schema revision.

    sluice-metadata                 serve (same as `sluice-metadata serve`)
    sluice-metadata migrate         upgrade the database to the newest schema revision
    sluice-metadata migrate --to 0001
    sluice-metadata status          print the database's revision and the one this code needs

Settings come from the environment: see sluice_metadata/config.py and the README.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sluice_runtime.config import ConfigError
from sluice_runtime.errors import FailedPrecondition

from sluice_metadata.config import MetadataConfig
from sluice_metadata.migrate import schema_status, upgrade
from sluice_metadata.sql_store import create_store_engine


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sluice-metadata",
        description="Sluice metadata service: the lineage store.",
        epilog="The database is SLUICE_METADATA_DATABASE_URL "
        "(default sqlite:///$SLUICE_DATA_DIR/metadata.db).",
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve gRPC until SIGTERM or SIGINT (the default)")
    migrate = commands.add_parser("migrate", help="upgrade the database schema")
    migrate.add_argument("--to", default="head", help="target revision (default: head, the newest)")
    commands.add_parser("status", help="show the database's schema revision")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = MetadataConfig.from_env()
        if args.command == "migrate":
            return _migrate(config, args.to)
        if args.command == "status":
            return _status(config)
        from sluice_metadata.server import serve

        serve(config)
        return 0
    except (ConfigError, ValueError) as error:
        print(f"sluice-metadata: configuration error: {error}", file=sys.stderr)
        return 2
    except FailedPrecondition as error:
        print(f"sluice-metadata: {error.message}", file=sys.stderr)
        return 2


def _migrate(config: MetadataConfig, revision: str) -> int:
    engine = create_store_engine(config.database_url, pool_size=1, max_overflow=0)
    try:
        before = schema_status(engine)
        upgrade(engine, revision)
        after = schema_status(engine)
    finally:
        engine.dispose()
    url = engine.url.render_as_string(hide_password=True)
    print(f"{url}: schema revision {before.revision or '(none)'} -> {after.revision}")
    return 0


def _status(config: MetadataConfig) -> int:
    engine = create_store_engine(config.database_url, pool_size=1, max_overflow=0)
    try:
        status = schema_status(engine)
    finally:
        engine.dispose()
    url = engine.url.render_as_string(hide_password=True)
    print(
        f"{url}: {status.state.value} (revision {status.revision or '(none)'}, needs {status.head})"
    )
    return 0 if status.state.value == "current" else 1


if __name__ == "__main__":
    sys.exit(main())
