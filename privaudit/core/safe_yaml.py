"""YAML read safely: ``SafeLoader`` only, and bounded before anything is built from it.

Every YAML file privaudit reads from a user — a config, an erasure request, a gate policy —
goes through :func:`load_yaml`: UTF-8 (a BOM is allowed), at most :data:`MAX_BYTES`, one
document, nested at most :data:`MAX_DEPTH` deep, at most :data:`MAX_NODES` nodes once aliases
are expanded (a "billion laughs" file is refused before it is expanded), no recursive alias,
and every string encodable as UTF-8 (a ``"\\ud800"`` escape would crash the writer of the run
directory later). A violation is a :class:`ConfigError` (exit 2) naming the file and why.

>>> load_yaml("a: [1, 2]", what="x.yaml")
{'a': [1, 2]}
>>> try:
...     load_yaml("a: &a [1, 1]\\nb: &b [*a, *a]\\nc: [*b, *b]", what="x.yaml", max_nodes=10)
... except ConfigError as exc:
...     print(exc)
x.yaml: too large once its aliases are expanded (more than 10 nodes)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from privaudit.core.errors import ConfigError

MAX_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 200_000


def _check_nodes(root: yaml.Node, what: str, max_nodes: int) -> None:
    """Expanded size and depth of the node graph, in time linear in its distinct nodes."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ConfigError(f"{what}: a YAML alias refers to itself (recursive structure)")
        if depth > MAX_DEPTH:
            raise ConfigError(f"{what}: nested more than {MAX_DEPTH} levels deep")
        total = 1
        if isinstance(node, yaml.SequenceNode | yaml.MappingNode):
            active.add(key)
            children = (node.value if isinstance(node, yaml.SequenceNode)
                        else [n for pair in node.value for n in pair])
            for child in children:
                total += size(child, depth + 1)
                if total > max_nodes:
                    raise ConfigError(f"{what}: too large once its aliases are expanded "
                                      f"(more than {max_nodes} nodes)")
            active.discard(key)
        sizes[key] = total
        return total

    size(root, 0)


def _check_strings(value: Any, what: str, where: str = "") -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ConfigError(f"{what}: {where or '(top level)'}: not valid Unicode text "
                              f"({exc.reason} at character {exc.start})") from None
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_strings(k, what, where)
            _check_strings(v, what, f"{where}.{k}" if where else str(k))
    elif isinstance(value, list | tuple | set):
        for i, v in enumerate(value):
            _check_strings(v, what, f"{where}[{i}]")


def load_yaml(source: str | bytes, *, what: str, max_nodes: int = MAX_NODES) -> Any:
    """Parse one YAML document with ``SafeLoader`` within the bounds above."""
    if isinstance(source, bytes):
        if len(source) > MAX_BYTES:
            raise ConfigError(f"{what}: larger than {MAX_BYTES // (1024 * 1024)} MiB "
                              f"(got {len(source)} bytes)")
        try:
            source = source.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{what}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                              [f"{what}: not valid YAML (not UTF-8 text: {exc.reason} at "
                               f"byte {exc.start})"]) from None
    try:
        loader = yaml.SafeLoader(source)  # the reader refuses control characters here
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what}: not valid YAML ({exc})",
                          [f"{what}: not valid YAML ({exc})"]) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node, what, max_nodes)
        data = loader.construct_document(node)
    except ConfigError:
        raise
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what}: not valid YAML ({exc})",
                          [f"{what}: not valid YAML ({exc})"]) from None
    except RecursionError:
        raise ConfigError(f"{what}: not valid YAML (nested too deeply)") from None
    except ValueError as exc:  # a scalar the constructor refuses, e.g. a 5000-digit integer
        raise ConfigError(f"{what}: not valid YAML ({exc})") from None
    finally:
        loader.dispose()
    _check_strings(data, what)
    return data


def load_yaml_file(path: Path, *, what: str) -> Any:
    """:func:`load_yaml` of a file; a missing or unreadable file is a ConfigError too."""
    try:
        with path.open("rb") as fh:
            blob = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{what}: file not found ({path})") from None
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path} ({exc.strerror or exc})") from None
    return load_yaml(blob, what=what)
