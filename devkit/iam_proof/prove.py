"""The mutation: take each grant of the deployed stack away, rerun the scenarios of the principals
it applies to, and look for the denial of exactly that action; restore."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from devkit import functions
from devkit.iam_proof.acting import Acting
from devkit.iam_proof.actor import Credentials
from devkit.iam_proof.grants import Carrier, Grant, Locator, enumerate_grants, shape, short, without
from devkit.iam_proof.justifications import JUSTIFICATIONS
from devkit.iam_proof.policies import (
    carriers,
    operator_carriers,
    output_documents,
    proof_user,
    state_resources,
)
from devkit.iam_proof.report import Result, denial_text, note_overlaps
from devkit.iam_proof.scenarios import Outcome, ProofError, Scenarios, _never
from devkit.iam_proof.tables import (
    COMPONENT_SCENARIOS,
    DELIBERATE,
    INDEPENDENT_CALLS,
    KEY_ADMINISTRATION,
    KEY_SCENARIOS,
    OUTPUT_SCENARIOS,
    RESOURCE_POLICIES,
    SCENARIOS,
    SERVICE_SCENARIOS,
    WRONG_DENIALS,
)
from devkit.ministack import Denial, MiniStack
from devkit.pipeline import Pipeline
from devkit.stack import Stack

# A delivery a service makes to a queue or topic (an S3 notification, SNS fan-out) is no caller's
# request: MiniStack refuses one its resource policy does not allow without an access-denied
# response, and writes one line to its log instead (ministack/services/s3.py, sns.py).
_REFUSED_DELIVERY = re.compile(
    r"\[(?P<sender>s3|sns)\] (?:S3 notification|SNS fanout): (?P<destination>queue|topic) policy "
    r"denies delivery from (?P<source>\S*) to (?P<target>\S+)$"
)
# (sender, destination) -> the service refusing, the action and the service principal refused.
REFUSED_DELIVERIES = {
    ("s3", "queue"): ("sqs", "sqs:SendMessage", "s3.amazonaws.com"),
    ("s3", "topic"): ("sns", "sns:Publish", "s3.amazonaws.com"),
    ("sns", "queue"): ("sqs", "sqs:SendMessage", "sns.amazonaws.com"),
}


def refused_deliveries(path: Path, offset: int = 0) -> tuple[list[Denial], int]:
    """The deliveries MiniStack's log (from byte `offset`) says it refused, each as a denial of the
    sending service's principal on the queue (its name) or topic (its ARN); and the new offset."""
    if not path.is_file():
        return [], offset
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read()
    complete = data[: data.rfind(b"\n") + 1]
    found = []
    for line in complete.decode("utf-8", errors="replace").splitlines():
        match = _REFUSED_DELIVERY.search(line.rstrip())
        if match:
            service, action, principal = REFUSED_DELIVERIES[(match["sender"], match["destination"])]
            text = line.rstrip()[match.start() :]
            found.append(Denial(service, action, principal, match["target"], f"MiniStack's log: {text}"))
    return found, offset + len(complete)


