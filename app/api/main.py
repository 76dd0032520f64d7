"""All ``/v1`` routers, gathered in one place."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.routes import catalog, discovery, health, identify, jobs, search, tracks, world

api_router = APIRouter()
api_router.include_router(identify.router)
api_router.include_router(catalog.router)
api_router.include_router(world.router)
api_router.include_router(jobs.router)
api_router.include_router(tracks.router)
api_router.include_router(discovery.router)
api_router.include_router(search.router)
api_router.include_router(health.router)
