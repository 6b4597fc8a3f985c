"""Rule sets in YAML, layered firm → model → household → account.

A file is one layer's rules::

    layer: household          # firm, model, household or account
    applies_to: H-1001        # the model, household or account it is for (not the firm)
    rules:
      - id: single-security   # unique in the file; the same id below overrides it
        kind: security_weight
        severity: block       # or warn; block by default
        max_weight: 0.10
        allow_loosen: [max_weight]   # what a lower layer may loosen (true: anything)

The layers are applied top down. A lower layer may add rules of its own, and may
override a rule above it by naming its ``id``: it may **tighten** any parameter (a
lower maximum, a higher minimum, more securities on a do-not-buy list, a ``warn``
made ``block``), but may **loosen** one — a higher maximum, fewer securities, a
``block`` made ``warn``, the rule turned off with ``enabled: false`` — only where the
upper rule lists that parameter (``severity``, ``enabled``) in ``allow_loosen``, or
says ``allow_loosen: true``. A layer passes on only what it was itself allowed:
what it lists in ``allow_loosen`` is what the layers below it may loosen, less what
it could not. Which way tightens each parameter is the rule kind's own
(:class:`~poise.comply.rules.base.Param`).

Every file is validated when it is read, and every error names the file, the line
and the field: an unknown kind or parameter, a value of the wrong type, a missing
parameter, an id given twice, an expression that does not compile, and — when the
layers are put together — a loosening the upper layer does not allow, naming both
layers' files and lines. Pure: the text is handed in, with the name to report it by.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from poise.comply.findings import Severity
from poise.comply.rules import KINDS, Rule
from poise.comply.rules.base import Direction, Param
from poise.domain.errors import ValidationError

__all__ = [
    "Layer",
    "RuleBook",
    "RuleFile",
    "RuleSet",
    "RuleSetError",
    "RuleSpec",
    "Where",
    "applying",
    "compose",
    "parse",
]

COMMON = frozenset({"id", "kind", "severity", "enabled", "allow_loosen"})
TOP = frozenset({"layer", "applies_to", "rules"})


class RuleSetError(ValidationError):
    """A rule set that cannot be used; its message names each file, line and field."""


class Layer(enum.IntEnum):
    FIRM = 0
    MODEL = 1
    HOUSEHOLD = 2
    ACCOUNT = 3


@dataclass(frozen=True, slots=True)
class Where:
    file: str
    line: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A rule as a layer gives it: the parameters it sets, read and checked, and where
    each was set (the last layer that set it)."""

    rule_id: str
    kind: str
    where: Where
    severity: Severity = Severity.BLOCK
    enabled: bool = True
    params: Mapping[str, Any] = field(default_factory=dict)
    allow_loosen: frozenset[str] = frozenset()  # "*": anything
    set_at: Mapping[str, Where] = field(default_factory=dict)  # field → where set

    def may_loosen(self, name: str) -> bool:
        return "*" in self.allow_loosen or name in self.allow_loosen

    def build(self) -> Rule:
        return KINDS[self.kind](rule_id=self.rule_id, severity=self.severity, **self.params)


@dataclass(frozen=True, slots=True)
class RuleFile:
    name: str
    layer: Layer
    applies_to: str
    rules: tuple[RuleSpec, ...]


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The rules in force once the layers are applied, in the order first given."""

    specs: tuple[RuleSpec, ...]

    def rules(self) -> list[Rule]:
        return [s.build() for s in self.specs if s.enabled]

    def spec(self, rule_id: str) -> RuleSpec:
        for s in self.specs:
            if s.rule_id == rule_id:
                return s
        raise KeyError(rule_id)


# ── reading one file ─────────────────────────────────────────────────────────


class _Errors:
    def __init__(self, name: str) -> None:
        self.name = name
        self.said: list[str] = []

    def at(self, node: yaml.Node) -> Where:
        return Where(self.name, node.start_mark.line + 1)

    def add(self, node: yaml.Node, message: str) -> None:
        self.said.append(f"{self.at(node)}: {message}")


def _value(node: yaml.Node) -> Any:
    return yaml.SafeLoader("").construct_object(node, deep=True)


def _mapping(node: yaml.Node, errors: _Errors, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """A mapping node's entries by key; duplicate and non-text keys are errors."""
    if not isinstance(node, yaml.MappingNode):
        errors.add(node, f"{what} must be a mapping")
        return {}
    entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, value in node.value:
        name = _value(key)
        if not isinstance(name, str):
            errors.add(key, f"{what}: field {name!r} is not a name")
        elif name in entries:
            errors.add(key, f"{what}: field {name!r} given twice")
        else:
            entries[name] = (key, value)
    return entries


