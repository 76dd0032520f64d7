"""The ``encore`` command line.

Exit status, decided in one place (:func:`exit_code_for`): 0 success, 2 bad input (one line
``error: <why>`` on stderr), 1 any other failure. ``--json`` prints the same model the HTTP API answers.
"""

from __future__ import annotations

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


def exit_code_for(err: EncoreError) -> int:
    """The exit status for an error: 2 when the user's input is at fault, else 1."""
    return EXIT_BAD_INPUT if isinstance(err, BadInput | NotFound) else EXIT_FAILURE


def fail(message: str, *, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print ``error: message`` (one line) on stderr; return the Exit to raise."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
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

JsonOption = Annotated[bool, typer.Option("--json", help="Print the answer as JSON (the HTTP API's model).")]


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
    if as_json:
        typer.echo(report.model_dump_json())
    else:
        typer.echo(
            f"catalog: {report.added} added, {report.exists} already there, {report.rejected} rejected "
            f"({report.total} files, {report.took_s:.1f} s)"
        )
        for outcome in report.files:
            if outcome.status == "rejected":
                typer.echo(f"  rejected {outcome.path}: {outcome.reason}")
            else:
                who = f" - {outcome.artist}" if outcome.artist else ""
                typer.echo(f"  {outcome.status:<8} {outcome.track_id}  {outcome.title}{who}  ({outcome.path})")
    if report.rejected and report.rejected == report.total:
        only = report.files[0].reason if report.total == 1 else f"all {report.total} files were rejected"
        raise fail(f"nothing added: {only}")


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


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
