"""One exception tree. HTTP status codes and CLI exit codes are mapped from it in one place each
(``app/api/errors.py`` and ``encore/cli.py``)."""

from __future__ import annotations


class EncoreError(Exception):
    """Base of every error Encore raises on purpose. ``str(err)`` is a message for the user."""


class BadInput(EncoreError):
    """The request or file is malformed (HTTP 400, exit 2)."""


class BadAudio(BadInput):
    """The audio decodes but can't be used: empty, too short, silent, truncated (HTTP 400, exit 2)."""


class NotAudio(BadInput):
    """ffmpeg finds no audio stream in the file (HTTP 415, exit 2)."""


class TooLarge(BadInput):
    """The upload or the audio is past the configured limit (HTTP 413, exit 2)."""


class BadMetadata(BadInput):
    """A metadata file or field is malformed (HTTP 400, exit 2)."""


class NotFound(EncoreError):
    """No such track (HTTP 404, exit 2)."""


class Conflict(EncoreError):
    """The request clashes with what is stored (HTTP 409, exit 1)."""


class SchemaMismatch(EncoreError):
    """Storage was written with other parameters than this build uses (HTTP 500, exit 1)."""


class StorageError(EncoreError):
    """The vector store failed (HTTP 503, exit 1)."""


class Unauthorized(EncoreError):
    """Missing or wrong API key (HTTP 401)."""


class Busy(EncoreError):
    """The service is at a limit (requests from one client, work running at once); try again later
    (HTTP 429 with ``Retry-After`` when ``retry_after`` is known, exit 1)."""

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QueueFull(Busy):
    """As many jobs are running and waiting as the service takes; try again later (HTTP 429, exit 1)."""


class ServiceUnavailable(EncoreError):
    """A part of the service stopped mid-request and is restarting (a clip-analysis process died),
    or the service is shutting down; try again shortly (HTTP 503 with ``Retry-After`` when
    ``retry_after`` is known, exit 1)."""

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
