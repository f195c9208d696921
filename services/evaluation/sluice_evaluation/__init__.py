"""Sluice evaluation service: sliced metrics with bootstrap intervals, blessings against the
serving baseline, and infra validation in a sandboxed serving process."""
