"""privaudit: audit privacy and machine unlearning in federated fine-tuning of transformers.

Public API: :func:`run_audit`, :func:`audit_model` (a model trained elsewhere),
:func:`load_config`, :class:`AuditConfig`, :class:`Report`.
Nothing is fetched at run time: importing privaudit switches the Hugging Face libraries to
offline mode, and models load from local paths only. The API is imported lazily, so the
CLI's light commands (verify, gate) start without loading torch.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

__version__ = "0.1.0"

from privaudit.core.lazy import lazy_exports

# bitsandbytes (imported for the NF4 variant, mechanisms/model/shipped.py) warns on every import
# that an optional kernel package is missing; privaudit uses its (de)quantization only
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

if TYPE_CHECKING:
    from privaudit.audit.audit_model import audit_model
    from privaudit.audit.config import AuditConfig, load_config
    from privaudit.audit.pipeline import run_audit
    from privaudit.reports.schema import Report

_LAZY = {
    "AuditConfig": "privaudit.audit.config",
    "audit_model": "privaudit.audit.audit_model",
    "load_config": "privaudit.audit.config",
    "run_audit": "privaudit.audit.pipeline",
    "Report": "privaudit.reports.schema",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = ["AuditConfig", "Report", "__version__", "audit_model", "load_config", "run_audit"]
