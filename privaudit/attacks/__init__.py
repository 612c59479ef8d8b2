"""Membership-inference attacks and the empirical DP audit: ``config`` (the ``attacks``
section), ``results`` (what the report carries), ``scores`` (one pure function of arrays per
attack, and their registry), ``signals`` (model × records → arrays, cached), ``references``,
``metrics`` (AUC and TPR intervals), ``dp_audit`` and ``exposure``. Import the modules; this
package's ``__init__`` exports nothing, so importing one module loads only what it needs."""

__all__: list[str] = []
