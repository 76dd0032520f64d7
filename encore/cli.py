"""The ``encore`` command line.

Exit status, decided in one place (:func:`exit_code_for`): 0 success, 2 bad input (one line
``error: <why>`` on stderr), 1 any other failure. ``--json`` prints the same model the HTTP API answers.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from encore.config import Settings, get_settings
from encore.errors import BadInput, EncoreError, NotFound

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2

#: Control characters (a newline or a NUL in a file name): they would break "one line per item".
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def exit_code_for(err: EncoreError) -> int:
    """The exit status for an error: 2 when the user's input is at fault, else 1."""
    return EXIT_BAD_INPUT if isinstance(err, BadInput | NotFound) else EXIT_FAILURE


def fail(message: str, *, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print ``error: message`` (one line) on stderr; return the Exit to raise."""
    typer.echo(f"error: {' '.join(_CONTROL.sub(' ', message).split())}", err=True)
    return typer.Exit(code)


class _ErrorsToExitCodes(TyperGroup):
    """Turns Encore errors raised by any (sub)command into one ``error:`` line and an exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EncoreError as err:
            raise fail(str(err), code=exit_code_for(err)) from None
        except KeyboardInterrupt:
            raise fail("interrupted", code=130) from None


HELP = """Encore: identify music against the audio files you own.

\b
Examples:
  encore catalog add ~/Music --metadata tracks.csv
  encore identify clip.m4a
  encore serve --port 8000
  encore stats --json
  encore snapshot create --out backups/

\b
Configuration: ENCORE_DATA_DIR (default ./data), ENCORE_QDRANT_URL, ENCORE_API_KEY.
Exit status: 0 success, 2 bad input (one 'error:' line on stderr), 1 other failure.
"""

cli = typer.Typer(
    cls=_ErrorsToExitCodes,
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
catalog_cli = typer.Typer(
    cls=_ErrorsToExitCodes,
    help="Add and remove the audio files Encore identifies (the catalog tier).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
cli.add_typer(catalog_cli, name="catalog")
world_cli = typer.Typer(
    cls=_ErrorsToExitCodes,
    help="Fill the world tier, the collection Encore discovers music in.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
cli.add_typer(world_cli, name="world")
snapshot_cli = typer.Typer(
    cls=_ErrorsToExitCodes,
    help="Back up both tiers to one archive, and restore it: here, or into a Qdrant server.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
cli.add_typer(snapshot_cli, name="snapshot")

JsonOption = Annotated[bool, typer.Option("--json", help="Print the answer as JSON (the HTTP API's model).")]
FilterOption = Annotated[
    list[str] | None,
    typer.Option("--filter", "-f", metavar="KEY=VALUE",
                 help="Repeatable. Keys: genre, artist, exclude_artist, year_min, year_max, tempo_min, tempo_max, "
                      "energy_min, energy_max, danceability_min, danceability_max, tags (comma-separated, all required)."),
]
LimitOption = Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="How many tracks.")]
TargetOption = Annotated[
    list[str] | None,
    typer.Option("--target", "-t", metavar="KEY=VALUE",
                 help="Repeatable preference, a boost rather than a filter. Keys: energy, danceability, tempo, year."),
]


def parse_targets(items: list[str] | None) -> Any:
    """``["energy=0.8"]`` as the API's Preferences; a bad key or value is BadInput."""
    from pydantic import ValidationError

    from schemas.api import Preferences

    values: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"--target {item!r}: expected KEY=VALUE, e.g. energy=0.8")
        values["target_" + key.strip().removeprefix("target_")] = value.strip()
    try:
        return Preferences(**values)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]).removeprefix("target_") or "target"
        raise BadInput(f"--target {where}: {first['msg']}") from None


def parse_filters(items: list[str] | None) -> Any:
    """``["genre=rock", "year_min=1980"]`` as the API's Filters; a bad key or value is BadInput."""
    from pydantic import ValidationError

    from schemas.api import Filters

    values: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise BadInput(f"--filter {item!r}: expected KEY=VALUE, e.g. genre=rock")
        values[key] = [t.strip() for t in value.split(",") if t.strip()] if key == "tags" else value.strip()
    try:
        return Filters(**values)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "filter"
        raise BadInput(f"--filter {where}: {first['msg']}") from None