def parse(text: str, name: str) -> RuleFile:
    """One layer's rule file (``name``: how errors name it), validated; raises
    :class:`RuleSetError` naming every error's line and field."""
    errors = _Errors(name)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise RuleSetError(f"{name}{line}: not YAML: {getattr(e, 'problem', e)}") from None
    if root is None:
        raise RuleSetError(f"{name}:1: empty: a rule file needs a layer and rules")
    top = _mapping(root, errors, "the file")
    layer, applies_to = _header(root, top, errors)
    specs: list[RuleSpec] = []
    if "rules" not in top:
        errors.add(root, "field 'rules' is missing")
    elif not isinstance(top["rules"][1], yaml.SequenceNode):
        errors.add(top["rules"][1], "field 'rules' must be a list of rules")
    else:
        seen: dict[str, Where] = {}
        for node in top["rules"][1].value:
            spec = _rule(node, errors)
            if spec is None:
                continue
            if spec.rule_id in seen:
                errors.add(
                    node,
                    f"rule {spec.rule_id!r}: id given twice (first at {seen[spec.rule_id]})",
                )
                continue
            seen[spec.rule_id] = spec.where
            specs.append(spec)
    if errors.said:
        raise RuleSetError("\n".join(errors.said))
    return RuleFile(name, layer, applies_to, tuple(specs))


def _header(
    root: yaml.Node, top: dict[str, tuple[yaml.Node, yaml.Node]], errors: _Errors
) -> tuple[Layer, str]:
    """The file's layer and what it applies to."""
    for key in sorted(set(top) - TOP):
        errors.add(top[key][0], f"unknown field {key!r}; a rule file has {', '.join(sorted(TOP))}")
    layer = Layer.FIRM
    applies_to = ""
    if "layer" not in top:
        errors.add(root, "field 'layer' is missing (firm, model, household or account)")
    else:
        given = _value(top["layer"][1])
        try:
            layer = Layer[str(given).upper()]
        except KeyError:
            errors.add(
                top["layer"][1],
                f"field 'layer': {given!r} is not firm, model, household or account",
            )
    if "applies_to" in top:
        node = top["applies_to"][1]
        # as written: an account id of digits keeps its leading zeros
        applies_to = node.value if isinstance(node, yaml.ScalarNode) else str(_value(node))
    elif layer is not Layer.FIRM and "layer" in top:
        errors.add(root, f"field 'applies_to' is missing: which {layer.name.lower()} it is for")
    return layer, applies_to


