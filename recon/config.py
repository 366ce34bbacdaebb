"""Rules YAML -> :class:`RuleSet`, validated before anything runs.

Every problem is collected with its key path and line (``rules[2].params.
amount.abs (line 14): expected a non-negative number, got '1,5'``) and
raised together as one :class:`~recon.errors.RulesError`.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from recon.errors import RulesError
from recon.matchers import MATCHERS, Matcher

DEFAULT_WEIGHTS = {"amount": 0.35, "date": 0.15, "reference": 0.3, "name": 0.2}


@dataclass(frozen=True, slots=True)
class RefPattern:
    """A named regex that pulls reference keys out of reference and description text."""

    name: str
    regex: str
    normalise: str = "alnum"  # digits | alnum

    def __post_init__(self) -> None:
        if self.normalise not in ("digits", "alnum"):
            raise ValueError("normalise must be 'digits' or 'alnum'")
        try:
            re.compile(self.regex)
        except re.error as exc:
            raise ValueError(f"invalid regex: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Rule:
    """One step of the pipeline."""

    name: str
    matcher: Matcher
    auto_above: float
    suggest_above: float
    margin: float
    weights: dict[str, float]


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A validated rules file."""

    path: str
    sha256: str
    rules: tuple[Rule, ...]
    references: tuple[RefPattern, ...]
    aging_buckets: tuple[int, ...] = (30, 60, 90)
    date_lag_days: int = 5
    diagnostic_days: int = 45
    settings: dict[str, Any] = field(default_factory=dict)
    #: (from, to, rate): one unit of `from` is `rate` units of `to`; inverses included
    fx_rates: tuple[tuple[str, str, Decimal], ...] = ()
    #: how receipts that no match ties to an invoice settle open invoices
    settlement: str = "oldest_first"
    #: reminder levels: (name, days past due), increasing
    reminder_levels: tuple[tuple[str, int], ...] = (("friendly", 7), ("second", 30), ("final", 60))


_SETTINGS_KEYS = {
    "auto_above": float,
    "suggest_above": float,
    "margin": float,
    "weights": dict,
    "date_lag_days": int,
    "diagnostic_days": int,
    "fx_rates": dict,
}
_TOP_KEYS = ("version", "settings", "references", "aging", "customers", "rules")
_SETTLEMENT = ("oldest_first", "none")
_RULE_KEYS = ("name", "matcher", "params", "auto_above", "suggest_above", "margin", "weights")


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false, so a key `on:` or a value `no` stays text."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


class _Problems:
    """Collects problems with the YAML line of each key path."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.root = root
        self.items: list[str] = []

    def add(self, path: str, message: str, line: int | None = None) -> None:
        line = line or _line_of(self.root, path)
        where = f"{path} (line {line})" if line else path
        self.items.append(f"{where}: {message}")


def _line_of(node: yaml.Node | None, path: str) -> int | None:
    """Line (1-based) of the YAML node at `path` like `rules[2].params.days`."""
    if node is None:
        return None
    line = int(node.start_mark.line) + 1
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("[") and isinstance(node, yaml.SequenceNode):
            idx = int(part[1:-1])
            if idx >= len(node.value):
                return None
            node = node.value[idx]
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == part:
                    node = v
                    break
            else:
                return None  # the key is missing: no line to point at
        else:
            return None
        line = int(node.start_mark.line) + 1
    return line


def _duplicate_keys(node: yaml.Node, path: str, pr: _Problems, seen: set[int]) -> None:
    """Report a key given twice in one mapping: YAML keeps the last without a word."""
    if id(node) in seen:  # an alias of a node already walked
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key, value in node.value:
            where = f"{path}.{key.value}" if path else str(key.value)
            line = int(key.start_mark.line) + 1
            if key.value in first_line:
                pr.add(where, f"given twice (first on line {first_line[key.value]}); "
                       "keep one", line)
            first_line.setdefault(key.value, line)
            _duplicate_keys(value, where, pr, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _duplicate_keys(item, f"{path}[{i}]", pr, seen)


def _hint(name: str, choices: typing.Iterable[str]) -> str:
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} (known: {', '.join(choices)})"


def load_rules(path: str | Path) -> RuleSet:
    """Read and validate a rules file; raise RulesError listing every problem."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise RulesError(p, [f"cannot read rules file: {exc.strerror or exc}"]) from exc
    text = raw.decode("utf-8", errors="replace")
    try:
        root = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise RulesError(p, [f"{where}not valid YAML: {getattr(exc, 'problem', exc)}"]) from exc
    problems = _Problems(root)
    if root is not None:
        _duplicate_keys(root, "", problems, set())
    ruleset = _build(data, problems, p, hashlib.sha256(raw).hexdigest())
    if problems.items:
        raise RulesError(p, problems.items)
    assert ruleset is not None
    return ruleset


