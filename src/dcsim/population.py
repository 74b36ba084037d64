"""The registry as a structure of compact, preallocated arrays: one row per modelled person.

Every field is a modelled code, day or rank; nothing can hold a real person's data (no names,
identity numbers, contact details, places or images): see the scope rule in the README.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .measures import N_INTRUSIONS

PERSON_OUT = ("exposure_days", "eligible_day", "detections", "trap_code", "control_code",
              "using_at_end", "first_release_day")


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
            using_at_entry=np.zeros(n, np.int8), lost=np.zeros(n, np.int8),
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
