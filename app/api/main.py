"""All ``/v1`` routers, gathered in one place."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.routes import catalog, health, identify

api_router = APIRouter()
api_router.include_router(identify.router)
api_router.include_router(catalog.router)
api_router.include_router(health.router)