def _build(data: Any, pr: _Problems, path: Path, sha: str) -> RuleSet | None:
    if not isinstance(data, dict):
        pr.add("(top)", "expected a mapping with keys " + ", ".join(_TOP_KEYS))
        return None
    for key in data:
        if key not in _TOP_KEYS:
            pr.add(str(key), f"unknown key {key!r}" + _hint(str(key), _TOP_KEYS))
    if data.get("version", 1) != 1:
        pr.add("version", f"unsupported version {data.get('version')!r}; expected 1")
    settings = _settings(data.get("settings") or {}, pr)
    refs = _references(data.get("references") or {}, pr)
    buckets = _aging(data.get("aging") or {}, pr)
    settlement, levels = _customers(data.get("customers") or {}, pr)
    rules = _rules(data.get("rules"), settings, pr)
    return RuleSet(
        path=str(path),
        sha256=sha,
        rules=tuple(rules),
        references=tuple(refs),
        aging_buckets=buckets,
        date_lag_days=int(settings.get("date_lag_days", 5)),
        diagnostic_days=int(settings.get("diagnostic_days", 45)),
        settings=settings,
        fx_rates=tuple(settings.get("fx_rates", ())),
        settlement=settlement, reminder_levels=levels,
    )


def _settings(raw: Any, pr: _Problems) -> dict[str, Any]:
    out: dict[str, Any] = {
        "auto_above": 0.8,
        "suggest_above": 0.5,
        "margin": 0.05,
        "weights": dict(DEFAULT_WEIGHTS),
    }
    if not isinstance(raw, dict):
        pr.add("settings", "expected a mapping")
        return out
    for key, value in raw.items():
        if key not in _SETTINGS_KEYS:
            pr.add(f"settings.{key}", f"unknown key {key!r}" + _hint(str(key), _SETTINGS_KEYS))
        elif key == "weights":
            out["weights"] = _weights(value, f"settings.{key}", pr)
        elif key == "fx_rates":
            out["fx_rates"] = _fx_rates(value, f"settings.{key}", pr)
        else:
            coerced = _coerce(value, _SETTINGS_KEYS[key], f"settings.{key}", pr)
            if coerced is None:
                continue  # reported; the default stands in while the others are checked
            if _SETTINGS_KEYS[key] is int and coerced < 0:
                pr.add(f"settings.{key}", f"expected a non-negative number of days, got {value!r}")
            out[key] = coerced
    _check_thresholds(out, "settings", pr)
    return out


def _fx_rates(raw: Any, where: str, pr: _Problems) -> tuple[tuple[str, str, Decimal], ...]:
    if not isinstance(raw, dict):
        pr.add(where, "expected a mapping like {USD/EUR: 0.92}")
        return ()
    out: dict[tuple[str, str], Decimal] = {}
    for key, value in raw.items():
        m = re.fullmatch(r"([A-Z]{3})/([A-Z]{3})", str(key))
        rate = _coerce(value, Decimal, f"{where}.{key}", pr)
        if not m:
            pr.add(f"{where}.{key}", f"expected a currency pair like 'USD/EUR', got {key!r}")
        elif isinstance(rate, Decimal) and rate <= 0:
            pr.add(f"{where}.{key}", f"expected a positive rate, got {value!r}")
        elif isinstance(rate, Decimal):
            out[(m[1], m[2])] = rate
            out.setdefault((m[2], m[1]), (Decimal(1) / rate).quantize(Decimal("1e-10")))
    return tuple((a, b, r) for (a, b), r in sorted(out.items()))


