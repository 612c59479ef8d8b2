"""Old import path of :mod:`privaudit.core.provenance` and :mod:`privaudit.core.hashing`.

The report schema's ``report_sha256`` description and earlier READMEs name
``privaudit.audit.provenance``; it stays importable for one release and imports downward only.
"""

from privaudit.core.hashing import (
    canonical_json,
    canonical_sha256,
    report_content_hash,
    report_digest,
    report_file_digest,
)
from privaudit.core.provenance import capture_environment, sign_manifest, verify_run, write_manifest

__all__ = ["canonical_json", "canonical_sha256", "capture_environment", "report_content_hash",
           "report_digest", "report_file_digest", "sign_manifest", "verify_run", "write_manifest"]
