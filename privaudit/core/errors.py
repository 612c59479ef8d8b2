"""The one exception tree of privaudit, and the exit codes the CLI maps it to.

::

    PrivauditError                      base of everything privaudit raises on purpose
    ├── ConfigError(ValueError)         a config, policy or request is invalid         → exit 2
    │   ├── PrivacyBudgetError          a DP setting is impossible or unreachable      → exit 2
    │   ├── SecureAggregationError      HE parameters or an encrypted update is bad   → exit 2
    │   └── RunDirectoryError           --out/RUN is busy, not a run, or another config → exit 2
    ├── DataError(ValueError)           a data file is malformed (names the line)      → exit 2
    ├── VerificationError               a manifest, hash or signature does not match  → exit 1
    ├── EvidenceIncomplete              a required stage or metric is missing          → exit 4
    ├── Interrupted                     Ctrl-C: says what the run kept                 → exit 130
    └── InternalError                   a bug or an unexpected failure                 → exit 3

Anything else that escapes is an internal error too (exit 3, never 0).
"""

from __future__ import annotations

from collections.abc import Sequence

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_INCOMPLETE = 4
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C


class PrivauditError(Exception):
    """Base of the tree. ``exit_code`` is what the CLI returns for it."""

    exit_code: int = EXIT_INTERNAL


class ConfigError(PrivauditError, ValueError):
    """A config, policy or request is invalid. ``problems`` lists every finding."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, problems: Sequence[str] | None = None) -> None:
        self.problems: list[str] = list(problems) if problems else [message]
        super().__init__(message)


class PrivacyBudgetError(ConfigError):
    """A differential-privacy setting is invalid or its target cannot be reached."""


class SecureAggregationError(ConfigError):
    """Homomorphic-encryption parameters are unsafe, or an encrypted update is rejected."""


class RunDirectoryError(ConfigError):
    """The run directory cannot be written: another privaudit process holds it, it is not
    empty and not a run, or it holds a run of another config. The message says what to do."""


class DataError(PrivauditError, ValueError):
    """A data file is malformed; the message names the file and the line."""

    exit_code = EXIT_USAGE


class VerificationError(PrivauditError):
    """A manifest hash, the report hash or a signature does not match."""

    exit_code = EXIT_FAILED


class EvidenceIncomplete(PrivauditError):
    """A required stage, attack or metric did not run or is missing from the report."""

    exit_code = EXIT_INCOMPLETE


class Interrupted(PrivauditError):
    """The user pressed Ctrl-C; the message says what the run directory kept."""

    exit_code = EXIT_INTERRUPTED


class InternalError(PrivauditError):
    """An unexpected failure inside privaudit (a bug)."""

    exit_code = EXIT_INTERNAL
