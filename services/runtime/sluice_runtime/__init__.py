"""Shared runtime of every Sluice service."""
