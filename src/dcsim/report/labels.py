"""Plain words for every figure the report shows, read from labels.yaml (one place, so a reader
can check them and a test can check that every metric a run writes has one)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml


@dataclass(frozen=True)
class Labels:
    """The parsed labels file."""

    metrics: dict[str, dict[str, str]]
    units: dict[str, str]
    jurisdictions: dict[str, str]
    venues: dict[str, str]
    official_quantities: dict[str, str]
    status: dict[str, str]
    input_targets: dict[str, str]
    sections: dict[str, dict[str, Any]]

    def label(self, key: str) -> str:
        """Plain label of a `group.metric` (or exit./intrusion_kind./summary_column.) key."""
        return self.metrics[key]["label"]

    def unit(self, key: str) -> str:
        return self.metrics[key]["unit"]

    def unit_words(self, key: str) -> str:
        return self.units[self.unit(key)]

    def kind(self, kind: str) -> str:
        """An intrusion kind ('all' or an intrusion metric name) in words."""
        if kind == "all":
            return self.label("intrusion_kind.all")
        return self.label(f"intrusion.{kind}")

    def jurisdiction(self, jid: str) -> str:
        return self.jurisdictions.get(jid, jid.replace("_", " "))


@cache
def load_labels() -> Labels:
    """labels.yaml from the package (cached: it is read-only data)."""
    text = resources.files("dcsim.report").joinpath("labels.yaml").read_text(encoding="utf-8")
    d = yaml.safe_load(text)
    return Labels(metrics=d["metrics"], units=d["units"], jurisdictions=d["jurisdictions"],
                  venues=d["venues"], official_quantities=d["official_quantities"],
                  status=d["status"], input_targets=d["input_targets"],
                  sections=d["sections"])
