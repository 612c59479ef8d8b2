"""peft without bitsandbytes (``mechanisms/model/lora_backend.py``): a process that imports
privaudit and wraps a model in LoRA never imports bitsandbytes, and ``import bitsandbytes``
still works afterwards (the NF4 variant and a user's own code need it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
from privaudit.audit.config import config_from_dict
from privaudit.mechanisms.models import apply_lora, load_base_model, load_tokenizer
from tests.conftest import TINY
cfg = config_from_dict(TINY)
base = load_base_model(cfg.model, tokenizer=load_tokenizer(cfg.model), num_labels=4, seed=0)
model, _ = apply_lora(cfg.model, base, seed=0)
assert "bitsandbytes" not in sys.modules, "peft imported bitsandbytes"
assert any("lora_A" in n for n, _ in model.named_parameters()), "no LoRA layer was added"
import torch
from privaudit.mechanisms.model.shipped import quantize_nf4
assert quantize_nf4(torch.randn(2, 64)).shape == (2, 64)
import bitsandbytes
assert sys.modules["bitsandbytes"] is bitsandbytes
print("ok")
"""


def test_wrapping_a_model_in_lora_never_imports_bitsandbytes_and_leaves_it_importable(
) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
