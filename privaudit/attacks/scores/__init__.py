"""Membership-inference attacks: pure functions of signal arrays, one module each, registered.

Importing this package registers every built-in attack: ``loss``, ``zlib``, ``min_k``,
``min_k_pp``, ``reference``, ``lira``, ``rmia``. Convention: higher score = more likely member.
"""

from privaudit.attacks.scores import (  # noqa: F401  (imported to register the attacks)
    lira,
    loss,
    min_k,
    min_k_pp,
    reference,
    rmia,
    zlib_ratio,
)
from privaudit.attacks.scores.base import (
    Attack,
    AttackParams,
    available_attacks,
    get_attack,
    missing_inputs,
    register_attack,
)
from privaudit.attacks.scores.inputs import AttackInputs, SignalSet
from privaudit.attacks.scores.lira import LiRAAttack, lira_scores
from privaudit.attacks.scores.loss import LossAttack, loss_scores
from privaudit.attacks.scores.min_k import MinKAttack, min_k_scores
from privaudit.attacks.scores.min_k_pp import MinKPlusPlusAttack, min_k_pp_scores, token_moments
from privaudit.attacks.scores.reference import ReferenceAttack, reference_scores
from privaudit.attacks.scores.rmia import RMIAAttack, rmia_scores, tune_offline_a
from privaudit.attacks.scores.zlib_ratio import ZlibAttack, zlib_length, zlib_scores

__all__ = [
    "Attack",
    "AttackInputs",
    "AttackParams",
    "LiRAAttack",
    "LossAttack",
    "MinKAttack",
    "MinKPlusPlusAttack",
    "RMIAAttack",
    "ReferenceAttack",
    "SignalSet",
    "ZlibAttack",
    "available_attacks",
    "get_attack",
    "lira_scores",
    "loss_scores",
    "min_k_pp_scores",
    "min_k_scores",
    "missing_inputs",
    "reference_scores",
    "register_attack",
    "rmia_scores",
    "token_moments",
    "tune_offline_a",
    "zlib_length",
    "zlib_scores",
]
