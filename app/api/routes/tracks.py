"""``/v1/tracks``: a world track, and the tracks that sound like it."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import EncoreDep, FilteredQueryDep
from app.api.errors import error_responses
from schemas.api import TrackPublic, TracksPublic

router = APIRouter(prefix="/tracks", tags=["discovery"])


@router.get("/{track_id}", response_model=TrackPublic, summary="A world track",
            responses=error_responses(404))
def get_track(track_id: str, encore: EncoreDep) -> TrackPublic:
    """Metadata, descriptors and top tags of a world track."""
    return encore.world_track(track_id)


@router.get("/{track_id}/similar", response_model=TracksPublic, summary="Tracks that sound like a track",
            responses=error_responses(400, 404))
def similar(track_id: str, encore: EncoreDep, query: FilteredQueryDep) -> TracksPublic:
    """Nearest neighbours of a world track in the audio-embedding space, under the filters, boosted
    towards any `target_*` preferences.

        curl 'http://localhost:8000/v1/tracks/6f1c3c0e-6a1b-5d0e-9a53-0b7c1f3d2e11/similar?year_min=1970&year_max=1979'
    """
    results = encore.similar_tracks(track_id, filters=query.filters(), limit=query.limit or 10,
                                    prefer=query.preferences())
    return TracksPublic(results=results, count=len(results))
