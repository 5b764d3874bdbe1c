"""Optuna's NSGA-II sampler, made picklable.

Ray pickles the searcher, and its Optuna sampler with it, to resume a study; Optuna 5.1's
genetic-algorithm samplers keep a `threading.Lock`, which cannot be pickled. The lock guards a
cache within one process: a new one on unpickling is what a new process needs.
"""

from __future__ import annotations

import threading
from typing import Any

from optuna.samplers import NSGAIISampler


class PicklableNSGAIISampler(NSGAIISampler):
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_thread_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._thread_lock = threading.Lock()


# Optuna names the generation it stores with each trial after the class: keep NSGA-II's names, so
# a study reads the same as one that Optuna's own NSGAIISampler ran.
PicklableNSGAIISampler._GENERATION_KEY = NSGAIISampler._GENERATION_KEY
PicklableNSGAIISampler._PARENT_CACHE_KEY_PREFIX = NSGAIISampler._PARENT_CACHE_KEY_PREFIX
