"""Running studies on a Ray cluster: `tunelab submit` and `tunelab jobs` over the Jobs API."""
