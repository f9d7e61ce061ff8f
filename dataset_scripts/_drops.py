"""Bad input rows: raise naming file and line, or, when the user asked to skip them, count them by reason."""

from __future__ import annotations

import logging
from collections import Counter

from chemactor.chem import InvalidSmilesError
from chemactor.data import RecordError

logger = logging.getLogger("dataset_scripts")


class RowDrops(Counter):
    """Rows left out of a build, counted by reason (``{"invalid SMILES": 2, "not JSON": 1}``)."""

    def __init__(self, skip_bad_rows: bool = False) -> None:
        super().__init__()
        self.skip_bad_rows = skip_bad_rows

    def reject(self, where: str, problem: Exception | str) -> None:
        """A row at ``where`` (``file:line``) is bad: raise :class:`RecordError`, or count it when skipping."""
        if not self.skip_bad_rows:
            error = RecordError(f"{where}: {problem}")
            if isinstance(problem, Exception):
                raise error from problem
            raise error
        # Count by the kind of problem, not the offending text, so the summary stays short.
        reason = "invalid SMILES" if isinstance(problem, InvalidSmilesError) else str(problem).split(" (")[0]
        self[reason] += 1
        logger.warning("skipped %s: %s", where, problem)
