"""EventBridge additions: Lambda targets, and firing a (scheduled) rule on demand.

moto 5.2.5 delivers matching events to SQS, CloudWatch Logs, archives and other buses, but raises
``NotImplementedError`` for a Lambda target, and never runs ``schedule_expression`` rules. Here:

* :func:`install` makes ``Rule.send_to_targets`` invoke Lambda targets asynchronously (as EventBridge
  does), honouring the target's ``Input`` (constant JSON), ``InputPath`` and ``InputTransformer``, and
  stops schedule-only rules from matching every ``PutEvents`` event (moto's behaviour);
* :func:`trigger_rule` sends a ``Scheduled Event`` (or a given event) to a rule's targets now: the
  emulator's stand-in for the schedule (``POST /_emulator/events/trigger``).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import uuid
from typing import Any

from emulator.context import active
from emulator.patch import Patch

LOG = logging.getLogger("emulator.events")


def _target_event(target: dict[str, Any], event: dict[str, Any]) -> Any:
    from moto.events.models import EventTemplateParser

    if target.get("Input"):
        return json.loads(target["Input"])
    if target.get("InputPath"):
        from jsonpath_ng import parse as jsonpath_parse  # a moto[server] dependency

        matches = [m.value for m in jsonpath_parse(target["InputPath"]).find(event)]
        return matches[0] if matches else None
    transformer = target.get("InputTransformer") or {}
    if transformer:
        return EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=event,
        )
    return event


def _invoke_lambda_target(rule: Any, target: dict[str, Any], event: dict[str, Any]) -> None:
    from moto.awslambda.utils import get_backend

    arn = target["Arn"]
    region = arn.split(":")[3] or rule.region_name
    account = arn.split(":")[4] or rule.account_id
    fn = get_backend(account, region).get_function(arn)
    payload = json.dumps(_target_event(target, event))
    request_id = active().async_invoker.submit(fn, payload, source=f"events:{rule.name}")
    LOG.info("rule %s -> lambda %s (async request %s)", rule.name, fn.function_name, request_id)


def _send_to_targets(original: Any) -> Any:
    def send_to_targets(self: Any, original_event: dict[str, Any], transform_input: bool = True) -> None:
        if (
            self.scheduled_expression
            and not self.event_pattern.dump()
            and not getattr(self, "_triggered", False)
        ):
            return  # a schedule-only rule matches no event (moto would deliver every event to it)
        lambda_targets = [t for t in self.targets if t["Arn"].split(":")[2:3] == ["lambda"]]
        if not lambda_targets:
            original(self, original_event, transform_input)
            return
        if not self.event_pattern.matches_event(original_event):
            return
        others = copy.copy(self)
        others.targets = [t for t in self.targets if t not in lambda_targets]
        if others.targets:
            original(others, original_event, transform_input)
        for target in lambda_targets:
            _invoke_lambda_target(self, target, original_event)

    return send_to_targets


def scheduled_event(rule: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": rule.account_id,
        "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": rule.region_name,
        "resources": [rule.arn],
        "detail": {},
    }


def trigger_rule(
    name: str,
    account_id: str = "123456789012",
    region: str = "us-east-1",
    event_bus: str = "default",
    event: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Deliver ``event`` (default: a Scheduled Event) to every target of the rule, now."""
    from moto.events.models import events_backends

    rule = events_backends[account_id][region].describe_rule(name, event_bus)
    message = event if event is not None else scheduled_event(rule)
    # A scheduled event does not have to match an event pattern: deliver to the targets directly.
    pattern_free = copy.copy(rule)
    pattern_free.event_pattern = type(rule.event_pattern).load(None)
    pattern_free._triggered = True
    pattern_free.send_to_targets(message)
    return {"rule": rule.arn, "targets": [t["Arn"] for t in rule.targets], "event": message}


def _tagged_rules(original: Any) -> Any:
    """The tagging API lists event buses; AWS lists the rules (tagged ones) too."""
    from moto.core.resource_tagging import TaggedResource

    def iter_tagged_resources(self: Any) -> Any:
        yield from original(self)
        for bus in self.event_buses.values():
            for rule in bus.rules.values():
                tags = self.tagger.get_tag_dict_for_resource(rule.arn)
                if tags:
                    yield TaggedResource(arn=rule.arn, tags=tags, resource_type="events:rule")

    return iter_tagged_resources


PATCHES = [
    Patch(
        "moto.events.models.EventsBackend.iter_tagged_resources",
        "moto's Resource Groups Tagging API lists EventBridge buses only; AWS lists tagged rules too"
        " (make aws-sweep finds a run's schedule rule by its tag)",
        _tagged_rules,
    ),
    Patch(
        "moto.events.models.Rule.send_to_targets",
        "moto raises NotImplementedError for Lambda targets and delivers every PutEvents event to"
        " schedule-only rules; EventBridge invokes Lambda targets asynchronously and schedule rules"
        " match no event",
        _send_to_targets,
    ),
]