@dataclass
class Proof:
    pipeline: Pipeline
    server: MiniStack
    scenarios: Scenarios
    components: dict[str, str] = field(default_factory=dict)  # role name -> component
    role_arns: dict[str, str] = field(default_factory=dict)  # role ARN -> role name
    account_root: str = ""  # arn:<partition>:iam::<account>:root
    log: Callable[[str], None] = print
    settle: float = 0.0  # seconds for a policy change to apply (make iam-proof-aws: 15)

    def discover(self) -> None:
        """Which role is whose (from the deployed functions and state machine)."""
        outputs = self.pipeline.outputs
        for component, output in ((f.name, f.output) for f in functions.FUNCTIONS):  # functions.json
            arn = self.pipeline.client("lambda").get_function_configuration(FunctionName=outputs[output])[
                "Role"
            ]
            self.components[arn.rsplit("/", 1)[-1]] = component
            self.role_arns[arn] = arn.rsplit("/", 1)[-1]
        machine = self.pipeline.client("stepfunctions").describe_state_machine(
            stateMachineArn=outputs["step_function_arn"]
        )
        self.components[machine["roleArn"].rsplit("/", 1)[-1]] = "state_machine"
        self.role_arns[machine["roleArn"]] = machine["roleArn"].rsplit("/", 1)[-1]
        _, partition, _, _, account, _ = outputs["step_function_arn"].split(":", 5)
        self.account_root = f"arn:{partition}:iam::{account}:root"

    def components_of(self, grant: Grant) -> frozenset[str]:
        """Whose grant it is: the part of the stack holding the role (identity and trust policies),
        ``operator`` for an exported policy, else the parts of the stack (or ``account`` for the
        account root) among its principals. Service principals are matched by name instead."""
        if grant.kind in ("role-policy", "managed-policy", "trust-policy"):
            return frozenset({self.components.get(grant.holder, "")} - {""})
        if grant.kind == "operator-policy":
            return frozenset({"operator"})
        found = set()
        for principal in grant.principals:
            if principal == self.account_root:
                found.add("account")
            elif principal in self.role_arns:
                found.add(self.components.get(self.role_arns[principal], ""))
        return frozenset(found - {""})

    def scenarios_for(self, grant: Grant) -> tuple[str, ...]:
        names: list[str] = []
        if grant.kind in ("role-policy", "managed-policy", "trust-policy"):
            names += COMPONENT_SCENARIOS.get(self.components.get(grant.holder, ""), ())
        elif grant.kind == "operator-policy":
            names += OUTPUT_SCENARIOS.get(grant.policy, ())
        elif grant.kind == "key-policy" and self.administers(grant):
            names.append("key_administration")
        elif grant.kind == "key-policy":
            for output, scenarios in KEY_SCENARIOS.items():
                if self.pipeline.outputs.get(output) == grant.holder:
                    names += scenarios
        else:
            for principal in grant.principals:
                names += SERVICE_SCENARIOS.get(principal, ())
                names += COMPONENT_SCENARIOS.get(
                    self.components.get(self.role_arns.get(principal, ""), ""), ()
                )
        return tuple(dict.fromkeys(names))

    def administers(self, grant: Grant) -> bool:
        """A key-policy grant to the account itself, not through a service: key administration."""
        return grant.principals == (self.account_root,) and "kms:ViaService" not in grant.condition

    def deliberate(self, denial: Denial, scenario: str) -> bool:
        component, action = DELIBERATE.get(scenario, ("", ""))
        role = next((r for r, c in self.components.items() if c == component), "\0")
        return denial.action.lower() == action.lower() and f"/{role}/" in denial.principal

    def mark(self) -> tuple[int, int]:
        """Where the denial log and MiniStack's log end now."""
        log = self.server.log_path if isinstance(self.server, MiniStack) else None
        return self.server.denial_offset(), log.stat().st_size if log and log.is_file() else 0

    def denials_since(self, mark: tuple[int, int]) -> list[Denial]:
        """The requests denied, and the deliveries refused, since `mark`."""
        found, _ = self.server.denials(mark[0])
        if isinstance(self.server, MiniStack):
            found += refused_deliveries(self.server.log_path, mark[1])[0]
        return found

    def run(
        self, names: tuple[str, ...], wanted: set[str] | None = None
    ) -> tuple[dict[str, Outcome], list[tuple[str, Denial]]]:
        """Run the scenarios; with `wanted` (actions), stop a scenario's waiting once one is denied."""
        outcomes, denials = {}, []
        for name in names:
            mark = self.mark()
            if wanted:
                self.scenarios.stop = lambda m=mark: any(
                    d.action.lower() in wanted for d in self.denials_since(m)
                )
            try:
                outcomes[name] = SCENARIOS[name](self.scenarios)
            except ClientError as error:  # one of the scenario's own requests refused: it failed
                refusal = error.response.get("Error", {})
                outcomes[name] = Outcome(False, f"{refusal.get('Code')}: {refusal.get('Message', '')[:300]}")
            finally:
                self.scenarios.stop = _never
            time.sleep(0.3)  # let the last asynchronous requests of the scenario reach the log
            found = self.denials_since(mark) + self.scenarios.unlogged
            self.scenarios.unlogged.clear()
            denials += [
                (name, d) for d in found if not self.deliberate(d, name) and d.action not in WRONG_DENIALS
            ]
            if wanted and wanted <= {d.action.lower() for _, d in denials}:
                break  # every action looked for is denied: the other scenarios would add nothing
        return outcomes, denials

    def baseline(self) -> bool:
        outcomes, denials = self.run(tuple(SCENARIOS))
        for name, outcome in outcomes.items():
            self.log(f"  baseline {name:<24} {'ok ' if outcome.ok else 'BAD'} {outcome.observed}")
        for name, denial in denials:
            self.log(f"  baseline {name}: unexpected denial: {denial.describe()}")
        for action, why in WRONG_DENIALS.items():
            self.log(f"  baseline: {action} denied as a known MiniStack difference ({why}), not counted")
        return all(o.ok for o in outcomes.values()) and not denials

    @staticmethod
    def denial_of(grant: Grant, denials: list[tuple[str, Denial]]) -> tuple[str, Denial] | None:
        for scenario, denial in denials:
            if denial.action.lower() != grant.action.lower():
                continue
            if (
                grant.kind in ("role-policy", "managed-policy")
                and f"/{grant.holder}/" not in denial.principal
            ):
                continue
            if grant.kind == "operator-policy" and not denial.principal.endswith(f"/{grant.holder}"):
                continue
            if grant.kind == "trust-policy" and not denial.resource.endswith(f"/{grant.holder}"):
                continue  # assuming another role
            if grant.kind in RESOURCE_POLICIES and short(grant.holder) not in denial.resource:
                continue  # a denial on another key, topic or function is not this grant's
            if grant.kind == "queue-policy" and short(denial.resource) != short(grant.holder):
                continue  # by name: the upload queue's name is part of its dead-letter queue's
            if (
                denial.principal.endswith(".amazonaws.com")
                and "*" not in grant.principals
                and denial.principal not in grant.principals
            ):
                continue  # a delivery refused to another service
            return scenario, denial
        return None

    @contextlib.contextmanager
    def taken_away(self, carrier: Carrier, index: int, actions: set[str]) -> Iterator[None]:
        """The statement without `actions` while the block runs; each change is given `settle`
        seconds to apply everywhere (0 on MiniStack; AWS's policies are eventually consistent)."""
        carrier.apply(without(carrier.document, index, actions))
        time.sleep(self.settle)
        try:
            yield
        finally:
            carrier.apply(carrier.document)
            time.sleep(self.settle)
            if carrier.read is not None and shape(carrier.read()) != shape(carrier.document):
                raise ProofError(f"{carrier.kind} of {carrier.holder} was not restored as deployed")

    def prove(self, carrier: Carrier, grants: list[Grant]) -> list[Result]:
        """The grants of one statement: take them away together, then one by one where denied."""
        results: list[Result] = []
        names = self.scenarios_for(grants[0])
        remaining = [g for g in grants if not g.action.startswith("NotAction:")] if names else []
        seen: dict[str, tuple[str, Denial]] = {}
        self.scenarios.admin_focus = carrier.holder if "key_administration" in names else ""
        independent = set(names) <= INDEPENDENT_CALLS
        while remaining:
            with self.taken_away(carrier, grants[0].index, {g.action for g in remaining}):
                _, denials = self.run(names, {g.action.lower() for g in remaining})
            hits = {g.action: hit for g in remaining if (hit := self.denial_of(g, denials))}
            if not hits:
                break
            for grant in [g for g in remaining if g.action in hits]:
                hit: tuple[str, Denial] | None = hits[grant.action]
                if len(remaining) > 1 and not independent:  # confirm with this action taken away alone
                    with self.taken_away(carrier, grant.index, {grant.action}):
                        order = (hits[grant.action][0], *(n for n in names if n != hits[grant.action][0]))
                        _, alone = self.run(order, {grant.action.lower()})
                    hit = self.denial_of(grant, alone)
                if hit:
                    seen[grant.action] = hit
            remaining = [g for g in remaining if g.action not in hits]
        self.scenarios.admin_focus = ""
        for grant in grants:
            if grant.action in seen:
                scenario, denial = seen[grant.action]
                text = denial_text(denial.message) if denial.message else denial.describe()
                results.append(Result(grant, "proven", scenario=scenario, denial=text))
                continue
            justification = next(
                (j for j in JUSTIFICATIONS if j.matches(grant, self.components_of(grant))), None
            )
            if justification is not None:
                results.append(
                    Result(
                        grant,
                        "justified",
                        reason=justification.reason,
                        reference=justification.reference,
                        group=justification.group,
                    )
                )
            else:
                tried = ", ".join(names) or "no scenario exercises this principal"
                results.append(
                    Result(
                        grant,
                        "unproven",
                        reason=f"taking it away caused no denial ({tried}); no justification",
                    )
                )
        return results


