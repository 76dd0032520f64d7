"""Collection definitions and API models."""