def _print_tracks(tracks: list[Any], as_json: bool) -> None:
    from schemas.api import TracksPublic

    if as_json:
        typer.echo(TracksPublic(results=tracks, count=len(tracks)).model_dump_json())
        return
    if not tracks:
        typer.echo("no tracks match")
    for i, t in enumerate(tracks, 1):
        facts = ", ".join(str(x) for x in (t.genre, t.year, f"{t.tempo:.0f} bpm" if t.tempo else None) if x)
        sim = f"{t.similarity:.3f}  " if t.similarity is not None else ""
        typer.echo(f"{i:3d}. {sim}{t.title} - {t.artist}" + (f"  ({facts})" if facts else "") + f"  [{t.track_id}]")


@contextmanager
def _opened(settings: Settings | None = None) -> Iterator[Any]:
    from encore.service import Encore  # the store opens only for commands that need it

    enc = Encore.open(settings or get_settings())
    try:
        yield enc
    finally:
        enc.close()


@catalog_cli.command("add")
def catalog_add(
    paths: Annotated[list[Path], typer.Argument(help="Audio files or folders (walked recursively).", metavar="PATH...")],
    metadata: Annotated[
        Path | None,
        typer.Option("--metadata", "-m", help="CSV or JSONL keyed by 'file' with title, artist, album, year, genre."),
    ] = None,
    as_json: JsonOption = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
) -> None:
    """Index audio files or folders into the catalog.

    Title, artist and album come from the metadata file, else the file's tags, else the file name.
    Adding the same audio twice keeps one track. Files that can't be used are listed with the reason
    and the others are still added; the exit status is 2 only when no file could be added.

    \b
    Examples:
      encore catalog add song.flac other.mp3
      encore catalog add ~/Music --metadata tracks.csv
      encore catalog add ~/Music --json > report.json

    \b
    tracks.csv:
      file,title,artist,album
      song.flac,Battle Theme,Wesnoth,The Battle for Wesnoth
    """
    from indexers.metadata import read_metadata
    from indexers.pipeline import find_audio_files, index_catalog

    # What a user could have got wrong is checked before the store opens, so the error is about it.
    table = read_metadata(metadata) if metadata is not None else None
    find_audio_files(paths)
    with _opened() as enc:
        report = index_catalog(enc, paths, metadata=table, progress=progress and not as_json)
    _print_report(report, as_json)


@world_cli.command("add")
def world_add(
    paths: Annotated[list[Path], typer.Argument(help="Audio files or folders (walked recursively).", metavar="PATH...")],
    metadata: Annotated[
        Path | None,
        typer.Option("--metadata", "-m", help="CSV or JSONL keyed by 'file' with title, artist, album, year, genre."),
    ] = None,
    as_json: JsonOption = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
) -> None:
    """Embed, tag and describe audio files and add them to the world tier.

    Year and genre come from the metadata file or the files' tags. Adding the same audio twice
    keeps one track.

    \b
    Examples:
      encore world add ~/Music --metadata tracks.csv
      encore world add album/ --json > report.json
    """
    from indexers.metadata import read_metadata
    from indexers.pipeline import find_audio_files, index_world

    table = read_metadata(metadata) if metadata is not None else None
    find_audio_files(paths)
    with _opened() as enc:
        report = index_world(enc, paths, metadata=table, progress=progress and not as_json)
    _print_report(report, as_json)


@world_cli.command("sample")
def world_sample(
    count: Annotated[int, typer.Option("--count", "-c", min=1, max=200_000_000, help="How many tracks.")],
    seed: Annotated[int, typer.Option("--seed", "-s", help="Same seed, same collection.")] = 0,
    as_json: JsonOption = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
) -> None:
    """Fill the world tier with a synthetic but plausible collection, for demos and scale tests.

    Genres, eras, artists with several tracks each, and vectors and tags in the audio encoder's
    own space. Running it again (say after an interruption) stores only the tracks still missing.

    \b
    Examples:
      encore world sample --count 5000
      encore world sample --count 1000000 --seed 7
    """
    from indexers.pipeline import ingest_batches
    from indexers.sample import sample_batches

    with _opened() as enc:
        batches = sample_batches(count, seed=seed, head=enc.tag_head, space=enc.encoder.description.name)
        report = ingest_batches(enc, batches, total=count, source="sample", progress=progress and not as_json)
    _print_batch(report, as_json)


@world_cli.command("import-msd")
def world_import_msd(
    path: Annotated[Path, typer.Argument(help="An MSD track file (.h5), a folder of them, or msd_summary_file.h5.")],
    as_json: JsonOption = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
) -> None:
    """Import Million Song Dataset tracks: metadata, tempo, loudness, and mean timbre as a vector.

    \b
    Examples:
      encore world import-msd MillionSongSubset/
      encore world import-msd msd_summary_file.h5
    """
    from indexers.pipeline import ingest_batches, msd_batches

    if not path.exists():
        raise BadInput(f"{path}: no such file or folder")
    with _opened() as enc:
        batches = msd_batches(path, tag_space=enc.world.tag_space)
        report = ingest_batches(enc, batches, total=None, source="msd", progress=progress and not as_json)
    _print_batch(report, as_json)


