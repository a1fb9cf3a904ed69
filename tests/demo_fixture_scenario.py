"""A scenario module for the step engine's fixture notebook, so tests can register it as a scenario."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Parameters(BaseModel):
    """The fixture notebook's parameters (see tests/notebooks/steps-fixture.ipynb)."""

    model_config = ConfigDict(extra="forbid")

    workdir: str
    fail_verify: bool = False
