"""``GET /v1/health`` and ``GET /v1/stats``."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import EncoreDep
from app.api.errors import error_responses
from schemas.api import Health, StatsPublic

router = APIRouter(tags=["service"])


@router.get("/health", response_model=Health, summary="Liveness")
def health() -> Health:
    """`{"status": "ok"}` while the service is up."""
    return Health()


@router.get("/stats", response_model=StatsPublic, summary="Counts per tier, storage, encoders",
            responses=error_responses(429))
def stats(encore: EncoreDep) -> StatsPublic:
    """How many tracks and points each tier holds, which storage is in use and which encoders are loaded."""
    return encore.stats()
