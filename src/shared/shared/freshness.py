"""How fresh an asset must be, declared next to the asset (a source declaration, a dbt model's
`meta.dagster.freshness`) and turned into Dagster's FreshnessPolicy.

Either a maximum lag (`max_lag_hours`, optionally `warn_lag_hours`: stale once the last
materialization is older) or a deadline (`deadline_cron` with `lower_bound_hours`: by each cron tick
the asset must have been materialized within the hours before it). Free of Dagster at import time:
source programs read declarations without importing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any


class FreshnessError(ValueError):
    """A freshness declaration that cannot become a policy."""


@dataclass(frozen=True)
class Freshness:
    max_lag_hours: float | None = None
    warn_lag_hours: float | None = None
    deadline_cron: str | None = None
    lower_bound_hours: float | None = None
    timezone: str = "UTC"

    def check(self, where: str) -> None:
        """Raise FreshnessError naming `where` unless exactly one kind is declared with sane numbers."""
        lag = self.max_lag_hours is not None
        deadline = self.deadline_cron is not None
        problem = None
        if lag == deadline:
            problem = "declare either max_lag_hours or deadline_cron (with lower_bound_hours)"
        elif lag and (self.lower_bound_hours is not None):
            problem = "lower_bound_hours belongs to deadline_cron, not max_lag_hours"
        elif deadline and (self.lower_bound_hours is None or self.warn_lag_hours is not None):
            problem = "deadline_cron needs lower_bound_hours and takes no warn_lag_hours"
        else:
            hours = {f.name: getattr(self, f.name) for f in fields(self) if f.name.endswith("_hours")}
            for name, value in hours.items():
                if value is not None and (not isinstance(value, int | float) or value * 60 < 1):
                    problem = f"{name} {value!r} must be a number of hours, at least one minute"
            warn = self.warn_lag_hours
            if not problem and lag and warn is not None and warn >= self.max_lag_hours:
                problem = "warn_lag_hours must be less than max_lag_hours"
        if problem:
            raise FreshnessError(f"{where}: freshness {self.to_dict()}: {problem}")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> Freshness:
        if not isinstance(data, Mapping):
            raise FreshnessError(f"{where}: freshness must be a mapping, got {data!r}")
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise FreshnessError(f"{where}: unknown freshness field(s) {', '.join(unknown)}")
        freshness = cls(**data)
        freshness.check(where)
        return freshness

    def policy(self, where: str):
        """The Dagster FreshnessPolicy; Dagster's own validation (cron, timezone) reported with `where`."""
        import dagster as dg
        from dagster._check import CheckError

        try:
            if self.max_lag_hours is not None:
                warn = self.warn_lag_hours
                return dg.FreshnessPolicy.time_window(
                    fail_window=timedelta(hours=self.max_lag_hours),
                    warn_window=timedelta(hours=warn) if warn is not None else None,
                )
            return dg.FreshnessPolicy.cron(
                deadline_cron=self.deadline_cron,
                lower_bound_delta=timedelta(hours=self.lower_bound_hours),
                timezone=self.timezone,
            )
        except CheckError as error:
            raise FreshnessError(f"{where}: freshness {self.to_dict()}: {error}") from error
