"""All ``/v1`` routers, gathered in one place."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.errors import error_responses
from app.api.routes import catalog, discovery, health, identify, jobs, search, tracks, world

api_router = APIRouter()
# Any of these may answer 429: the per-client rate limit (app.api.limits) covers all of /v1 but
# /v1/health (the stats route, beside it, documents its own 429).
for limited in (identify, catalog, world, jobs, tracks, discovery, search):
    api_router.include_router(limited.router, responses=error_responses(429))
api_router.include_router(health.router)
