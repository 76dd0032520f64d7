"""The Encore facade: the one object the HTTP app, the CLI, benchmarks and notebooks talk to.

It owns the store and the tiers, and turns files into answers (``schemas.api`` models).
Build it with :meth:`Encore.open`; nothing here runs at import time.

INTERFACE (implemented by the core; app/CLI code against these signatures):

    enc = Encore.open(settings)                       # opens the store, ensures collections
    enc.add_catalog_file(path, meta=TrackMeta(...))   -> TrackCreated   (status "added" or "exists")
    enc.add_catalog_audio(y, meta=TrackMeta(...))     -> TrackCreated   (y: mono float32 at enc.sr)
    enc.remove_catalog_track(track_id)                -> None, raises NotFound
    enc.identify_file(path)                           -> IdentifyResult
    enc.identify_audio(y)                             -> IdentifyResult
    enc.stats()                                       -> StatsPublic
    enc.close()
"""
