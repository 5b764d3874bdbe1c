"""Epoch rows on disk: one part file per flush, merged in tiers so that no flush costs more
as the study grows.

The writer runs inside Ray Tune's driver loop, between two decisions for the trials. Merging
every part into one each time 64 had piled up (as the store did before) re-read every stored
row there, long enough for Ray to warn about its driver loop being slow
(`bench/driver_callbacks.py`; the figures are in bench/RESULTS.md). Instead, parts merge like the digits of a counter in base MERGE_FANOUT:
MERGE_FANOUT parts of one tier become one part of the next tier, up to MAX_TIER. So a flush
reads at most MERGE_FANOUT files holding at most MERGE_FANOUT**MAX_TIER flushes' rows, whatever
the study holds; a row is rewritten at most MAX_TIER times; and readers find at most
MERGE_FANOUT - 1 parts of each lower tier, plus one top-tier part per MERGE_FANOUT**MAX_TIER
flushes (one per 17 minutes at a flush every 2 s). The study's end merges everything into
one part (`StudyWriter.compact_epochs`).

A merged part takes the name of the newest part it replaces: parts still sort oldest first,
so a re-reported epoch's later row still wins, and a reader that listed the parts before the
merge reads each row at worst twice (readers keep one row per trial and epoch).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tunelab.store.atomic import write_parquet_atomic
from tunelab.store.reader import read_table

MERGE_FANOUT = 8
MAX_TIER = 3


@dataclass(frozen=True)
class Part:
    path: Path
    tier: int  # 0: one flush's rows; tier t holds MERGE_FANOUT**t flushes


class EpochParts:
    """The part files one writer appends to a study's epochs folder, and their merges."""

    def __init__(self, folder: Path, existing: list[Path]) -> None:
        self.folder = folder
        self._next_number = part_number(existing[-1]) + 1 if existing else 1
        # Parts this writer wrote, oldest first. Parts already there (an earlier driver's)
        # are left alone until the study's end merges everything.
        self._written: list[Part] = []

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Write `rows` as the newest part, then merge whatever tier that completes."""
        path = self.new_path()
        write_parquet_atomic(pd.DataFrame(rows), path)
        self._written.append(Part(path, tier=0))
        self._merge_completed_tiers()

    def new_path(self) -> Path:
        path = self.folder / f"part-{self._next_number:08d}.parquet"
        self._next_number += 1
        return path

    def forget_written(self) -> None:
        """The parts were merged by someone else (the end-of-study compaction)."""
        self._written = []

    def _merge_completed_tiers(self) -> None:
        while len(self._written) >= MERGE_FANOUT:
            newest = self._written[-MERGE_FANOUT:]
            tier = newest[0].tier
            if tier >= MAX_TIER or any(part.tier != tier for part in newest):
                return
            merge_parts([part.path for part in newest], into=newest[-1].path)
            self._written[-MERGE_FANOUT:] = [Part(newest[-1].path, tier + 1)]


def merge_parts(parts: list[Path], into: Path) -> None:
    """One part with the rows of `parts` in their order, written over `into` (one of them)."""
    merged = pd.concat([read_table(part) for part in parts], ignore_index=True)
    write_parquet_atomic(merged, into)
    for part in parts:
        if part != into:
            part.unlink(missing_ok=True)


def part_number(part: Path) -> int:
    match = re.search(r"part-(\d+)\.parquet$", str(part))
    return int(match.group(1)) if match else 0