def key_administrator(
    pipeline: Pipeline,
    keys: list[str],
    user: str = "iam-proof-key-administrator",
    tags: dict[str, str] | None = None,
) -> tuple[Any, str]:
    """An IAM user of the proof's own whose policy allows :data:`KEY_ADMINISTRATION` on `keys`
    (a KMS client with its credentials, and its ARN): what it may do then depends on the keys'
    policies, as for any principal of the account but the root."""
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AdministerKeys", "Effect": "Allow", "Action": list(KEY_ADMINISTRATION), "Resource": keys}
        ],
    }
    arn, credentials = proof_user(pipeline, user, "key-administration", document, tags)
    return pipeline.as_user(credentials).client("kms"), arn


def acting_for(proof: Proof, pipeline: Pipeline, scenarios: Scenarios) -> Acting:
    """devkit/iam_proof/acting.py's scenarios for this stack: its roles, the operator, and an uploader (an
    IAM user of the proof's own allowed to use the S3 key through S3, as any uploader of the
    account would be; what it may do then depends on the key's policy)."""
    roles = {component: arn for arn, name in proof.role_arns.items() if (component := proof.components[name])}
    key = pipeline.outputs["kms_s3_key_arn"]
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "UseUploadKeyThroughS3",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": [key],
                "Condition": {"StringEquals": {"kms:ViaService": f"s3.{pipeline.region}.amazonaws.com"}},
            }
        ],
    }
    _, keys = proof_user(pipeline, "iam-proof-uploader", "upload-key-use", document)
    operator = next(iter(scenarios.operators.values()), None)
    return Acting(
        pipeline,
        roles=roles,
        uploader=Credentials(*keys),
        operator=Credentials(*operator.credentials) if operator else None,
    )


