"""The deployed stack's grants: every action of every Allow statement is one :class:`Grant`, found
in a policy document a :class:`Carrier` holds, and declared where :class:`Locator` says."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devkit import toolchain

ROOT = toolchain.ROOT


@dataclass(frozen=True)
class Grant:
    """One action of one Allow statement, as deployed."""

    kind: str  # role-policy, managed-policy, trust-policy, topic-policy, queue-policy, bucket-policy, lambda-permission, key-policy
    holder: str  # the role, topic, queue (its ARN), bucket, function or key that carries the policy
    policy: str  # inline policy name, managed policy ARN, or "" when the holder has one policy
    index: int  # the statement's position in the document
    sid: str
    action: str
    principals: tuple[str, ...]  # who it is granted to: the role for identity policies
    condition: str  # the statement's Condition, as JSON (justifications look at kms:ViaService)
    address: str  # the terraform resource that declares it
    declared: str  # file:line of the statement's sid (or of the resource)
    resources: tuple[str, ...] = ()  # the statement's Resource (NotResource: "NotResource:<r>")

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.kind, self.holder, self.policy, self.index)

    def label(self) -> str:
        holder = self.address if self.kind == "key-policy" else short(self.holder)
        return f"{self.kind} {holder} {self.sid or f'#{self.index}'} {self.action}"


def short(arn: str) -> str:
    return arn.rsplit(":", 1)[-1].rsplit("/", 1)[-1] if arn.startswith("arn:") else arn


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def principals_of(statement: dict[str, Any]) -> tuple[str, ...]:
    principal = statement.get("Principal", {})
    if principal == "*":
        return ("*",)
    if isinstance(principal, dict):
        return tuple(str(p) for values in principal.values() for p in as_list(values))
    return tuple(str(p) for p in as_list(principal))


def resources_of(statement: dict[str, Any]) -> tuple[str, ...]:
    if "NotResource" in statement:
        return tuple(f"NotResource:{r}" for r in as_list(statement["NotResource"]))
    return tuple(str(r) for r in as_list(statement.get("Resource")))


def condition_keys(condition: str) -> frozenset[str]:
    """The condition keys a statement's Condition (as JSON) tests, lower-case."""
    document = json.loads(condition or "{}")
    return frozenset(key.lower() for tests in document.values() for key in tests)


