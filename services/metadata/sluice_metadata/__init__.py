"""Sluice metadata service."""
