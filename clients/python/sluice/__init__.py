"""Sluice Python SDK: generated contracts (sluice.<service>.v1), typed clients and the CLI."""
