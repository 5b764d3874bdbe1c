"""Base models for everything read from an experiment file: unknown keys are errors."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OptionsModel(BaseModel):
    """A section whose extra keys are options declared elsewhere (by a registry entry).

    `checks.py` validates the extras against that declaration, so a typo still gets
    "unknown key ... did you mean".
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    def options(self) -> dict[str, object]:
        return dict(self.model_extra or {})


class ComponentModel(OptionsModel):
    """A named strategy (data set, model, searcher, scheduler) with its own options."""

    name: str
