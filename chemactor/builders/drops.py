"""Bad input rows: raise naming file and line, or, when the user asked to skip them, count them by reason."""

from __future__ import annotations

import logging
from collections import Counter

from chemactor.chem import InvalidSmilesError
from chemactor.data import RecordError

logger = logging.getLogger(__name__)


class RowDrops(Counter):
    """Rows left out of a build, counted by reason (``{"invalid SMILES": 2, "not JSON": 1}``).

    It also remembers where each id was first seen, because two rows with one id would make a resumed run
    skip the second and an evaluation count one example twice: a repeated id is a bad row like any other.
    """

    def __init__(self, skip_bad_rows: bool = False) -> None:
        super().__init__()
        self.skip_bad_rows = skip_bad_rows
        self.first_seen: dict[str, str] = {}

    def reset(self) -> None:
        """Forget counts and ids: a builder calls this when a new build starts."""
        self.clear()
        self.first_seen.clear()

    def reject(self, where: str, problem: Exception | str, reason: str | None = None) -> None:
        """A row at ``where`` (``file:line``) is bad: raise :class:`RecordError`, or count it when skipping.

        ``reason`` is the short key it is counted under; by default the kind of problem, not the offending
        text, so the summary stays short.
        """
        if not self.skip_bad_rows:
            error = RecordError(f"{where}: {problem}")
            if isinstance(problem, Exception):
                raise error from problem
            raise error
        if reason is None:
            reason = "invalid SMILES" if isinstance(problem, InvalidSmilesError) else str(problem).split(" (")[0]
        self[reason] += 1
        logger.warning("skipped %s: %s", where, problem)

    def is_new(self, record_id: str, where: str) -> bool:
        """``True`` the first time ``record_id`` is seen; a repeat is rejected (raised, or counted and ``False``)."""
        first = self.first_seen.setdefault(record_id, where)
        if first == where:
            return True
        self.reject(where, f"duplicate id {record_id!r} (first at {first})", reason="duplicate id")
        return False

    @staticmethod
    def describe(counts: dict[str, int]) -> str:
        """``"3 rows dropped: duplicate id 1, not JSON 2"``: one line for a user."""
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(counts.items()))
        return f"{sum(counts.values())} rows dropped: {reasons}"
