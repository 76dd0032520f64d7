"""Discovery by artist, mood and genre: ``/v1/artists/{artist}/radio``, ``/v1/playlists/mood``,
``/v1/genres/{genre}/neighbours``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import EncoreDep, FilteredQueryDep
from app.api.errors import error_responses
from schemas.api import Filters, GenreNeighboursPublic, Preferences, TracksPublic

router = APIRouter(tags=["discovery"])


@router.get("/artists/{artist}/radio", response_model=TracksPublic, summary="Artist radio",
            responses=error_responses(400, 404))
def artist_radio(artist: str, encore: EncoreDep, query: FilteredQueryDep) -> TracksPublic:
    """Tracks by other artists near this artist's sound (the centroid of their tracks), at most two
    per artist, none by the artist.

        curl 'http://localhost:8000/v1/artists/Nina%20Simone/radio?year_max=1979'
    """
    results = encore.artist_radio(artist, filters=query.filters(), limit=query.limit or 20,
                                  prefer=query.preferences())
    return TracksPublic(results=results, count=len(results))


class MoodRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "tags": {"happy": 1.0, "party": 0.5, "sad": -0.5}, "filters": {"energy_min": 0.7, "tempo_min": 120},
        "prefer": {"target_tempo": 128}, "limit": 20}})

    tags: dict[str, float] = Field(description="Tag weights; negative weights steer away from a tag.")
    filters: Filters | None = None
    prefer: Preferences | None = Field(default=None, description="target_* preferences (a boost, not a filter).")
    limit: int = Field(default=20, ge=1, le=1000)


@router.post("/playlists/mood", response_model=TracksPublic, summary="Mood playlist",
             responses=error_responses(400))
def mood_playlist(body: MoodRequest, encore: EncoreDep) -> TracksPublic:
    """Tracks leaning towards the weighted tags (musicnn's 50 MSD tags), within the filters' ranges."""
    results = encore.mood_playlist(body.tags, filters=body.filters, limit=body.limit, prefer=body.prefer)
    return TracksPublic(results=results, count=len(results))


@router.get("/genres/{genre}/neighbours", response_model=GenreNeighboursPublic, summary="Genre neighbours",
            responses=error_responses(404))
def genre_neighbours(genre: str, encore: EncoreDep,
                     limit: Annotated[int, Query(ge=1, le=50)] = 5) -> GenreNeighboursPublic:
    """The genres whose tracks sound nearest this genre's (cosine of their centroids)."""
    return encore.genre_neighbours(genre, limit=limit)
