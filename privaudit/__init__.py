"""privaudit: audit privacy and machine unlearning in federated fine-tuning of transformers.

Public API: :func:`run_audit`, :func:`load_config`, :class:`AuditConfig`, :class:`Report`.
Nothing is fetched at run time: importing privaudit switches the Hugging Face libraries to
offline mode, and models load from local paths only.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from privaudit.audit.config import AuditConfig, load_config
from privaudit.reports.schema import Report

__version__ = "0.1.0"


def run_audit(*args, **kwargs):  # type: ignore[no-untyped-def]
    """Run an audit; see :func:`privaudit.audit.pipeline.run_audit`."""
    from privaudit.audit.pipeline import run_audit as _run_audit

    return _run_audit(*args, **kwargs)


__all__ = ["AuditConfig", "Report", "__version__", "load_config", "run_audit"]
