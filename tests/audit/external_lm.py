"""A tiny causal LM trained OUTSIDE privaudit, with plain transformers + peft, on a members
file (and never on the non-members): the model ``privaudit audit-model`` is tested on.

Records are those of ``tests/data/memorise.jsonl`` (support tickets with names, accounts and
phone numbers), split by data subject, with a WordPiece vocabulary of the corpus: a public
third pretrains the base (full parameters),
then a LoRA adapter is fine-tuned for many epochs on the members only. :func:`leaky_split`
then draws a split that leaks by construction from the same model's data: the longest
members against the shortest non-members.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from tests.wordpiece import wordpiece

MEMORISE = Path(__file__).resolve().parents[1] / "data" / "memorise.jsonl"


@dataclass
class ExternalLM:
    base: Path
    adapter: Path
    members: Path
    nonmembers: Path
    population: Path  # more records of the non-members' third: never seen by the adapter
    recipe: Path  # the adapter's fine-tuning, as audit-model's --reference-recipe declares it


def _records() -> list[dict[str, str]]:
    return [json.loads(line) for line in MEMORISE.read_text().splitlines() if line.strip()]


def _split(records: list[dict[str, str]], *, n: int, seed: int
           ) -> tuple[list[dict[str, str]], ...]:
    """(members, non-members, public, population) by data subject, so that no subject is in
    two of the first three; the population is the rest of the non-members' third."""
    subjects = sorted({r["subject_id"] for r in records})
    random.Random(seed).shuffle(subjects)
    role = {s: i * 3 // len(subjects) for i, s in enumerate(subjects)}
    groups: list[list[dict[str, str]]] = [[], [], []]
    for r in records:
        groups[role[r["subject_id"]]].append(r)
    return groups[0][:n], groups[1][:n], groups[2], groups[1][n:]


def _read(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def leaky_split(lm: ExternalLM, root: Path, *, n: int = 20) -> tuple[Path, Path]:
    """Members the ``n`` longest of the model's members, non-members the ``n`` shortest of its
    non-members: every member was trained on, and the texts alone tell the sets apart."""
    members = sorted(_read(lm.members), key=lambda r: len(r["text"]))[-n:]
    nonmembers = sorted(_read(lm.nonmembers), key=lambda r: len(r["text"]))[:n]
    return _write(root / "leaky-members.jsonl", members), \
        _write(root / "leaky-nonmembers.jsonl", nonmembers)


def _write(path: Path, records: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps({k: r[k] for k in ("id", "subject_id", "text")}) + "\n"
                            for r in records))
    return path


def _train(model: torch.nn.Module, tok: object, texts: list[str], *, epochs: int, lr: float,
           seed: int) -> None:
    torch.manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr)
    model.train()
    order = list(range(len(texts)))
    rng = random.Random(seed)
    for _ in range(epochs):
        rng.shuffle(order)
        for i in range(0, len(order), BATCH):
            batch = tok([texts[j] for j in order[i:i + BATCH]], return_tensors="pt",  # type: ignore[operator]
                        padding=True, truncation=True, max_length=64)
            labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
            loss = model(**batch, labels=labels).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()


EPOCHS, BATCH, LR = 10, 8, 3e-3
VOCAB = 1000  # WordPiece tokens of the corpus: a small output layer, so training is cheap
#: ``--reference-recipe`` of the adapter: what :func:`_fine_tune` does
RECIPE = {"epochs": EPOCHS, "batch_size": BATCH, "learning_rate": LR, "optimizer": "adamw"}

LORA = {"r": 16, "lora_alpha": 32, "task_type": "CAUSAL_LM",
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                           "down_proj"]}


def _fine_tune(base_dir: Path, texts: list[str], out: Path, *, epochs: int, seed: int) -> Path:
    """LoRA on the saved base, trained on ``texts`` and saved to ``out``: one recipe for the
    audited model and its oracle."""
    tok = AutoTokenizer.from_pretrained(str(base_dir))
    base = LlamaForCausalLM.from_pretrained(str(base_dir))
    torch.manual_seed(seed)
    model = get_peft_model(base, LoraConfig(**LORA))  # type: ignore[arg-type]
    _train(model, tok, texts, epochs=epochs, lr=LR, seed=seed)
    model.save_pretrained(out)
    return out


@dataclass
class Erasure:
    forget: Path
    oracle: Path  # retrained without the forget records, by the same recipe


def train_oracle(lm: ExternalLM, root: Path, *, n: int = 10, seed: int = 0,
                 epochs: int = EPOCHS) -> Erasure:
    """Erase the first ``n`` members: ``forget.jsonl`` and the oracle, the adapter fine-tuned
    by the same recipe on the other members."""
    members = _read(lm.members)
    _fine_tune(lm.base, [r["text"] for r in members[n:]], root / "oracle", epochs=epochs,
               seed=seed)
    return Erasure(forget=_write(root / "forget.jsonl", members[:n]), oracle=root / "oracle")


def train_external_lm(root: Path, *, n: int = 40, seed: int = 0, epochs: int = EPOCHS
                      ) -> ExternalLM:
    """Train and save base, adapter, members, non-members, a population and the recipe
    under ``root``."""
    members, nonmembers, public, population = _split(_records(), n=n, seed=seed)
    tok = wordpiece([r["text"] for r in _records()], vocab_size=VOCAB)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=128, pad_token_id=tok.pad_token_id,
                         bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
                         tie_word_embeddings=True)
    base = LlamaForCausalLM(config)
    _train(base, tok, [r["text"] for r in public], epochs=3, lr=3e-3, seed=seed)
    base_dir = root / "base"
    base.save_pretrained(base_dir)
    tok.save_pretrained(base_dir)
    adapter_dir = _fine_tune(base_dir, [r["text"] for r in members], root / "adapter",
                             epochs=epochs, seed=seed)
    return ExternalLM(base=base_dir, adapter=adapter_dir,
                      members=_write(root / "members.jsonl", members),
                      nonmembers=_write(root / "nonmembers.jsonl", nonmembers),
                      population=_write(root / "population.jsonl", population),
                      recipe=_recipe(root / "recipe.yaml", epochs))


def _recipe(path: Path, epochs: int) -> Path:
    path.write_text("# how the adapter was fine-tuned (tests/audit/external_lm.py)\n"
                    + "".join(f"{k}: {v}\n" for k, v in (RECIPE | {"epochs": epochs}).items()))
    return path


if __name__ == "__main__":  # python -m tests.audit.external_lm DIR: the README's example model
    import sys

    lm = train_external_lm(Path(sys.argv[1]))
    er = train_oracle(lm, Path(sys.argv[1]))
    print(f"base: {lm.base}\nadapter: {lm.adapter}\nmembers: {lm.members}\n"
          f"nonmembers: {lm.nonmembers}\npopulation: {lm.population}\nrecipe: {lm.recipe}\n"
          f"forget: {er.forget}\noracle: {er.oracle}")
