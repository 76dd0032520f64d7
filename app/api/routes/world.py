"""``/v1/world/tracks``: add audio to the world tier, the collection Encore discovers music in."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Response, status

from app.api.deps import ApiKeyDep, EncoreDep, UploadDep, form_text
from app.api.errors import error_responses
from app.api.limits import HeavySlotDep
from indexers.metadata import TrackInfo
from schemas.api import TrackCreated

router = APIRouter(prefix="/world/tracks", tags=["world"])


@router.post(
    "",
    response_model=TrackCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Add a track to the world tier",
    responses={
        200: {"model": TrackCreated, "description": "The same audio was already in the world tier (`status: exists`)."},
        **error_responses(400, 401, 413, 415),
    },
)
def add_world_track(
    encore: EncoreDep,
    _auth: ApiKeyDep,
    _slot: HeavySlotDep,
    upload: UploadDep,
    response: Response,
    title: Annotated[str | None, Form(description="Defaults to the file name without its extension.")] = None,
    artist: Annotated[str | None, Form(examples=["Nina Simone"])] = None,
    album: Annotated[str | None, Form()] = None,
    year: Annotated[int | None, Form(ge=1000, le=3000, examples=[1965])] = None,
    genre: Annotated[str | None, Form(examples=["jazz"])] = None,
) -> TrackCreated:
    """Embed the audio (musicnn), tag it (50 MSD tags), describe it (tempo, energy, danceability,
    loudness, key) and store it with its metadata.

        curl -F file=@song.flac -F artist="Nina Simone" -F year=1965 -F genre=jazz \\
             http://localhost:8000/v1/world/tracks
    """
    info = TrackInfo(title=form_text(title) or form_text(upload.stem) or upload.name, artist=form_text(artist),
                     album=form_text(album), year=year, genre=form_text(genre))
    created = encore.add_world_file(upload, info=info)
    if created.status == "exists":
        response.status_code = status.HTTP_200_OK
    return created