def prove_stack(
    stack: Stack, server: MiniStack, outputs: dict[str, str], started: float
) -> tuple[bool, list[Result]]:
    """Baseline, then every grant of the deployed stack taken away in turn."""
    pipeline = Pipeline(server.endpoint_url, outputs, ca_bundle=server.ca_bundle)
    pipeline.subscribe_alerts("iam-proof-alerts")
    resources = state_resources(stack)
    scenarios = Scenarios(pipeline)
    scenarios.setup()
    scenarios.admin_keys = [r["values"]["arn"] for r in resources if r["type"] == "aws_kms_key"]
    scenarios.key_admin, scenarios.key_admin_arn = key_administrator(pipeline, scenarios.admin_keys)
    operator_found, scenarios.operators = operator_carriers(pipeline, output_documents(stack))
    proof = Proof(pipeline, server, scenarios)
    proof.discover()
    scenarios.acting = acting_for(proof, pipeline, scenarios)
    print(
        f"[iam-proof] baseline: every scenario, no denial ({time.monotonic() - started:.0f} s) ...",
        flush=True,
    )
    baseline_ok = proof.baseline()
    groups = enumerate_grants(carriers(pipeline, resources) + operator_found, Locator())
    total = sum(len(g) for _, g in groups)
    print(f"[iam-proof] {total} grants in {len(groups)} statements; taking each away ...", flush=True)
    results: list[Result] = []
    for carrier, grants in groups:
        results += proof.prove(carrier, grants)
    note_overlaps(results)
    scenarios.teardown()
    pipeline.empty_bucket()  # see tests/e2e: MiniStack's force_destroy cannot delete keys with '+'
    return baseline_ok, results
