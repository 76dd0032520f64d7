"""What an ingest run reports (``encore catalog add --json`` prints :class:`IngestReport`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

FileStatus = Literal["added", "exists", "rejected"]


class FileOutcome(BaseModel):
    """What happened to one file."""

    path: str = Field(description="The file, as found from the paths given.")
    status: FileStatus = Field(description="added; exists (the same audio was already indexed); rejected.")
    track_id: str | None = None
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    reason: str | None = Field(default=None, description="Why the file was rejected.")


class IngestReport(BaseModel):
    """Counts and per-file outcomes of one ``index_catalog`` run, in the order files were processed."""

    tier: Literal["catalog", "world"] = "catalog"
    added: int = 0
    exists: int = 0
    rejected: int = 0
    files: list[FileOutcome] = Field(default_factory=list)
    took_s: float = 0.0

    @property
    def total(self) -> int:
        return len(self.files)

    def record(self, outcome: FileOutcome) -> None:
        self.files.append(outcome)
        if outcome.status == "added":
            self.added += 1
        elif outcome.status == "exists":
            self.exists += 1
        else:
            self.rejected += 1


class BatchReport(BaseModel):
    """What a sample or MSD import stored (``encore world sample --json``)."""

    source: str
    added: int = 0
    exists: int = Field(default=0, description="Tracks already stored (a resumed run skips them).")
    rejected: int = 0
    took_s: float = 0.0
