"""Copy Encore's collections from one store to another: embedded storage to a Qdrant server, a
single server to a cluster, one cluster to another.

The target is the store the environment configures (``ENCORE_QDRANT_URL`` or ``ENCORE_DATA_DIR``,
with ``ENCORE_*_SHARDS`` / ``ENCORE_*_REPLICAS``); the source is named on the command line::

    python -m encore.transfer --from-data-dir /old-data          # embedded storage (ENCORE_DATA_DIR)
    python -m encore.transfer --from-url http://old-qdrant:6333  # a Qdrant server

Why not a Qdrant snapshot: a snapshot restores a collection with the shard layout it was taken
with, so a one-shard collection stays one shard on a cluster. Here Encore creates the target
collections from its own definitions (shards and replicas from the environment, the schema
fingerprint recorded), checks that the source was written with the same definitions, and copies
every point (ids, vectors, payload) page by page. Point ids are deterministic, so a copy that is
interrupted can be run again: it rewrites what is there and adds what is missing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from encore.config import Settings
from encore.errors import BadInput, EncoreError, StorageError
from encore.storage import Point, VectorStore, open_store
from schemas.collections import CollectionSpec

#: Points read and written per page.
DEFAULT_BATCH = 256


@dataclass(frozen=True, slots=True)
class Copied:
    """Points of one collection: in the source, and in the target once copied."""

    collection: str
    source_points: int
    target_points: int


def copy_collections(
    source: VectorStore,
    target: VectorStore,
    specs: Sequence[CollectionSpec],
    *,
    batch: int = DEFAULT_BATCH,
    on_page: Callable[[str, int], None] | None = None,
) -> list[Copied]:
    """Copy every point of the collections ``specs`` from ``source`` into ``target``.

    Both stores are checked against the specs first (``ensure_collection``): a source written with
    other parameters raises :class:`~encore.errors.SchemaMismatch` before anything is copied.

    Parameters
    ----------
    source, target : open stores
    specs : the collection definitions (``Encore.catalog.spec``, ``Encore.world.spec``)
    batch : points per page
    on_page : called with (collection, points copied so far) after each page

    Returns
    -------
    copied : one :class:`Copied` per collection, in the order of ``specs``
    """
    if batch < 1:
        raise BadInput(f"batch must be at least 1, got {batch}")
    for spec in specs:
        source.ensure_collection(spec)
        target.ensure_collection(spec)
    out = []
    for spec in specs:
        done, offset = 0, None
        while True:
            records, offset = source.scroll(spec.name, limit=batch, offset=offset, with_payload=True,
                                            with_vectors=True)
            target.upsert(spec.name, [Point(id=r.id, vectors=dict(r.vectors or {}), payload=dict(r.payload or {}))
                                      for r in records])
            done += len(records)
            if on_page is not None:
                on_page(spec.name, done)
            if offset is None:
                break
        out.append(Copied(spec.name, source.count(spec.name), target.count(spec.name)))
    return out


def transfer(source_settings: Settings, target_settings: Settings, *, batch: int = DEFAULT_BATCH,
             on_page: Callable[[str, int], None] | None = None) -> list[Copied]:
    """Copy the catalog and world tiers from the store of ``source_settings`` into that of ``target_settings``.

    The target's collections are created by :class:`~encore.service.Encore` (so with the target's
    shard and replica settings); the source must already hold Encore collections.
    """
    from encore.service import Encore

    if source_settings.qdrant_url is None and not source_settings.storage_dir.is_dir():
        raise BadInput(f"{source_settings.data_dir}: no embedded storage there (expected {source_settings.storage_dir})")
    if _same_store(source_settings, target_settings):
        raise BadInput("the source and the target are the same store")
    with Encore.open(target_settings) as enc:
        source = open_store(source_settings)
        try:
            copied = copy_collections(source, enc.store, [enc.catalog.spec, enc.world.spec], batch=batch,
                                      on_page=on_page)
        finally:
            source.close()
    for c in copied:
        if c.target_points < c.source_points:
            raise StorageError(f"{c.collection}: {c.source_points} points in the source, only {c.target_points} "
                               "in the target after the copy")
    return copied


def _same_store(a: Settings, b: Settings) -> bool:
    if a.qdrant_url or b.qdrant_url:
        return (a.qdrant_url or "").rstrip("/") == (b.qdrant_url or "").rstrip("/")
    return a.storage_dir.resolve() == b.storage_dir.resolve()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m encore.transfer``: exit 0 when copied, 2 on bad input, 1 on other failure."""
    from encore.cli import exit_code_for

    parser = argparse.ArgumentParser(
        prog="python -m encore.transfer",
        description="Copy Encore's catalog and world into the store the environment configures "
                    "(ENCORE_QDRANT_URL or ENCORE_DATA_DIR, with ENCORE_*_SHARDS and ENCORE_*_REPLICAS).")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-url", help="the source Qdrant server, e.g. http://old-qdrant:6333")
    source.add_argument("--from-data-dir", type=Path, help="the source embedded storage (an ENCORE_DATA_DIR)")
    parser.add_argument("--from-api-key", help="API key of the source Qdrant server")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="points per page (default %(default)s)")
    args = parser.parse_args(argv)

    target_settings = Settings()
    source_settings = target_settings.model_copy(update={
        "qdrant_url": args.from_url,
        "qdrant_api_key": SecretStr(args.from_api_key) if args.from_api_key else None,
        "data_dir": args.from_data_dir if args.from_data_dir is not None else target_settings.data_dir,
    })

    def report(collection: str, done: int) -> None:
        sys.stderr.write(f"\r{collection}: {done} points copied")
        sys.stderr.flush()

    try:
        copied = transfer(source_settings, target_settings, batch=args.batch, on_page=report)
    except EncoreError as err:
        sys.stderr.write(f"\nerror: {' '.join(str(err).split())}\n")
        return exit_code_for(err)
    sys.stderr.write("\n")
    for c in copied:
        sys.stdout.write(f"{c.collection}: {c.source_points} points in the source, {c.target_points} in the target\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