def _check_thresholds(values: dict[str, Any], where: str, pr: _Problems) -> None:
    for key in ("auto_above", "suggest_above", "margin"):
        v = values.get(key)
        if isinstance(v, float) and not 0 <= v <= 1:
            pr.add(f"{where}.{key}", f"expected a score between 0 and 1, got {v!r}")


def _weights(raw: Any, where: str, pr: _Problems) -> dict[str, float]:
    out = dict(DEFAULT_WEIGHTS)
    if not isinstance(raw, dict):
        pr.add(where, "expected a mapping of feature -> weight")
        return out
    for key, value in raw.items():
        if key not in DEFAULT_WEIGHTS:
            pr.add(f"{where}.{key}", f"unknown feature {key!r}" + _hint(str(key), DEFAULT_WEIGHTS))
            continue
        v = _coerce(value, float, f"{where}.{key}", pr)
        if isinstance(v, float) and v < 0:
            pr.add(f"{where}.{key}", f"expected a non-negative weight, got {value!r}")
        elif isinstance(v, float):
            out[key] = v
    if sum(out.values()) <= 0:
        pr.add(where, "weights must not all be zero")
    return out


def _references(raw: Any, pr: _Problems) -> list[RefPattern]:
    if not isinstance(raw, dict):
        pr.add("references", "expected a mapping with key 'patterns'")
        return []
    for key in raw:
        if key != "patterns":
            pr.add(f"references.{key}", f"unknown key {key!r} (known: patterns)")
    out = []
    for i, item in enumerate(raw.get("patterns") or []):
        obj = _dataclass_from(RefPattern, item, f"references.patterns[{i}]", pr)
        if obj is not None:
            out.append(obj)
    return out


def _aging(raw: Any, pr: _Problems) -> tuple[int, ...]:
    if not isinstance(raw, dict):
        pr.add("aging", "expected a mapping with key 'buckets'")
        return (30, 60, 90)
    for key in raw:
        if key != "buckets":
            pr.add(f"aging.{key}", f"unknown key {key!r} (known: buckets)")
    b = raw.get("buckets", [30, 60, 90])
    if not isinstance(b, list) or not all(
        isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in b
    ):
        pr.add("aging.buckets", f"expected a list of positive day counts, got {b!r}")
        return (30, 60, 90)
    if b != sorted(set(b)):
        pr.add("aging.buckets", f"expected increasing day counts, got {b!r}")
    return tuple(b)


def _customers(raw: Any, pr: _Problems) -> tuple[str, tuple[tuple[str, int], ...]]:
    """`customers: {settlement: oldest_first, reminder_levels: {friendly: 7, ...}}`."""
    default = (("friendly", 7), ("second", 30), ("final", 60))
    if not isinstance(raw, dict):
        pr.add("customers", "expected a mapping with keys settlement, reminder_levels")
        return "oldest_first", default
    for key in raw:
        if key not in ("settlement", "reminder_levels"):
            pr.add(f"customers.{key}", f"unknown key {key!r}"
                   + _hint(str(key), ("settlement", "reminder_levels")))
    settlement = raw.get("settlement", "oldest_first")
    if settlement not in _SETTLEMENT:
        pr.add("customers.settlement", f"unknown settlement {settlement!r}"
               + _hint(str(settlement), _SETTLEMENT))
        settlement = "oldest_first"
    levels = raw.get("reminder_levels", dict(default))
    if not isinstance(levels, dict) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in levels.values()
    ):
        pr.add("customers.reminder_levels", f"expected name: days past due, got {levels!r}")
        return settlement, default
    days = list(levels.values())
    if days != sorted(set(days)):
        pr.add("customers.reminder_levels", f"expected increasing days, got {levels!r}")
    return settlement, tuple((str(k), int(v)) for k, v in levels.items())


