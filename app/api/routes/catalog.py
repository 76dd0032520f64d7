"""``/v1/catalog/tracks``: add and remove the audio files a user owns."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Response, status

from app.api.deps import ApiKeyDep, EncoreDep, UploadDep, form_text
from app.api.errors import error_responses
from app.api.limits import HeavySlotDep
from encore.catalog import TrackMeta
from schemas.api import TrackCreated

router = APIRouter(prefix="/catalog/tracks", tags=["catalog"])


@router.post(
    "",
    response_model=TrackCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Add a track to the catalog",
    responses={
        200: {"model": TrackCreated, "description": "The same audio was already in the catalog (`status: exists`)."},
        **error_responses(400, 401, 413, 415),
    },
)
def add_track(
    encore: EncoreDep,
    _auth: ApiKeyDep,
    _slot: HeavySlotDep,
    upload: UploadDep,
    response: Response,
    title: Annotated[str | None, Form(description="Defaults to the file name without its extension.",
                                      examples=["Battle Theme"])] = None,
    artist: Annotated[str | None, Form(examples=["Wesnoth"])] = None,
    album: Annotated[str | None, Form(examples=["The Battle for Wesnoth"])] = None,
) -> TrackCreated:
    """Fingerprint an audio file and store it in the catalog.

    Adding the same audio again is harmless: the answer is `200` with `"status": "exists"` and the
    same `track_id`.

        curl -F file=@song.flac -F title="Battle Theme" -F artist=Wesnoth \\
             http://localhost:8000/v1/catalog/tracks
    """
    meta = TrackMeta(
        title=form_text(title) or form_text(upload.stem) or upload.name,
        artist=form_text(artist),
        album=form_text(album),
    )
    created = encore.add_catalog_file(upload, meta=meta)
    if created.status == "exists":
        response.status_code = status.HTTP_200_OK
    return created


@router.delete(
    "/{track_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a track from the catalog",
    responses=error_responses(401, 404),
)
def remove_track(track_id: str, encore: EncoreDep, _auth: ApiKeyDep) -> Response:
    """Remove a catalog track and every fingerprint of it; clips of it are then unknown."""
    encore.remove_catalog_track(track_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
