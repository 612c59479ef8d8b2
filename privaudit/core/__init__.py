"""The ground of privaudit: errors, parameters, the run directory, hashing, provenance.

It imports no other privaudit package and no ML library (``tests/test_architecture.py``
imports it with torch, transformers and opacus unimportable).
"""

__all__: list[str] = []
