"""A small WordPiece tokenizer trained on a test corpus: a tiny model's own vocabulary (a few
hundred tokens instead of MiniLM's 30,522), so that a causal LM's output layer — the cost of
every training step on these 2 cores — stays small."""

from __future__ import annotations

from collections.abc import Iterable

import transformers as tf
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def wordpiece(texts: Iterable[str], *, vocab_size: int = 300) -> tf.PreTrainedTokenizerFast:
    """A lowercasing WordPiece vocabulary of ``texts`` with BERT's special tokens."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(list(texts), trainers.WordPieceTrainer(vocab_size=vocab_size,
                                                                   special_tokens=SPECIAL))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return tf.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]",
                                      pad_token="[PAD]", cls_token="[CLS]",
                                      sep_token="[SEP]", mask_token="[MASK]")
