"""``POST /v1/identify``: which catalog track is this clip from?"""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import EncoreDep, UploadDep
from app.api.errors import error_responses
from app.api.limits import HeavySlotDep
from schemas.api import IdentifyResult

router = APIRouter(prefix="/identify", tags=["identify"])

_EXAMPLES = {
    200: {
        "description": "The matching track, or `match: null` when the clip is unknown.",
        "content": {"application/json": {"examples": {
            "matched": {"summary": "A catalog track", "value": {
                "match": {"track_id": "6f1c3c0e-6a1b-5d0e-9a53-0b7c1f3d2e11", "title": "Battle Theme",
                          "artist": "Wesnoth", "album": None, "confidence": 0.998, "offset_s": 42.3,
                          "speed": 1.0, "aligned_hashes": 57, "decided_by": "landmarks"},
                "similar": [], "took_ms": 38.2}},
            "unknown": {"summary": "Not in the catalog", "value": {"match": None, "similar": [], "took_ms": 21.7}},
        }}},
    },
}


@router.post(
    "",
    response_model=IdentifyResult,
    summary="Identify a clip",
    responses={**_EXAMPLES, **error_responses(400, 413, 415, 503)},
)
def identify(encore: EncoreDep, _slot: HeavySlotDep, clip: UploadDep) -> IdentifyResult:
    """Upload a few seconds of audio (noisy, recorded by a phone, re-encoded: any format ffmpeg reads).

    The answer names the catalog track and where in it the clip starts (`offset_s`), or holds
    `"match": null` when the clip is not from any catalog track.

        curl -F file=@clip.m4a http://localhost:8000/v1/identify
    """
    # A plain ``def``: FastAPI runs it in the threadpool, so decoding never blocks the event loop.
    return encore.identify_file(clip)
