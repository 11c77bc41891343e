"""What the proof found, per grant (:class:`Result`): the report ``build/iam-proof.json``, the
table, and the summary line that ends the proof's output."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from devkit.iam_proof.grants import ROOT, Grant

REPORT = ROOT / "build" / "iam-proof.json"
AWS_EVALUATION = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html"


@dataclass
class Result:
    grant: Grant
    status: str  # proven | justified | unproven
    scenario: str = ""
    denial: str = ""
    reason: str = ""
    reference: str = ""
    group: str = ""  # for justified: the GROUPS entry saying why no request here can show it

    def entry(self) -> dict[str, Any]:
        grant = asdict(self.grant)
        grant["principals"] = list(self.grant.principals)
        return {
            **grant,
            "status": self.status,
            "scenario": self.scenario,
            "denial": self.denial,
            "reason": self.reason,
            "reference": self.reference,
            "group": self.group,
            "resources": list(self.grant.resources),
        }


def denial_text(message: str) -> str:
    """The human part of a denial response (S3 answers XML, the others JSON), on one line."""
    match = re.search(r"<Message>(.*?)</Message>", message, flags=re.S)
    if match:
        message = match.group(1)
    else:
        with contextlib.suppress(ValueError):
            body = json.loads(message)
            if isinstance(body, dict):
                message = str(body.get("message") or body.get("Message") or message)
    return " ".join(message.split())


def note_overlaps(results: list[Result]) -> None:
    """Say, for an unproven grant, which other grant gives the same principal the same action.

    Within one account a request is allowed when either the identity policy or the resource policy
    allows it, so of two such grants neither can be shown alone: one of them has to go.
    """
    for result in results:
        if result.status != "unproven":
            continue
        mine = set(result.grant.principals)
        for other in results:
            if other is result or other.grant.action != result.grant.action:
                continue
            if mine & set(other.grant.principals):
                result.reason += (
                    f"; the same principal also gets this action from {other.grant.label()} "
                    f"({other.grant.declared}), so taking one away denies nothing: one of them is "
                    f"redundant ({AWS_EVALUATION})"
                )
                break


def table(results: list[Result]) -> str:
    rows = [("STATUS", "GRANT", "DECLARED", "EVIDENCE")]
    for result in results:
        denied = (
            result.denial[result.denial.find("not authorized") :] if "not authorized" in result.denial else ""
        )
        evidence = (
            f"{result.scenario}: {(denied or result.denial)[:100]}"
            if result.status == "proven"
            else result.reason[:110]
        )
        rows.append((result.status, result.grant.label(), result.grant.declared, evidence))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        f"{row[0].ljust(widths[0])}  {row[1].ljust(widths[1])}  {row[2].ljust(widths[2])}  {row[3]}"
        for row in rows
    )


def summary(results: list[Result]) -> str:
    count = {
        status: sum(r.status == status for r in results) for status in ("proven", "justified", "unproven")
    }
    return (
        f"{count['proven']} of {len(results)} grants proven, {count['justified']} justified, "
        f"{count['unproven']} unproven"
    )


def finish(results: list[Result], baseline_ok: bool, report: Path, facts: dict[str, Any]) -> int:
    """Write the report, print the table and, last, the summary; 0 only when every grant is
    proven or justified after a clean baseline."""
    report.parent.mkdir(parents=True, exist_ok=True)
    document = {
        **facts,
        "baseline_ok": baseline_ok,
        "summary": summary(results),
        "grants": [r.entry() for r in results],
    }
    report.write_text(json.dumps(document, indent=2) + "\n")
    print(table(results))
    print(f"[iam-proof] {report} written")
    if not baseline_ok:
        print("[iam-proof] the baseline failed: a scenario misbehaved or a request was denied (see above)")
    unproven = [r for r in results if r.status == "unproven"]
    for result in unproven:
        print(
            f"[iam-proof] UNPROVEN: {result.grant.label()} ({result.grant.declared}): remove it, or add a scenario"
        )
    print(summary(results))
    return 0 if baseline_ok and not unproven and results else 1
