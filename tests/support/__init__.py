"""Shared test support: importable helpers for the test suites (never imported by the product)."""
