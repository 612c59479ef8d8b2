"""Data: the synthetic corpus, the loader for a user's own file, partitions and the audit split."""

from __future__ import annotations

from typing import TYPE_CHECKING

from privaudit.core.lazy import lazy_exports

if TYPE_CHECKING:
    from privaudit.mechanisms.data.corpus import LABELS, generate_corpus
    from privaudit.mechanisms.data.partition import partition_records
    from privaudit.mechanisms.data.records import Record, load_records, records_sha256
    from privaudit.mechanisms.data.splits import PreparedData, RoleSummary, prepare_data

_EXPORTS = {
    "LABELS": "privaudit.mechanisms.data.corpus",
    "PreparedData": "privaudit.mechanisms.data.splits",
    "Record": "privaudit.mechanisms.data.records",
    "RoleSummary": "privaudit.mechanisms.data.splits",
    "generate_corpus": "privaudit.mechanisms.data.corpus",
    "load_records": "privaudit.mechanisms.data.records",
    "partition_records": "privaudit.mechanisms.data.partition",
    "prepare_data": "privaudit.mechanisms.data.splits",
    "records_sha256": "privaudit.mechanisms.data.records",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "LABELS",
    "PreparedData",
    "Record",
    "RoleSummary",
    "generate_corpus",
    "load_records",
    "partition_records",
    "prepare_data",
    "records_sha256",
]
