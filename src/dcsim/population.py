"""The registry as a structure of compact, preallocated arrays: one row per modelled person.

Every field is a modelled code, day or rank; nothing can hold a real person's data (no names,
identity numbers, contact details, places or images): see the scope rule in the README.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np

from .measures import N_INTRUSIONS


class Outcome(enum.IntEnum):
    """Columns of a person's outcome row, written when their life course ends."""

    EXPOSURE_DAYS = 0  # days with a counted record
    ELIGIBLE_DAY = 1  # day the exit criteria were met in the last episode, else NEVER
    DETECTIONS = 2
    TRAP_CODE = 3  # Stock column of the trap group at the end, -1 not trapped
    CONTROL_CODE = 4  # Stock column of the control group at the end
    USING_AT_END = 5
    FIRST_RELEASE_DAY = 6  # day of the first release (partial or full), else NEVER


PERSON_OUT = tuple(o.name.lower() for o in Outcome)


class Persons(NamedTuple):
    """The population's arrays as compiled code takes them (see Population)."""

    entry_day: np.ndarray
    jurisdiction: np.ndarray
    path: np.ndarray
    drug: np.ndarray
    dependent: np.ndarray
    birth_day: np.ndarray
    using_at_entry: np.ndarray
    history_days: np.ndarray
    lost: np.ndarray
    grid_rank: np.ndarray
    app_rank: np.ndarray
    intrusions: np.ndarray
    outcome: np.ndarray


@dataclass
class Population:
    # drawn at registration
    entry_day: np.ndarray  # int32, days since the scenario start
    jurisdiction: np.ndarray  # int8, index into the scenario's jurisdictions
    path: np.ndarray  # int8, state.Path
    drug: np.ndarray  # int8, state.Drug
    dependent: np.ndarray  # int8
    birth_day: np.ndarray  # int32, days since the scenario start (negative before it)
    using_at_entry: np.ndarray  # int8
    history_days: np.ndarray  # int32, days from the last detection before entry to entry
    lost: np.ndarray  # int8, whereabouts will be unknown
    grid_rank: np.ndarray  # float32 in [0, 1): place in the grid roll-out
    app_rank: np.ndarray  # float32 in [0, 1): place in the app roll-out
    # written by the engine
    intrusions: np.ndarray  # int32 [n, N_INTRUSIONS]
    outcome: np.ndarray  # int32 [n, len(PERSON_OUT)]

    @classmethod
    def allocate(cls, n: int) -> Population:
        return cls(
            entry_day=np.zeros(n, np.int32), jurisdiction=np.zeros(n, np.int8),
            path=np.zeros(n, np.int8), drug=np.zeros(n, np.int8),
            dependent=np.zeros(n, np.int8), birth_day=np.zeros(n, np.int32),
            using_at_entry=np.zeros(n, np.int8), history_days=np.zeros(n, np.int32),
            lost=np.zeros(n, np.int8),
            grid_rank=np.zeros(n, np.float32), app_rank=np.zeros(n, np.float32),
            intrusions=np.zeros((n, N_INTRUSIONS), np.int32),
            outcome=np.zeros((n, len(PERSON_OUT)), np.int32),
        )

    def __len__(self) -> int:
        return int(self.entry_day.shape[0])

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, f.name).nbytes for f in fields(self))

    def out(self, name: str) -> np.ndarray:
        return self.outcome[:, PERSON_OUT.index(name)]

    def arrays(self) -> Persons:
        """The bundle the engine takes (views, not copies)."""
        return Persons(*(getattr(self, name) for name in Persons._fields))
