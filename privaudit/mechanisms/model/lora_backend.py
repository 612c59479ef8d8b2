"""peft, imported and used without bitsandbytes.

peft imports bitsandbytes whenever it is installed — at import, and again when it wraps a
model (its dispatchers for 8-bit and 4-bit base layers) — which costs about 1.3 s per process
(bitsandbytes pulls in ``torch._inductor``). privaudit never gives peft a quantized base layer;
it calls bitsandbytes itself, lazily, for the NF4 variant (``model/shipped.py``). So while peft
is imported here and while :func:`get_peft_model` wraps a model, ``import bitsandbytes`` is
made to fail (``sys.modules["bitsandbytes"] = None``, which peft's availability check reads as
"not installed") and restored at once: an ``import bitsandbytes`` outside these two moments,
privaudit's or a user's, works as usual. Once bitsandbytes is imported, nothing is hidden.

Every module of privaudit takes peft from here, so the first import of peft is this one.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["BaseTunerLayer", "LoraConfig", "LoraLayer", "ModulesToSaveWrapper", "PeftModel",
           "get_peft_model", "set_peft_model_state_dict", "without_bitsandbytes"]


@contextmanager
def without_bitsandbytes() -> Iterator[None]:
    """Inside the block ``import bitsandbytes`` fails as if it were not installed (unless it
    is imported already); restored on exit."""
    if sys.modules.get("bitsandbytes") is not None:
        yield
        return
    sys.modules["bitsandbytes"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if "bitsandbytes" in sys.modules and sys.modules["bitsandbytes"] is None:
            del sys.modules["bitsandbytes"]


with without_bitsandbytes():
    from peft import LoraConfig, PeftModel
    from peft import get_peft_model as _get_peft_model
    from peft.tuners.lora import LoraLayer
    from peft.tuners.tuners_utils import BaseTunerLayer
    from peft.utils import set_peft_model_state_dict
    from peft.utils.other import ModulesToSaveWrapper


def get_peft_model(model: Any, config: LoraConfig) -> Any:
    """peft's ``get_peft_model``, without its bitsandbytes dispatchers."""
    with without_bitsandbytes():
        return _get_peft_model(model, config)