def _rule(node: yaml.Node, errors: _Errors) -> RuleSpec | None:
    """One rule as written; the kind may be left out where the rule overrides one
    above (checked when the layers are composed)."""
    fields = _mapping(node, errors, "a rule")
    if not fields:
        return None
    where = errors.at(node)
    if "id" not in fields:
        errors.add(node, "a rule: field 'id' is missing")
        return None
    rule_id = str(_value(fields["id"][1]))
    label = f"rule {rule_id!r}"
    kind = ""
    cls: type[Rule] | None = None
    if "kind" in fields:
        kind = str(_value(fields["kind"][1]))
        cls = KINDS.get(kind)
        if cls is None:
            errors.add(
                fields["kind"][1],
                f"{label}: field 'kind': unknown kind {kind!r}; kinds: {', '.join(sorted(KINDS))}",
            )
            return None
    set_at = {"id": where}
    severity, enabled, allow = _common(fields, errors, label, set_at)
    params: dict[str, Any] = {}
    kinds_params = cls.PARAMS if cls is not None else None
    for name, (key, value) in fields.items():
        if name in COMMON:
            continue
        set_at[name] = errors.at(key)
        if kinds_params is None:
            params[name] = _value(value)  # read once its kind is known, above
            continue
        if name not in kinds_params:
            known = ", ".join(sorted(kinds_params)) or "none"
            errors.add(key, f"{label}: field {name!r}: {kind} has no such parameter ({known})")
            continue
        try:
            params[name] = kinds_params[name].read(_value(value))
        except (TypeError, ValueError) as e:
            errors.add(value, f"{label}: field {name!r}: {e}")
    if kinds_params is not None:
        for name, param in kinds_params.items():
            if param.required and name not in fields:
                errors.add(node, f"{label}: field {name!r} is missing ({param.about})")
    return RuleSpec(rule_id, kind, where, severity, enabled, params, allow, set_at)


def _common(
    fields: dict[str, tuple[yaml.Node, yaml.Node]],
    errors: _Errors,
    label: str,
    set_at: dict[str, Where],
) -> tuple[Severity, bool, frozenset[str]]:
    """A rule's severity, whether it is on, and what lower layers may loosen."""
    severity = Severity.BLOCK
    if "severity" in fields:
        text = _value(fields["severity"][1])
        try:
            severity = Severity(text)
        except ValueError:
            errors.add(
                fields["severity"][1], f"{label}: field 'severity': {text!r} is not block or warn"
            )
        set_at["severity"] = errors.at(fields["severity"][0])
    enabled = True
    if "enabled" in fields:
        enabled = _value(fields["enabled"][1])
        if not isinstance(enabled, bool):
            errors.add(fields["enabled"][1], f"{label}: field 'enabled': expected true or false")
            enabled = True
        set_at["enabled"] = errors.at(fields["enabled"][0])
    allow: frozenset[str] = frozenset()
    if "allow_loosen" in fields:
        given = _value(fields["allow_loosen"][1])
        if given is True:
            allow = frozenset({"*"})
        elif isinstance(given, list) and all(isinstance(g, str) for g in given):
            allow = frozenset(given)
        elif given is not False:
            errors.add(
                fields["allow_loosen"][1],
                f"{label}: field 'allow_loosen': expected true or a list of fields",
            )
    return severity, enabled, allow


# ── putting the layers together ──────────────────────────────────────────────


def _default(kind: str, name: str) -> Any:
    for f in dataclasses.fields(KINDS[kind]):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
    return None