def allow_statements(document: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    return [
        (index, statement)
        for index, statement in enumerate(as_list(document.get("Statement")))
        if statement.get("Effect") == "Allow"
    ]


def grants_of(
    document: dict[str, Any],
    *,
    kind: str,
    holder: str,
    policy: str,
    address: str,
    locate: Callable[[str, str], str],
    identity: str = "",
) -> list[Grant]:
    """One Grant per action of each Allow statement (NotAction counts as one grant, never proven)."""
    found = []
    for index, statement in allow_statements(document):
        actions = [str(a) for a in as_list(statement.get("Action"))]
        if "NotAction" in statement:
            actions = [f"NotAction:{','.join(str(a) for a in as_list(statement['NotAction']))}"]
        sid = str(statement.get("Sid", ""))
        for action in actions:
            found.append(
                Grant(
                    kind=kind,
                    holder=holder,
                    policy=policy,
                    index=index,
                    sid=sid,
                    action=action,
                    principals=(identity,) if identity else principals_of(statement),
                    condition=json.dumps(statement.get("Condition", {}), sort_keys=True),
                    address=address,
                    declared=locate(sid, address),
                    resources=resources_of(statement),
                )
            )
    return found


def without(document: dict[str, Any], index: int, actions: set[str]) -> dict[str, Any]:
    """The document with `actions` taken out of statement `index` (the statement goes if emptied)."""
    changed = copy.deepcopy(document)
    statements = as_list(changed.get("Statement"))
    statement = statements[index]
    kept = [a for a in as_list(statement.get("Action")) if a not in actions]
    if kept:
        statement["Action"] = kept if len(kept) > 1 else kept[0]
    elif len(statements) > 1:
        del statements[index]
    else:
        # AWS refuses a policy without statements: the same statement as a Deny takes it away too.
        statement["Effect"] = "Deny"
        statement["Sid"] = "IamProofTakenAway"
    changed["Statement"] = statements
    return changed


class Locator:
    """Where a statement is declared: file:line of its sid inside the policy document its resource
    uses (following source_policy_documents), else of that document, else of the resource."""

    def __init__(self, root: Path = ROOT) -> None:
        self.files = {path.name: path.read_text().splitlines() for path in sorted(root.glob("*.tf"))}

    def block(self, header: str) -> tuple[str, int, list[str]]:
        """(file, first line number, lines) of the top-level block whose first line matches."""
        regex = re.compile(header)
        for name, lines in self.files.items():
            for number, line in enumerate(lines, start=1):
                if regex.search(line):
                    end = next((i for i in range(number, len(lines)) if lines[i] == "}"), len(lines))
                    return name, number, lines[number - 1 : end + 1]
        return "", 0, []

    def _in_document(self, document: str, sid: str, seen: set[str]) -> str:
        name, first, lines = self.block(rf'^data\s+"aws_iam_policy_document"\s+"{re.escape(document)}"')
        if not lines or document in seen:
            return ""
        seen.add(document)
        for offset, line in enumerate(lines):
            if sid and re.search(rf'^\s*sid\s*=\s*"{re.escape(sid)}"', line):
                return f"{name}:{first + offset}"
        for source in re.findall(r"data\.aws_iam_policy_document\.(\w+)\.json", "\n".join(lines)):
            if found := self._in_document(source, sid, seen):
                return found
        return "" if sid else f"{name}:{first}"

    def __call__(self, sid: str, address: str) -> str:
        kind, _, rest = address.partition(".")
        name = rest.split(",")[0].split(" ")[0]
        header = (
            rf'^output\s+"{re.escape(name)}"'
            if kind == "output"
            else rf'^resource\s+"{re.escape(kind)}"\s+"{re.escape(name)}"'
        )
        file, first, lines = self.block(header)
        text = "\n".join(lines)
        for document in re.findall(r"data\.aws_iam_policy_document\.(\w+)\.json", text):
            if found := self._in_document(document, sid, set()):
                return found
        for offset, line in enumerate(lines):  # lambda permissions: statement_id in the resource
            if sid and re.search(rf'^\s*statement_id\s*=\s*"{re.escape(sid)}"', line):
                return f"{file}:{first + offset}"
        if not file and sid:  # not found through its resource: the first statement with that sid
            file, first, _ = self.block(rf'^\s*(sid|statement_id)\s*=\s*"{re.escape(sid)}"')
        return f"{file}:{first}" if file else "?"


@dataclass
class Carrier:
    """A deployed policy document and how to put a changed version of it back."""

    kind: str
    holder: str
    policy: str
    address: str
    document: dict[str, Any]
    identity: str  # the role ARN for identity policies
    apply: Callable[[dict[str, Any]], None]
    read: Callable[[], dict[str, Any]] | None = None  # the document as deployed now


def shape(document: dict[str, Any]) -> list[tuple[str, str, tuple[str, ...], tuple[str, ...]]]:
    """What a policy grants, whatever way a service writes it back: (sid, effect, actions,
    principals) per statement."""
    return sorted(
        (
            str(statement.get("Sid", "")),
            str(statement.get("Effect", "")),
            tuple(sorted(str(a) for a in as_list(statement.get("Action")))),
            tuple(sorted(principals_of(statement))),
        )
        for statement in as_list(document.get("Statement"))
    )


def enumerate_grants(carriers_found: list[Carrier], locate: Locator) -> list[tuple[Carrier, list[Grant]]]:
    """(carrier, grants of one statement) for every Allow statement."""
    groups: list[tuple[Carrier, list[Grant]]] = []
    for carrier in carriers_found:
        grants = grants_of(
            carrier.document,
            kind=carrier.kind,
            holder=carrier.holder,
            policy=carrier.policy,
            address=carrier.address,
            locate=locate,
            identity=carrier.identity,
        )
        by_statement: dict[int, list[Grant]] = {}
        for grant in grants:
            by_statement.setdefault(grant.index, []).append(grant)
        groups += [(carrier, statement) for statement in by_statement.values()]
    return groups
