"""Data: the synthetic corpus, the loader for a user's own file, partitions and the audit split."""

from privaudit.mechanisms.data.corpus import LABELS, generate_corpus
from privaudit.mechanisms.data.partition import partition_records
from privaudit.mechanisms.data.records import Record, load_records, records_sha256
from privaudit.mechanisms.data.splits import PreparedData, RoleSummary, prepare_data

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