def _shown(path: str) -> str:
    """A path for a line of text: control characters escaped (``new\\nline.wav``); --json keeps it as is."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], path)


def _print_report(report: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(report.model_dump_json())
    else:
        typer.echo(
            f"{report.tier}: {report.added} added, {report.exists} already there, {report.rejected} rejected "
            f"({report.total} files, {report.took_s:.1f} s)"
        )
        for outcome in report.files:
            if outcome.status == "rejected":
                typer.echo(f"  rejected {_shown(outcome.path)}: {_shown(outcome.reason or '')}")
            else:
                who = f" - {outcome.artist}" if outcome.artist else ""
                typer.echo(f"  {outcome.status:<8} {outcome.track_id}  {outcome.title}{who}  ({_shown(outcome.path)})")
    if report.rejected and report.rejected == report.total:
        only = report.files[0].reason if report.total == 1 else f"all {report.total} files were rejected"
        raise fail(f"nothing added: {only}")


def _print_batch(report: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(report.model_dump_json())
    else:
        typer.echo(f"world ({report.source}): {report.added} added, {report.exists} already there, "
                   f"{report.rejected} rejected ({report.took_s:.1f} s)")


@cli.command()
def similar(
    track_id: Annotated[str, typer.Argument(help="A world track id.")],
    filters: FilterOption = None,
    targets: TargetOption = None,
    limit: LimitOption = 10,
    as_json: JsonOption = False,
) -> None:
    """World tracks that sound like a track (GET /v1/tracks/{track_id}/similar).

    \b
    Examples:
      encore similar 6f1c3c0e-6a1b-5d0e-9a53-0b7c1f3d2e11
      encore similar 6f1c3c0e-6a1b-5d0e-9a53-0b7c1f3d2e11 -f year_min=1970 -f year_max=1979
    """
    flt, prefer = parse_filters(filters), parse_targets(targets)
    with _opened() as enc:
        tracks = enc.similar_tracks(track_id, filters=flt, limit=limit, prefer=prefer)
    _print_tracks(tracks, as_json)


@cli.command()
def radio(
    artist: Annotated[str, typer.Argument(help="An artist in the world tier (case-insensitive).")],
    filters: FilterOption = None,
    targets: TargetOption = None,
    limit: LimitOption = 20,
    as_json: JsonOption = False,
) -> None:
    """Artist radio: tracks by other artists that sound like this one, a few per artist.

    \b
    Examples:
      encore radio "The Velvet Owls"
      encore radio "The Velvet Owls" -f year_min=2000 -n 30
    """
    flt, prefer = parse_filters(filters), parse_targets(targets)
    with _opened() as enc:
        tracks = enc.artist_radio(artist, filters=flt, limit=limit, prefer=prefer)
    _print_tracks(tracks, as_json)


@cli.command()
def playlist(
    tags: Annotated[list[str], typer.Argument(help="Tags, each optionally weighted: happy party=0.5 sad=-1.",
                                              metavar="TAG[=WEIGHT]...")],
    filters: FilterOption = None,
    targets: TargetOption = None,
    limit: LimitOption = 20,
    as_json: JsonOption = False,
) -> None:
    """A mood playlist: tracks leaning to the tags, within descriptor ranges.

    \b
    Examples:
      encore playlist happy party -f energy_min=0.7 -t tempo=128
      encore playlist chill Mellow sad=-0.5 -f danceability_max=0.5
    """
    weights: dict[str, float] = {}
    for item in tags:
        name, sep, value = item.partition("=")
        try:
            weights[name.strip()] = float(value) if sep else 1.0
        except ValueError:
            raise BadInput(f"{item!r}: a tag weight must be a number, e.g. sad=-0.5") from None
    flt, prefer = parse_filters(filters), parse_targets(targets)
    with _opened() as enc:
        tracks = enc.mood_playlist(weights, filters=flt, limit=limit, prefer=prefer)
    _print_tracks(tracks, as_json)


@cli.command()
def search(
    text: Annotated[str | None, typer.Argument(help="What to look for, in words.", metavar="TEXT")] = None,
    voice: Annotated[Path | None, typer.Option(
        "--voice", help="Search by a spoken query instead (a recording ffmpeg reads; POST /v1/search/voice).",
    )] = None,
    filters: FilterOption = None,
    limit: LimitOption = 20,
    as_json: JsonOption = False,
) -> None:
    """Natural-language search of the world tier (the answer of POST /v1/search).

    Prints how the query was understood, then the tracks. Explicit --filter values win over
    what the query implies.

    \b
    Examples:
      encore search "happy songs for a workout"
      encore search "80s rock but not Queen" -n 10
      encore search "something like Daft Punk" --json
      encore search --voice request.m4a
    """
    if (text is None) == (voice is None):
        raise BadInput("give either TEXT or --voice FILE")
    flt = parse_filters(filters)
    if voice is not None:
        if not voice.is_file():
            raise BadInput(f"{voice}: no such file")
        if not flt.is_empty():
            raise BadInput("--filter applies to text queries; say the filter in the recording instead")
        with _opened() as enc:
            result = enc.search_voice_file(voice, limit=limit)
        if not as_json:
            typer.echo(f"  heard: {result.transcript!r}")
    else:
        with _opened() as enc:
            result = enc.search(text or "", limit=limit, filters=None if flt.is_empty() else flt)
    if as_json:
        typer.echo(result.model_dump_json())
        return
    for line in result.interpretation.explanations:
        typer.echo(f"  understood: {line}")
    _print_tracks(result.results, False)


@cli.command("genre-neighbours")
def genre_neighbours(
    genre: Annotated[str, typer.Argument(help="A genre of the world tier.")],
    limit: LimitOption = 5,
    as_json: JsonOption = False,
) -> None:
    """The genres that sound nearest a genre (by their tracks' centroids).

    \b
    Example:
      encore genre-neighbours metal
    """
    with _opened() as enc:
        answer = enc.genre_neighbours(genre, limit=limit)
    if as_json:
        typer.echo(answer.model_dump_json())
        return
    for n in answer.neighbours:
        typer.echo(f"{n.genre:<12} {n.similarity:.3f}  ({n.tracks} tracks)")


@cli.command()
def track(
    track_id: Annotated[str, typer.Argument(help="A world track id.")],
    as_json: JsonOption = False,
) -> None:
    """One world track: metadata, descriptors and its strongest tags (GET /v1/tracks/{track_id}).

    \b
    Examples:
      encore track 6f1c3c0e-6a1b-5d0e-9a53-0b7c1f3d2e11
      encore track 6f1c3c0e-6a1b-5d0e-9a53-0b7c1f3d2e11 --json
    """
    with _opened() as enc:
        answer = enc.world_track(track_id)
    if as_json:
        typer.echo(answer.model_dump_json())
        return
    typer.echo(f"{answer.title} - {answer.artist}" + (f" ({answer.album})" if answer.album else ""))
    facts = {"year": answer.year, "genre": answer.genre,
             "tempo": f"{answer.tempo:.0f} bpm" if answer.tempo is not None else None,
             "energy": f"{answer.energy:.2f}" if answer.energy is not None else None,
             "danceability": f"{answer.danceability:.2f}" if answer.danceability is not None else None}
    typer.echo("  " + ", ".join(f"{k} {v}" for k, v in facts.items() if v is not None))
    for tag, score in sorted((answer.tags or {}).items(), key=lambda kv: -kv[1])[:10]:
        typer.echo(f"  {tag:<18} {'#' * max(1, round(score * 30))} {score:.2f}")


@catalog_cli.command("remove")
def catalog_remove(track_id: Annotated[str, typer.Argument(help="The track_id printed by 'catalog add'.")]) -> None:
    """Remove a track from the catalog.

    \b
    Example:
      encore catalog remove 6f1c3c0e-6a1b-5d0e-9a53-0b7c1f3d2e11
    """
    with _opened() as enc:
        enc.remove_catalog_track(track_id)
    typer.echo(f"removed {track_id}")


@cli.command()
def identify(
    clip: Annotated[Path, typer.Argument(help="A recording of a few seconds, any format ffmpeg reads.")],
    as_json: JsonOption = False,
) -> None:
    """Identify a clip against the catalog (the answer of POST /v1/identify).

    Prints the track and where in it the clip starts, or 'unknown' (exit status 0 either way).

    \b
    Examples:
      encore identify clip.m4a
      encore identify clip.m4a --json
    """
    if not clip.is_file():
        raise BadInput(f"{clip}: no such file")
    with _opened() as enc:
        result = enc.identify_file(clip)
    if as_json:
        typer.echo(result.model_dump_json())
    elif result.match is None:
        typer.echo("unknown: the clip matches no catalog track")
    else:
        m = result.match
        by = " - ".join(x for x in (m.artist, m.album) if x)
        typer.echo(f"{m.title}" + (f" ({by})" if by else ""))
        typer.echo(f"  at {m.offset_s:.1f} s, confidence {m.confidence:.2f}, track {m.track_id}")


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
) -> None:
    """Run the HTTP API and the web page.

    \b
    Examples:
      encore serve
      ENCORE_API_KEY=secret encore serve --host 0.0.0.0 --port 8080
    """
    import uvicorn

    shown = "localhost" if host in ("0.0.0.0", "::") else host
    typer.echo(f"Encore is serving at http://{shown}:{port}/ (API docs: http://{shown}:{port}/docs)")
    sys.stdout.flush()
    uvicorn.run("app.main:create_app", factory=True, host=host, port=port)


@cli.command()
def stats(as_json: JsonOption = False) -> None:
    """Counts per tier, storage in use, encoders loaded (the answer of GET /v1/stats).

    \b
    Example:
      encore stats --json
    """
    with _opened() as enc:
        answer = enc.stats()
    if as_json:
        typer.echo(answer.model_dump_json())
        return
    typer.echo(f"catalog: {answer.catalog.tracks} tracks, {answer.catalog.points} points")
    if answer.world is not None:
        typer.echo(f"world:   {answer.world.tracks} tracks, {answer.world.points} points")
    typer.echo("storage: " + ", ".join(f"{k}={v}" for k, v in answer.storage.items()))
    if answer.encoders:
        typer.echo("encoders: " + ", ".join(f"{k}={v}" for k, v in answer.encoders.items()))
    typer.echo(f"version: {answer.version}")
    if answer.versions:
        typer.echo("versions: " + ", ".join(f"{k} {v}" for k, v in answer.versions.items()))


@snapshot_cli.command("create")
def snapshot_create(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the archive in (created if needed).")]
    = Path("."),
    as_json: JsonOption = False,
) -> None:
    """Write the catalog and world tiers to one archive file.

    The archive, encore-snapshot-<UTC time>.tar, holds a manifest (Encore version, time,
    collection definitions, counts, checksums) and every point with its vectors and payload.
    It is the same for embedded storage and a Qdrant server, and restores into either.

    \b
    Examples:
      encore snapshot create --out backups/
      ENCORE_QDRANT_URL=http://qdrant:6333 encore snapshot create --json
    """
    from encore.snapshot import create_snapshot

    if out.exists() and not out.is_dir():
        raise BadInput(f"{out}: not a folder")
    with _opened() as enc:
        created = create_snapshot(enc, out)
    if as_json:
        typer.echo(created.model_dump_json())
        return
    tiers = created.manifest.tiers
    typer.echo(f"snapshot {created.path}: catalog {tiers['catalog'].tracks} tracks ({tiers['catalog'].points} points), "
               f"world {tiers['world'].tracks} tracks, {created.bytes / 1e6:.1f} MB, {created.took_s:.1f} s")
    if tiers["catalog"].skipped_tracks:
        typer.echo(f"  left out {tiers['catalog'].skipped_tracks} incomplete catalog tracks", err=True)


@snapshot_cli.command("restore")
def snapshot_restore(
    path: Annotated[Path, typer.Argument(help="An archive written by 'encore snapshot create'.", metavar="PATH")],
    force: Annotated[bool, typer.Option("--force", help="Replace the catalog and world already stored.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Restore a snapshot into the configured store.

    That is ENCORE_DATA_DIR, or the Qdrant server of ENCORE_QDRANT_URL: restoring a snapshot of
    embedded storage there moves the collections to the server. The whole archive is checked
    first: a damaged one, one written with other collection definitions, or one that would
    replace stored data without --force changes nothing (exit 2).

    \b
    Examples:
      encore snapshot restore backups/encore-snapshot-20250101T120000Z.tar
      encore snapshot restore snap.tar --force
      ENCORE_QDRANT_URL=http://qdrant:6333 encore snapshot restore snap.tar
    """
    from encore.snapshot import restore_snapshot, verify_snapshot
    from encore.storage import open_store

    manifest = verify_snapshot(path)  # before the store opens: a bad archive leaves the data folder untouched
    settings = get_settings()
    store = open_store(settings)
    try:
        restored = restore_snapshot(store, settings, path, force=force, verified=manifest)
    finally:
        store.close()
    if as_json:
        typer.echo(restored.model_dump_json())
        return
    where = settings.qdrant_url if settings.qdrant_url else str(settings.storage_dir)
    typer.echo(f"restored {path} into {where}: catalog {restored.tiers['catalog'].tracks} tracks "
               f"({restored.tiers['catalog'].points} points), world {restored.tiers['world'].tracks} tracks, "
               f"{restored.took_s:.1f} s" + (" (replaced what was stored)" if restored.replaced else ""))


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
