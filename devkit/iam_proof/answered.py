"""The IAM proof's mutation on AWS (``make iam-proof-aws``, devkit/iam_proof/aws.py): which of the
pipeline's scenarios run there, how AWS's access-denial answers become denials, and a grant proven
only by what taking it away alone caused (an answered denial, or a scenario that broke)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

import boto3

from devkit.iam_proof.grants import Carrier, Grant
from devkit.iam_proof.justifications import JUSTIFICATIONS
from devkit.iam_proof.prove import Proof
from devkit.iam_proof.report import Result
from devkit.iam_proof.tables import (
    AWS_COMPONENT_SCENARIOS,
    AWS_KEY_SCENARIOS,
    AWS_OUTPUT_SCENARIOS,
    AWS_SCENARIOS,
    AWS_SERVICE_SCENARIOS,
    INDEPENDENT_CALLS,
)
from devkit.ministack import Denial

SETTLE_SECONDS = 15.0
"""IAM, key, queue, topic and bucket policy changes take seconds to apply everywhere on AWS (IAM
user guide, "Changes that I make are not always immediately visible"): waited after every change."""
TIMEOUT_SCALE = 4.0
"""The scenarios' waits, scaled as ``make e2e-aws`` scales them (E2E_TIMEOUT_SCALE)."""

RESOURCE_PARAMETERS = (
    "KeyId",
    "TopicArn",
    "QueueUrl",
    "TableName",
    "FunctionName",
    "stateMachineArn",
    "Bucket",
)
"""The request parameters naming the resource a denial is on, first found first."""
_DENIAL = re.compile(
    r"(?:User|Principal):? (?P<principal>arn:\S+|anonymous) is not authorized to perform:? "
    r"(?P<action>[A-Za-z0-9-]+:[A-Za-z0-9]+)(?: on resource:? (?P<resource>\S+?))?(?:[\s,.]|$)"
)


def parse_denial(service: str, message: str) -> Denial | None:
    """An access denial's answer as a :class:`Denial` (AWS names the caller, the action and the
    resource in the message of every service's AccessDenied), or None for any other message."""
    match = _DENIAL.search(message)
    if match is None:
        return None
    resource = (match["resource"] or "").rstrip(".,")
    return Denial(service, match["action"], match["principal"], resource, message)