def _looser(direction: Direction, old: Any, new: Any) -> bool:
    """True when ``new`` loosens ``old`` for a parameter that tightens ``direction``."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return any(k not in new or _looser(direction, v, new[k]) for k, v in old.items())
    if direction is Direction.LOWER:
        return bool(new > old)
    if direction is Direction.HIGHER:
        return bool(new < old)
    if direction is Direction.MORE:
        return not set(new) >= set(old)
    if direction is Direction.FEWER:  # an empty set is every one: the widest
        return bool((not new and old) or (old and not set(new) <= set(old)))
    return bool(new != old)


def _override(upper: RuleSpec, lower: RuleSpec, errors: list[str]) -> RuleSpec:
    """``upper`` as ``lower`` overrides it, each loosening checked against what
    ``upper`` allows."""
    label = f"{lower.where}: rule {lower.rule_id!r}"
    if lower.kind and lower.kind != upper.kind:
        errors.append(
            f"{label}: field 'kind': {lower.kind!r} cannot replace {upper.kind!r} set at "
            f"{upper.where}; give the rule a new id"
        )
        return upper
    cls = KINDS[upper.kind]
    params = dict(upper.params)
    set_at = dict(upper.set_at)

    def forbid(name: str, old: Any, new: Any) -> None:
        errors.append(
            f"{lower.set_at.get(name, lower.where)}: rule {lower.rule_id!r}: field {name!r}: "
            f"{_shown(new)} loosens {_shown(old)} set at "
            f"{upper.set_at.get(name, upper.where)}, which does not allow it to be loosened "
            f"(allow_loosen)"
        )

    for name, raw in lower.params.items():
        param: Param | None = cls.PARAMS.get(name)
        if param is None:
            errors.append(
                f"{lower.set_at[name]}: rule {lower.rule_id!r}: field {name!r}: "
                f"{upper.kind} has no such parameter"
            )
            continue
        try:
            new = param.read(raw) if not lower.kind else raw
        except (TypeError, ValueError) as e:
            errors.append(f"{lower.set_at[name]}: rule {lower.rule_id!r}: field {name!r}: {e}")
            continue
        old = params.get(name, _default(upper.kind, name))
        if _looser(param.tighter, old, new) and not upper.may_loosen(name):
            forbid(name, old, new)
            continue
        params[name] = new
        set_at[name] = lower.set_at[name]
    severity, enabled = upper.severity, upper.enabled
    if "severity" in lower.set_at:
        if (
            lower.severity is Severity.WARN
            and upper.severity is Severity.BLOCK
            and not (upper.may_loosen("severity"))
        ):
            forbid("severity", upper.severity.value, lower.severity.value)
        else:
            severity = lower.severity
            set_at["severity"] = lower.set_at["severity"]
    if "enabled" in lower.set_at:
        if upper.enabled and not lower.enabled and not upper.may_loosen("enabled"):
            forbid("enabled", True, False)
        else:
            enabled = lower.enabled
            set_at["enabled"] = lower.set_at["enabled"]
    # a layer passes on only what it may loosen itself
    allow = upper.allow_loosen if "allow_loosen" not in lower.set_at else lower.allow_loosen
    if "*" not in upper.allow_loosen:
        allow = frozenset(a for a in allow if a != "*") & upper.allow_loosen
    return RuleSpec(
        upper.rule_id, upper.kind, upper.where, severity, enabled, params, allow, set_at
    )


def _shown(value: Any) -> str:
    if isinstance(value, frozenset | set):
        return "[" + ", ".join(sorted(value)) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    return str(value).lower() if isinstance(value, bool) else str(value)


def applying(
    files: Sequence[RuleFile],
    *,
    model_id: str | None = None,
    household_id: str | None = None,
    account_id: str | None = None,
) -> list[RuleFile]:
    """The files that apply to an account — the firm's, its model's, its household's
    and its own — top down, ready for :func:`compose`."""
    wanted = {
        Layer.FIRM: None,
        Layer.MODEL: model_id,
        Layer.HOUSEHOLD: household_id,
        Layer.ACCOUNT: account_id,
    }
    chosen = [
        f for f in files if f.layer is Layer.FIRM or (wanted[f.layer] or None) == f.applies_to
    ]
    return sorted(chosen, key=lambda f: f.layer)


def compose(files: Sequence[RuleFile]) -> RuleSet:
    """The rules in force from ``files``, given top down (firm first); raises
    :class:`RuleSetError` naming every forbidden loosening with both layers' lines."""
    errors: list[str] = []
    for upper, lower in itertools.pairwise(files):
        if lower.layer < upper.layer:
            errors.append(
                f"{lower.name}:1: a {lower.layer.name.lower()} layer cannot come below "
                f"the {upper.layer.name.lower()} layer {upper.name}"
            )
    merged: dict[str, RuleSpec] = {}
    for f in files:
        for spec in f.rules:
            if spec.rule_id in merged:
                merged[spec.rule_id] = _override(merged[spec.rule_id], spec, errors)
            elif not spec.kind:
                errors.append(
                    f"{spec.where}: rule {spec.rule_id!r}: field 'kind' is missing, and no "
                    f"layer above has a rule {spec.rule_id!r} for it to override"
                )
            else:
                merged[spec.rule_id] = spec
    if errors:
        raise RuleSetError("\n".join(errors))
    return RuleSet(tuple(merged.values()))