def _rules(raw: Any, settings: dict[str, Any], pr: _Problems) -> list[Rule]:
    if not isinstance(raw, list) or not raw:
        pr.add("rules", "expected a non-empty list of rules")
        return []
    out, names = [], set()
    for i, item in enumerate(raw):
        where = f"rules[{i}]"
        if not isinstance(item, dict):
            pr.add(where, "expected a mapping with keys " + ", ".join(_RULE_KEYS))
            continue
        for key in item:
            if key not in _RULE_KEYS:
                pr.add(f"{where}.{key}", f"unknown key {key!r}" + _hint(str(key), _RULE_KEYS))
        rule = _rule(item, where, settings, pr)
        if rule is None:
            continue
        if rule.name in names:
            pr.add(f"{where}.name", f"duplicate rule name {rule.name!r}")
        names.add(rule.name)
        out.append(rule)
    return out


def _rule(item: dict[str, Any], where: str, settings: dict[str, Any], pr: _Problems) -> Rule | None:
    mname = item.get("matcher")
    if not isinstance(mname, str) or mname not in MATCHERS:
        pr.add(f"{where}.matcher", f"unknown matcher {mname!r}" + _hint(str(mname), MATCHERS))
        return None
    matcher = _dataclass_from(MATCHERS[mname], item.get("params") or {}, f"{where}.params", pr)
    values = {k: settings[k] for k in ("auto_above", "suggest_above", "margin")}
    for key in values:
        if key in item:
            values[key] = _coerce(item[key], float, f"{where}.{key}", pr)
    _check_thresholds(values, where, pr)
    weights = settings["weights"]
    if "weights" in item:
        weights = _weights(item["weights"], f"{where}.weights", pr)
    name = item.get("name", f"{mname}_{where[6:-1]}")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        pr.add(f"{where}.name", f"expected a name of letters, digits, _ . -, got {name!r}")
    if matcher is None:
        return None
    return Rule(name=str(name), matcher=matcher, weights=weights, **values)


def _dataclass_from(cls: type[Any], raw: Any, where: str, pr: _Problems) -> Any:
    """Build dataclass `cls` from a YAML mapping, coercing each field by its type."""
    if not isinstance(raw, dict):
        pr.add(where, f"expected a mapping, got {raw!r}")
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    ok = True
    for key, value in raw.items():
        if key not in fields:
            pr.add(f"{where}.{key}", f"unknown parameter {key!r}" + _hint(str(key), fields))
            ok = False
            continue
        before = len(pr.items)
        kwargs[key] = _coerce(value, hints[key], f"{where}.{key}", pr)
        ok = ok and len(pr.items) == before
    if not ok:
        return None
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        pr.add(where, str(exc))
        return None


def _coerce(value: Any, tp: Any, where: str, pr: _Problems) -> Any:
    """Coerce a YAML value to type `tp` or record a problem."""
    origin = typing.get_origin(tp)
    if origin is tuple or origin is list:
        (inner, *_) = typing.get_args(tp)
        items = value if isinstance(value, list) else [value]
        return tuple(_coerce(v, inner, f"{where}[{i}]", pr) for i, v in enumerate(items))
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _coerce(value, args[0], where, pr)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_from(tp, value, where, pr)
    return _scalar(value, tp, where, pr)


def _scalar(value: Any, tp: Any, where: str, pr: _Problems) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        pr.add(where, f"expected true or false, got {value!r}")
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        pr.add(where, f"expected an integer, got {value!r}")
    elif tp is float:
        # .nan and .inf are YAML floats: a run with a NaN weight never finished
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        pr.add(where, f"expected a number, got {value!r}")
    elif tp is Decimal:
        try:
            if isinstance(value, bool):
                raise InvalidOperation
            d = Decimal(str(value))
            if d.is_finite():
                return d
        except InvalidOperation:
            pass
        pr.add(where, f"expected a number like 0.50, got {value!r}")
    elif tp is str:
        if isinstance(value, str):
            return value
        pr.add(where, f"expected text, got {value!r}")
    elif tp is dict:
        if isinstance(value, dict):
            return value
        pr.add(where, f"expected a mapping, got {value!r}")
    else:  # pragma: no cover - a new field type without a coercer is a bug
        raise TypeError(f"no coercion for {tp!r}")
    return None