@dataclass
class Answers:
    """Where the proof finds denials on AWS: the access-denied answers to its own requests (every
    client of the default boto3 session created after :meth:`listen`); what
    :class:`devkit.iam_proof.prove.Proof` otherwise reads from MiniStack's denial log."""

    seen: list[Denial] = field(default_factory=list)

    def listen(self) -> None:
        boto3.setup_default_session()
        assert boto3.DEFAULT_SESSION is not None
        boto3.DEFAULT_SESSION.events.register("before-parameter-build.*.*", self._before_call)
        boto3.DEFAULT_SESSION.events.register("after-call.*.*", self._after_call)

    @staticmethod
    def _before_call(
        params: dict[str, Any] | None = None, context: dict[str, Any] | None = None, **_: Any
    ) -> None:
        """Keep the resource the request names: a denial that does not name it (MiniStack's KMS
        answers, some services' on AWS) is still a denial on that resource."""
        named = next((str(params[k]) for k in RESOURCE_PARAMETERS if params and params.get(k)), "")
        if context is not None:
            context["iam_proof_resource"] = named

    def _after_call(
        self,
        parsed: dict[str, Any] | None = None,
        model: Any = None,
        context: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        error = (parsed or {}).get("Error") or {}
        if not error or "not authorized" not in str(error.get("Message", "")):
            return
        service = model.service_model.endpoint_prefix if model is not None else ""
        denial = parse_denial(service, str(error["Message"]))
        if denial is not None and not denial.resource and context:
            denial = replace(denial, resource=str(context.get("iam_proof_resource", "")))
        if denial is not None:
            self.seen.append(denial)

    def denial_offset(self) -> int:
        return len(self.seen)

    def denials(self, offset: int = 0) -> tuple[list[Denial], int]:
        return self.seen[offset:], len(self.seen)


Evidence = tuple[str, str]
"""What showed a grant: the scenario, and the answer or what the scenario observed."""


@dataclass
class AwsProof(Proof):
    """The proof's mutation, with AWS's answers and the scenarios' outcomes as the evidence."""

    settle: float = SETTLE_SECONDS  # Proof.taken_away waits this long after each change

    def scenarios_for(self, grant: Grant) -> tuple[str, ...]:
        if grant.kind in ("role-policy", "managed-policy", "trust-policy"):
            return AWS_COMPONENT_SCENARIOS.get(self.components.get(grant.holder, ""), ())
        if grant.kind == "operator-policy":
            return AWS_OUTPUT_SCENARIOS.get(grant.policy, ())
        if grant.kind == "key-policy" and self.administers(grant):
            return ("key_administration",)
        names: list[str] = []
        if grant.kind == "key-policy":
            for output, scenarios in AWS_KEY_SCENARIOS.items():
                if self.pipeline.outputs.get(output) == grant.holder:
                    names += scenarios
        for principal in grant.principals:
            names += AWS_SERVICE_SCENARIOS.get(principal, ())
            names += AWS_COMPONENT_SCENARIOS.get(
                self.components.get(self.role_arns.get(principal, ""), ""), ()
            )
        return tuple(dict.fromkeys(names))

    def baseline(self) -> bool:
        outcomes, denials = self.run(AWS_SCENARIOS)
        for name, outcome in outcomes.items():
            self.log(f"  baseline {name:<24} {'ok ' if outcome.ok else 'BAD'} {outcome.observed}")
        for name, denial in denials:
            self.log(f"  baseline {name}: unexpected denial: {denial.describe()}")
        return all(o.ok for o in outcomes.values()) and not denials

    def trial(
        self, carrier: Carrier, grants: list[Grant], names: tuple[str, ...]
    ) -> tuple[dict[str, Evidence], Evidence | None]:
        """Take `grants` (of one statement) away, run `names`: the grants denied by an answer
        (action -> scenario and evidence), and the first scenario that broke (the same), if any."""
        with self.taken_away(carrier, grants[0].index, {g.action for g in grants}):
            outcomes, denials = self.run(names, {g.action.lower() for g in grants})
        answered = {}
        for grant in grants:
            hit = self.denial_of(grant, denials)
            if hit is not None:
                message = " ".join(hit[1].message.split())[:300]
                answered[grant.action] = (hit[0], f"{hit[0]}: AWS answered: {message}")
        broken = next(
            (
                (name, f"broke with it taken away: {name}: {outcome.observed}")
                for name, outcome in outcomes.items()
                if not outcome.ok
            ),
            None,
        )
        return answered, broken

    def prove(self, carrier: Carrier, grants: list[Grant]) -> list[Result]:
        names = self.scenarios_for(grants[0])
        remaining = [g for g in grants if not g.action.startswith("NotAction:")] if names else []
        shown: dict[str, Evidence] = {}
        self.scenarios.admin_focus = carrier.holder if "key_administration" in names else ""
        if remaining:
            answered, broken = self.trial(carrier, remaining, names)
            # Independent calls: each refusal is answered on its own request, so the answer decides.
            if len(remaining) == 1 or set(names) <= INDEPENDENT_CALLS:
                shown = {g.action: answered[g.action] for g in remaining if g.action in answered}
            if len(remaining) == 1 and broken and not shown:
                shown[remaining[0].action] = broken
            elif len(remaining) > 1 and (answered or broken):
                for grant in [g for g in remaining if g.action not in shown]:  # each taken away alone
                    one, one_broken = self.trial(carrier, [grant], names)
                    alone = one.get(grant.action) or one_broken
                    if alone is not None:
                        shown[grant.action] = alone
        self.scenarios.admin_focus = ""
        results = [self._result(grant, names, shown.get(grant.action)) for grant in grants]
        self.log(f"  {grants[0].label().rsplit(' ', 1)[0]}: {len(shown)} of {len(grants)} grant(s) shown")
        return results

    def _result(self, grant: Grant, names: tuple[str, ...], shown: tuple[str, str] | None) -> Result:
        if shown is not None:
            return Result(grant, "proven", scenario=shown[0], denial=shown[1])
        justification = next((j for j in JUSTIFICATIONS if j.matches(grant, self.components_of(grant))), None)
        tried = ", ".join(names) or "no scenario of the pipeline exercises this principal on AWS"
        reason = f"taking it away broke nothing and was answered by no denial ({tried})"
        if justification is not None:
            reason += f"; on MiniStack: {justification.reason}"
        return Result(
            grant,
            "not shown",
            reason=reason,
            reference=justification.reference if justification else "",
            group=justification.group if justification else "",
        )
