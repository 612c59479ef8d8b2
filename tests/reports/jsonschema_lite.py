"""A small JSON Schema validator for the tests (no validator package is installed).

Covers the keywords that the SARIF 2.1.0 schema (draft-04) and pydantic's schemas (2020-12)
use: $ref (local "#/..." pointers), type, enum, const, properties, required,
additionalProperties, patternProperties, items (schema or list), minItems, maxItems,
uniqueItems, minLength, maxLength, pattern, minimum, maximum, exclusiveMinimum/Maximum (both
drafts), anyOf, allOf, oneOf, not. ``format`` is an annotation (as the drafts allow).
Returns every error as ``"/json/pointer: message"``; an empty list means valid.
"""

from __future__ import annotations

import re
from typing import Any

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _resolve(root: dict[str, Any], ref: str) -> Any:
    if not ref.startswith("#"):
        raise ValueError(f"only local $ref is supported; got {ref}")
    node: Any = root
    for token in ref[1:].split("/")[1:]:
        node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


def _equal(a: Any, b: Any) -> bool:
    return (type(a) is type(b) and a == b) or (
        isinstance(a, (int, float)) and isinstance(b, (int, float))
        and not isinstance(a, bool) and not isinstance(b, bool) and a == b)


def validate(instance: Any, schema: Any, root: dict[str, Any] | None = None,
             path: str = "") -> list[str]:
    root = schema if root is None else root
    if schema is True or schema == {}:
        return []
    if schema is False:
        return [f"{path or '/'}: no value is allowed here"]
    errors: list[str] = []
    where = path or "/"
    if "$ref" in schema:
        errors += validate(instance, _resolve(root, schema["$ref"]), root, path)
        if len(schema) == 1:
            return errors
    types = schema.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        if not any(_TYPES[t](instance) for t in names):
            return [f"{where}: expected {names}, got {type(instance).__name__}"]
    if "enum" in schema and not any(_equal(instance, e) for e in schema["enum"]):
        errors.append(f"{where}: {instance!r} is not one of {schema['enum']}")
    if "const" in schema and not _equal(instance, schema["const"]):
        errors.append(f"{where}: {instance!r} is not {schema['const']!r}")
    for key in ("allOf", "anyOf", "oneOf"):
        if key in schema:
            results = [validate(instance, s, root, path) for s in schema[key]]
            ok = sum(not r for r in results)
            if key == "allOf":
                errors += [e for r in results for e in r]
            elif key == "anyOf" and ok == 0:
                errors.append(f"{where}: matches none of anyOf ({results})")
            elif key == "oneOf" and ok != 1:
                errors.append(f"{where}: matches {ok} of oneOf, needs exactly 1")
    if "not" in schema and not validate(instance, schema["not"], root, path):
        errors.append(f"{where}: must not match {schema['not']}")
    if isinstance(instance, dict):
        for name in schema.get("required", []):
            if name not in instance:
                errors.append(f"{where}: missing required property {name!r}")
        props = schema.get("properties", {})
        patterns = schema.get("patternProperties", {})
        extra = schema.get("additionalProperties", True)
        for name, value in instance.items():
            sub = f"{path}/{name}"
            matched = False
            if name in props:
                matched = True
                errors += validate(value, props[name], root, sub)
            for pattern, s in patterns.items():
                if re.search(pattern, name):
                    matched = True
                    errors += validate(value, s, root, sub)
            if not matched:
                if extra is False:
                    errors.append(f"{where}: additional property {name!r} is not allowed")
                elif isinstance(extra, dict):
                    errors += validate(value, extra, root, sub)
    if isinstance(instance, list):
        items = schema.get("items")
        if isinstance(items, list):
            for i, (value, s) in enumerate(zip(instance, items, strict=False)):
                errors += validate(value, s, root, f"{path}/{i}")
        elif items is not None:
            for i, value in enumerate(instance):
                errors += validate(value, items, root, f"{path}/{i}")
        if len(instance) < schema.get("minItems", 0):
            errors.append(f"{where}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(instance) > schema["maxItems"]:
            errors.append(f"{where}: more than {schema['maxItems']} items")
        if schema.get("uniqueItems"):
            seen: list[Any] = []
            for value in instance:
                if any(_equal(value, s) for s in seen):
                    errors.append(f"{where}: items are not unique")
                    break
                seen.append(value)
    if isinstance(instance, str):
        if len(instance) < schema.get("minLength", 0):
            errors.append(f"{where}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(instance) > schema["maxLength"]:
            errors.append(f"{where}: longer than {schema['maxLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], instance):
            errors.append(f"{where}: {instance!r} does not match {schema['pattern']}")
    if _TYPES["number"](instance):
        low, high = schema.get("minimum"), schema.get("maximum")
        ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        if low is not None and (instance < low or (ex_low is True and instance == low)):
            errors.append(f"{where}: {instance} is below the minimum {low}")
        if high is not None and (instance > high or (ex_high is True and instance == high)):
            errors.append(f"{where}: {instance} is above the maximum {high}")
        if not isinstance(ex_low, bool) and ex_low is not None and instance <= ex_low:
            errors.append(f"{where}: {instance} must be > {ex_low}")
        if not isinstance(ex_high, bool) and ex_high is not None and instance >= ex_high:
            errors.append(f"{where}: {instance} must be < {ex_high}")
    return errors
