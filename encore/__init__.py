"""Encore: music identification (catalog tier) and discovery (world tier) over Qdrant."""

__version__ = "0.1.0"
