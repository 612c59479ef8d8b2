"""Loading serialized TenSEAL contexts for one role, and reading N from them.

The one place that turns TenSEAL's ``ValueError``/``RuntimeError`` on a context into a
:class:`SecureAggregationError`; pair it with :mod:`privaudit.mechanisms.secagg.keys`, which
produces the bytes.
"""

from __future__ import annotations

from typing import Literal

import tenseal as ts

from privaudit.core.errors import SecureAggregationError

Role = Literal["client", "server", "key_holder"]


def load_context(data: bytes, *, role: Role) -> ts.Context:
    """Deserialize a context and check it fits ``role``.

    A client or the key holder needs the secret key (clients encrypt symmetrically, the key
    holder decrypts). The server must *not* hold it: handing the server a context with the
    secret key is refused, not silently accepted.
    """
    try:
        ctx = ts.context_from(data)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise SecureAggregationError(
            f"{role} context: cannot deserialize the TenSEAL context ({exc})"
        ) from exc
    has_secret = ctx.has_secret_key()
    if role == "server" and has_secret:
        raise SecureAggregationError(
            "server context: holds the secret key; the server must only get "
            "KeyHolder.server_context() (serialized with save_secret_key=False)"
        )
    if role != "server" and not has_secret:
        raise SecureAggregationError(
            f"{role} context: has no secret key; a {role} needs KeyHolder.client_context()"
        )
    return ctx


def poly_modulus_degree(ctx: ts.Context) -> int:
    """The ring degree N of a loaded context."""
    parms = ctx.seal_context().data.key_context_data().parms()
    return int(parms.poly_modulus_degree())


def slots_per_ciphertext(ctx: ts.Context) -> int:
    """How many real values one CKKS ciphertext packs: N/2."""
    return poly_modulus_degree(ctx) // 2
