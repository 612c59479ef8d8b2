"""The CI face of privaudit: a policy over a report (and a baseline) gives an exit code.

:mod:`~privaudit.gate.policy` (the policy file), :mod:`~privaudit.gate.evaluation` (a report
judged against it: :func:`~privaudit.gate.evaluation.run_gate`),
:mod:`~privaudit.gate.metrics` (what a rule may read from a report), :mod:`~privaudit.gate.ci`
(JUnit XML, SARIF, the GitHub job summary) and :mod:`~privaudit.gate.pytest_plugin`. It reads
reports and never imports torch, transformers or opacus.
"""

__all__: list[str] = []
