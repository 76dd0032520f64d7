"""Helpers shared by the tests (synthetic audio)."""