class RuleBook:
    """A firm's rule files, read once, and the rules in force for each account:
    :func:`applying` then :func:`compose`, worked out once for each set of files that
    apply (most accounts share the firm's and their model's). ``digest`` names the
    files' text — what a check's ledger entry records as the rules it ran.

    Pickled as its files alone (a run sends it to other processes), each process
    building its own rules again."""

    def __init__(self, files: Sequence[RuleFile], digest: str = "") -> None:
        self.files = tuple(files)
        self.digest = digest
        self._sets: dict[tuple[str, ...], tuple[RuleSet, list[Rule]]] = {}

    @classmethod
    def of_texts(cls, texts: Sequence[tuple[str, str]]) -> RuleBook:
        """The book of ``texts`` (name, YAML), each validated; raises
        :class:`RuleSetError` naming every error of every file."""
        files: list[RuleFile] = []
        errors: list[str] = []
        digest = hashlib.sha256()
        for name, text in sorted(texts):
            digest.update(f"{len(name)}:{name}{len(text)}:{text}".encode())
            try:
                files.append(parse(text, name))
            except RuleSetError as e:
                errors.append(str(e))
        if errors:
            raise RuleSetError("\n".join(errors))
        seen: dict[tuple[Layer, str], str] = {}
        for f in files:
            key = (f.layer, f.applies_to)
            if key in seen:
                errors.append(
                    f"{f.name}:1: a second {f.layer.name.lower()} layer"
                    f"{' for ' + f.applies_to if f.applies_to else ''} (the first: {seen[key]})"
                )
            seen[key] = f.name
        if errors:
            raise RuleSetError("\n".join(errors))
        book = cls(files, digest.hexdigest())
        for f in files:  # every account-free combination composes: loosenings found now
            if f.layer is not Layer.ACCOUNT:
                book.ruleset(
                    model_id=f.applies_to if f.layer is Layer.MODEL else None,
                    household_id=f.applies_to if f.layer is Layer.HOUSEHOLD else None,
                )
        return book

    def __reduce__(self) -> tuple[type[RuleBook], tuple[tuple[RuleFile, ...], str]]:
        return (RuleBook, (self.files, self.digest))

    def _composed(
        self, model_id: str | None, household_id: str | None, account_id: str | None
    ) -> tuple[RuleSet, list[Rule]]:
        chosen = applying(
            self.files, model_id=model_id, household_id=household_id, account_id=account_id
        )
        key = tuple(f.name for f in chosen)
        found = self._sets.get(key)
        if found is None:
            ruleset = compose(chosen)
            found = self._sets[key] = (ruleset, ruleset.rules())
        return found

    def ruleset(
        self,
        *,
        model_id: str | None = None,
        household_id: str | None = None,
        account_id: str | None = None,
    ) -> RuleSet:
        """The rule set in force for an account of ``household_id`` under ``model_id``."""
        return self._composed(model_id, household_id, account_id)[0]

    def rules(
        self,
        *,
        model_id: str | None = None,
        household_id: str | None = None,
        account_id: str | None = None,
    ) -> list[Rule]:
        """The rules in force (built once, shared: rules are frozen)."""
        return self._composed(model_id, household_id, account_id)[1]

    def key(
        self,
        *,
        model_id: str | None = None,
        household_id: str | None = None,
        account_id: str | None = None,
    ) -> tuple[str, ...]:
        """The names of the files that apply: accounts with one key share their rules."""
        chosen = applying(
            self.files, model_id=model_id, household_id=household_id, account_id=account_id
        )
        return tuple(f.name for f in chosen)
