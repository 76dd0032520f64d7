"""``POST /v1/search``: natural-language search of the world tier, with how the query was understood."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import EncoreDep, UploadDep
from app.api.errors import error_responses
from app.api.limits import HeavySlotDep
from schemas.search import SearchRequest, SearchResult, VoiceSearchResult

router = APIRouter(prefix="/search", tags=["search"])


@router.post("", response_model=SearchResult, summary="Search in words", responses=error_responses(400))
def search(body: SearchRequest, encore: EncoreDep) -> SearchResult:
    """Type what you want ("happy songs for workout", "80s rock but not Queen", "something like
    Daft Punk", "chill electronic for studying over 120 bpm"). The answer says how the query was
    understood (`interpretation`: years, genres, moods, tempo, artists to sound like, keep or
    leave out, with one explanation line each) and lists the tracks. `filters` given explicitly
    win over the query's.

        curl -H 'Content-Type: application/json' -d '{"query": "sad piano music from the nineties"}' \\
             http://localhost:8000/v1/search
    """
    return encore.search(body.query, limit=body.limit, filters=body.filters)


@router.post("/voice", response_model=VoiceSearchResult, summary="Search by voice",
             responses=error_responses(400, 413, 415))
def search_voice(
    encore: EncoreDep,
    _slot: HeavySlotDep,
    speech: UploadDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> VoiceSearchResult:
    """Upload a short spoken query (any format ffmpeg reads, up to `ENCORE_VOICE_MAX_SECONDS`, 15 s
    by default). The answer holds the transcript, how it was understood, and the tracks.

    The recognizer's language model is built from query templates and the collection's own
    artists and genres. Silence, noise or nothing recognisable is a 400 with a message, never a
    guessed query.

        curl -F file=@query.wav http://localhost:8000/v1/search/voice
    """
    return encore.search_voice_file(speech, limit=limit)
