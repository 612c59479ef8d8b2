"""Plain words for the report's terms, and for what ε means to one person.

:data:`TERMS` defines each technical term the report uses in one or two sentences; the page
links a term's first use in each verdict line and section introduction to its definition
(:func:`link_terms`). :func:`epsilon_words` says what an (ε, δ) guarantee means for one
person: whatever an attacker knew before, seeing the model can multiply their odds that
the person's data was used by at most e^ε (Kairouz, Oh, Viswanath 2015: (ε, δ)-DP is a
bound on the trade-off of any such test), except with a probability of about δ.

>>> epsilon_words(7.93, 1e-5, "record").startswith("ε = 7.93 per record: whatever an attacker")
True
>>> re.findall(r'href="#term-([a-z-]+)"', link_terms("PrivLeak and U-LiRA, then LiRA"))
['privleak', 'u-lira', 'lira']
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from markupsafe import Markup, escape

__all__ = ["TERMS", "Term", "epsilon_words", "link_terms", "odds_factor", "odds_text"]


@dataclass(frozen=True)
class Term:
    id: str
    term: str
    definition: str
    #: the spellings linked to the definition (whole words; the first found in a text)
    forms: tuple[str, ...]


TERMS: tuple[Term, ...] = (
    Term("epsilon", "ε (epsilon)", "The privacy loss of differential privacy: seeing the "
         "model can multiply an attacker's odds that a given record (or person) was used by "
         "at most e^ε. Smaller is stronger; 1 or less is strong, up to 10 is common in "
         "deployed systems, above 10 protects little.", ("ε",)),
    Term("delta", "δ (delta)", "The probability, at most, that the ε bound does not hold. "
         "It must be far below 1 / (number of records), or the guarantee allows leaking a "
         "record outright.", ("δ",)),
    Term("unit", "Record vs subject level", "A record-level guarantee protects each record; "
         "a person with several records (a data subject) is protected less, by the "
         "subject-level ε the report also states.", ("subject level", "subject-level")),
    Term("dp", "Differential privacy (DP)", "A mathematical limit on how much any one record "
         "can change what the trained model reveals, stated as (ε, δ).",
         ("differential privacy",)),
    Term("dp-sgd", "DP-SGD", "Training with differential privacy: each record's gradient is "
         "clipped to a maximum norm and Gaussian noise is added to their sum before every "
         "step.", ("DP-SGD",)),
    Term("mia", "Membership inference", "An attack that tries to tell whether a given record "
         "was in the training data, from the model's outputs on it.",
         ("membership inference", "membership-inference")),
    Term("auc", "AUC", "Area under the attack's ROC curve: 0.5 is a blind guess, 1.0 a "
         "perfect attack.", ("AUC",)),
    Term("tpr-fpr", "TPR at FPR", "The share of training records an attack finds (true-"
         "positive rate) while wrongly accusing only a small share of others (false-positive "
         "rate). Measuring a TPR at FPR f needs at least 10/f held-out records; with fewer it "
         "is not estimable and only an upper bound is given.", ("TPR", "FPR")),
    Term("lira", "LiRA", "Likelihood-ratio attack (Carlini et al. 2022): compares a record's "
         "loss with reference models trained with and without it.", ("LiRA",)),
    Term("rmia", "RMIA", "Robust membership inference (Zarifzadeh et al. 2024): compares "
         "how likely the model finds a record against reference models and a population of "
         "other records; strong with few references.", ("RMIA", "rmia")),
    Term("canary", "Canary", "A record or gradient planted at random to test the privacy "
         "claim: whether it was planted is sealed (sha256) before training and opened only "
         "after the attack guessed.", ("canaries", "canary")),
    Term("oracle", "Oracle", "The federation retrained from scratch without the erased "
         "data, with the same seeds and schedule: what perfect erasure would give.",
         ("oracle",)),
    Term("privleak", "PrivLeak", "How the unlearned model's membership AUC on the erased "
         "records (against held-out ones) differs from the oracle's, in percent of the "
         "oracle's (MUSE, Shi et al. 2024): 0 is like retraining; strongly negative means the "
         "model still remembers the erased records, strongly positive that unlearning went "
         "past retraining.", ("PrivLeak",)),
    Term("forget-quality", "Forget quality", "A Kolmogorov–Smirnov test of whether the "
         "unlearned model's losses on the erased records are distributed like the oracle's "
         "(TOFU, Maini et al. 2024); a small p-value means they differ.",
         ("forget quality", "KS")),
    Term("u-lira", "U-LiRA", "Unlearning likelihood-ratio attack (Hayes et al. 2024): "
         "reference models unlearn with the same method, and an attack tries to tell their "
         "unlearned records from records never trained on.", ("U-LiRA",)),
    Term("sisa", "SISA", "Sharded, isolated, sliced, aggregated training (Bourtoule et al. "
         "2021): separate models on disjoint shards, so an erasure retrains one shard only "
         "and is exact.", ("SISA",)),
    Term("ckks", "CKKS", "The homomorphic encryption scheme (TenSEAL) for secure "
         "aggregation: the server adds encrypted client updates without decrypting any.",
         ("CKKS", "ckks")),
)

_LINKS = [(t.id, form) for t in TERMS for form in t.forms]


def link_terms(text: str) -> Markup:
    """``text`` escaped for HTML, the first use of each term linked to its definition
    (``#term-<id>``); whole words only, so LiRA inside U-LiRA stays U-LiRA's."""
    out = str(escape(text))
    seen: set[str] = set()
    for tid, form in _LINKS:
        if tid in seen:
            continue
        pattern = re.compile(rf"(?<![\w\->#]){re.escape(form)}(?![\w\-<])")
        match = pattern.search(out)
        if match is None or _inside_tag(out, match.start()):
            continue
        seen.add(tid)
        link = f'<a href="#term-{tid}">{match.group(0)}</a>'
        out = out[:match.start()] + link + out[match.end():]
    return Markup(out)


def _inside_tag(html: str, at: int) -> bool:
    """Whether position ``at`` lies inside an <a …>…</a> already placed."""
    opened = html.rfind("<a ", 0, at)
    return opened != -1 and html.rfind("</a>", 0, at) < opened


def odds_factor(epsilon: float) -> float:
    """e^ε: the most the model can multiply an attacker's odds by.

    >>> round(odds_factor(7.9))
    2697
    """
    return math.exp(epsilon) if epsilon < 700 else math.inf


def odds_text(epsilon: float) -> str:
    """e^ε as the report prints it.

    >>> odds_text(7.93), odds_text(0.5)
    ('2,779', '1.6')
    """
    factor = odds_factor(epsilon)
    return f"{factor:,.0f}" if factor >= 10 else f"{factor:.2g}"


def epsilon_words(epsilon: float, delta: float, unit: str) -> str:
    """What the (ε, δ) guarantee means for one ``unit`` (record, subject, client), in words."""
    factor, times = odds_factor(epsilon), odds_text(epsilon)
    scale = ("strong" if epsilon <= 1 else "moderate" if epsilon <= 4 else
             "weak but common in deployed systems" if epsilon <= 10 else "very weak")
    return (f"ε = {epsilon:.3g} per {unit}: whatever an attacker knew before, seeing this "
            f"model can multiply their odds that a given {unit}'s data was used for training "
            f"by at most e^{epsilon:.3g} ≈ {times}, except with probability about δ = "
            f"{delta:g}. For example, odds of 1 in 1,000 could rise to "
            f"{_odds(factor / 1000)}. That is {scale} protection.")


def _odds(x: float) -> str:
    """Odds x as 'about 1 in n' or 'about n to 1'."""
    if x < 1:
        return f"about 1 in {1 / x:,.0f}"
    return f"about {x:,.1f} to 1" if x < 10 else f"about {x:,.0f} to 1"
