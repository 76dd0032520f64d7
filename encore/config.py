"""The one settings object. Every knob an operator can turn is an ``ENCORE_`` variable."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ENCORE_", env_file=None, extra="ignore")

    data_dir: Path = Field(default=Path("./data"), description="Embedded storage and caches.")
    qdrant_url: str | None = Field(default=None, description="Qdrant server or cluster; disables embedded storage.")
    qdrant_api_key: SecretStr | None = Field(default=None, description="API key for the Qdrant server.")
    api_key: SecretStr | None = Field(default=None, description="When set, write endpoints need X-API-Key.")
    collection_prefix: str = Field(default="encore_", description="Prefix of every collection name.")

    max_upload_bytes: int = Field(default=100 * 1024 * 1024, description="Largest accepted upload (413 past it).")
    max_audio_seconds: float = Field(default=3600.0, description="Longest accepted audio, in seconds.")
    max_query_seconds: float = Field(default=60.0, description="Longest identify clip analysed; longer clips are cut.")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS.")
    rate_limit_per_minute: int = Field(
        default=600, ge=0, description="Requests a minute one client (IP address) may make to /v1, in bursts of "
                                       "up to as many; past it 429 with Retry-After. /v1/health is exempt. 0: no limit.")
    max_heavy_requests: int = Field(
        default=4, ge=0, description="Requests decoding audio at once (identify, catalog and world adds, voice "
                                     "search); more wait their turn, then 429. 0: no bound.")
    heavy_wait_seconds: float = Field(
        default=10.0, ge=0, description="How long a heavy request waits for its turn before it is answered 429.")
    analysis_workers: int | None = Field(
        default=None, ge=0, description="Processes that decode and analyse identify clips (ffmpeg, fingerprint, "
                                        "embedding) beside the server process, which keeps the store and the "
                                        "queries, so identify can use every core. 0: in the request's thread. "
                                        "Unset: when serving, one per usable core (0 on a single core); "
                                        "elsewhere (CLI, Python) 0.")
    query_decoder: Literal["auto", "pyav", "ffmpeg"] = Field(
        default="auto", description="How identify and voice-search clips are decoded: pyav in-process (PyAV, "
                                    "no ffmpeg process per clip: about an eighth of the CPU for a 5 s MP3), "
                                    "ffmpeg in a subprocess, or auto (pyav when PyAV is installed). Catalog and "
                                    "world adds always use the ffmpeg subprocess: track ids are hashes of its "
                                    "samples.")
    max_jobs: int = Field(
        default=1, ge=1, description="Ingest jobs that run at once; each decodes and embeds, so one keeps CPU "
                                     "free for identify and search.")
    max_queued_jobs: int = Field(
        default=8, ge=0, description="Jobs that may wait behind the running ones; past it a new job is refused (429).")
    jobs_kept: int = Field(
        default=100, ge=1, description="Ended jobs whose status stays readable; the oldest are forgotten first.")
    max_job_upload_bytes: int = Field(
        default=2 * 1024**3, ge=1, description="Largest total upload of one ingest job (413 past it); each file is "
                                               "also held to max_upload_bytes.")

    musicnn_checkpoint: Path | None = Field(
        default=None, description="musicnn MSD checkpoint directory; default: the one in the musicnn package.")
    musicnn_max_patches: int = Field(default=16, ge=1, description="Most 3 s patches embedded per world track.")
    text_encoder: Literal["wordllama", "sentence-transformers"] = Field(
        default="wordllama", description="Text encoder for search: wordllama (shipped weights) or a local model.")
    text_encoder_path: Path | None = Field(
        default=None, description="Local sentence-transformers model directory (text_encoder=sentence-transformers).")
    speech_recognizer: Literal["pocketsphinx", "whisper"] = Field(
        default="pocketsphinx", description="Voice search: pocketsphinx (shipped model) or whisper (local checkpoint).")
    whisper_checkpoint: Path | None = Field(default=None, description="openai-whisper checkpoint file (.pt).")
    voice_max_seconds: float = Field(default=15.0, gt=0, description="Longest voice query accepted.")
    voice_domain_artists: int = Field(
        default=100, ge=0,
        description="Most artists (by track count) in the voice recognizer's language model; more names, "
                    "more confusions with the query words (bench/voice.py).")
    catalog_embeddings: bool = Field(
        default=False,
        description="Store a musicnn embedding per catalog segment: the second identify signal. Off by default: "
                    "measured, it added no identification and cut ingest from ~128x to ~52x real time "
                    "(BENCHMARKS.md).")
    clap_weights: Path | None = Field(
        default=None, description="A local CLAP checkpoint (Hugging Face format): adds a clap space to the world "
                                  "tier, used for similarity and, through CLAP's text tower, for text search.")
    clap_dim: int = Field(default=512, ge=1, description="Projection size of the CLAP checkpoint.")
    world_quantization: Literal["int8", "none"] = Field(
        default="int8", description="Scalar quantization of the world vectors. int8 (default): an int8 copy of "
                                    "each vector is kept in RAM beside the original, filtered searches scan it "
                                    "(4x less memory to read) and rescore; none: float32 only.")
    world_shards: int | None = Field(default=None, ge=1, description="Shards of the world collection (cluster).")
    world_replicas: int | None = Field(default=None, ge=1, description="Replication factor of the world collection.")
    catalog_shards: int | None = Field(default=None, ge=1, description="Shards of the catalog collection (cluster).")
    catalog_replicas: int | None = Field(
        default=None, ge=1, description="Replication factor of the catalog collection (cluster).")

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / "qdrant"


@lru_cache
def get_settings() -> Settings:
    return Settings()
