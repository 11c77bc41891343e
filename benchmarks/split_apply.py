"""`terraform apply` with the S3 bucket's split resources against the inline blocks they replaced.

Issue #15 allows the split resources (``aws_s3_bucket_versioning``,
``aws_s3_bucket_server_side_encryption_configuration``, ``aws_s3_bucket_lifecycle_configuration``)
to make the apply at most 10 % slower than the deprecated inline ``versioning``,
``server_side_encryption_configuration`` and ``lifecycle_rule`` blocks of ``aws_s3_bucket``. This
measures it on the stack as it is: the root configuration (``split``) and a variant identical except
that each split resource is folded into the bucket it configures as the equivalent inline block
(``inline``), each applied onto a fresh embedded emulator, interleaved (split, inline, split, ...),
and compares the medians. The variant is generated in its own staged working directory under
build/tf/ (real files in place of the links to the root's): the repository's ``.tf`` files are
never written.

The variant is a text edit, so everything else keeps its exact text: each split resource's block is
cut out, the inline blocks (rendered from the resource's values, parsed with python-hcl2) go at the
end of the bucket's body, and a reference to a split resource (a ``depends_on``) becomes one to the
bucket. An argument without a known inline form (a lifecycle filter with a prefix, a transition, an
expected bucket owner, ...) raises :class:`VariantError` rather than measuring something else.

Each apply runs with ``-json``: its per-resource start and end times give the timeline, and with the
dependencies Terraform records in the state, the chain of resources that ended it
(:func:`critical_path`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hcl2

from benchmarks.goals import goal
from devkit import overrides, toolchain
from devkit.stack import Stack
from emulator import Emulator

ROOT = toolchain.ROOT
VARIANTS = ("split", "inline")
INLINE_BLOCK = {
    "aws_s3_bucket_versioning": "versioning",
    "aws_s3_bucket_server_side_encryption_configuration": "server_side_encryption_configuration",
    "aws_s3_bucket_lifecycle_configuration": "lifecycle_rule",
}
"""Each split resource type and the inline block of ``aws_s3_bucket`` it replaced."""
SPLIT_RESOURCE = re.compile(r'^resource\s+"(' + "|".join(INLINE_BLOCK) + r')"\s+"([^"]+)"\s*\{', re.MULTILINE)
SPLIT_REFERENCE = re.compile(r"\b(?:" + "|".join(INLINE_BLOCK) + r")\.([A-Za-z0-9_-]+)\b")
BUCKET_REFERENCE = re.compile(r"^\$\{aws_s3_bucket\.([A-Za-z0-9_-]+)\.(?:id|bucket)\}$")
INSTANCE_KEY = re.compile(r"\[[^\]]*\]$")

Body = dict[str, Any]


class VariantError(ValueError):
    """The split resources cannot be turned into inline blocks with the same settings."""


# ------------------------------------------------------------------------------------ HCL text


def block_end(text: str, open_brace: int) -> int:
    """The index just after the ``}`` that closes the ``{`` at ``open_brace``; braces in strings,
    template interpolations and comments are told apart (heredocs are not: s3.tf has none)."""
    stack = ["{"]  # "{": a brace of code or an interpolation; '"': a quoted string
    i = open_brace + 1
    while stack:
        if i >= len(text):
            raise VariantError(f"no closing brace for the block opened at offset {open_brace}")
        if stack[-1] == '"':
            i = _string_step(text, i, stack)
            continue
        char = text[i]
        if char == "#" or text.startswith("//", i):
            newline = text.find("\n", i)
            i = len(text) if newline < 0 else newline
            continue
        if text.startswith("/*", i):
            i = text.index("*/", i) + 2
            continue
        if char in '"{':
            stack.append(char)
        elif char == "}":
            stack.pop()
        i += 1
    return i


def _string_step(text: str, i: int, stack: list[str]) -> int:
    if text[i] == "\\":
        return i + 2
    if text.startswith(("${", "%{"), i):
        stack.append("{")
        return i + 2
    if text[i] == '"':
        stack.pop()
    return i + 1


def resource_span(text: str, type_name: str, name: str) -> tuple[int, int]:
    """Where ``resource "type_name" "name" { ... }`` starts and ends in ``text``."""
    found = re.search(
        rf'^resource\s+"{re.escape(type_name)}"\s+"{re.escape(name)}"\s*\{{', text, re.MULTILINE
    )
    if found is None:
        raise VariantError(f"no resource {type_name}.{name}")
    return found.start(), block_end(text, found.end() - 1)


def render(value: object) -> str:
    """A value as python-hcl2 8 parsed it, written back: a string keeps its quotes, an expression
    is unwrapped from ``${...}``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(render(item) for item in value) + "]"
    text = str(value)
    if text.startswith("${") and text.endswith("}"):
        return text[2:-1]
    if text.startswith('"') and text.endswith('"'):
        return text
    raise VariantError(f"cannot write back the value {value!r}")


def fields(body: Body) -> Body:
    """A block's arguments and nested blocks, without python-hcl2's markers (``__is_block__``, comments)."""
    return {key: value for key, value in body.items() if not key.startswith("__")}


def _is_blocks(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)


def render_block(name: str, body: Body, indent: int) -> list[str]:
    pad = "  " * indent
    lines = [f"{pad}{name} {{"]
    for key, value in fields(body).items():
        if _is_blocks(value):
            for nested in value:
                lines += render_block(key, nested, indent + 1)
        else:
            lines.append(f"{pad}  {key} = {render(value)}")
    return [*lines, f"{pad}}}"]


# ------------------------------------------------------------------------ split -> inline blocks


def _only(body: Body, allowed: set[str], where: str) -> Body:
    found = fields(body)
    if unknown := sorted(set(found) - allowed):
        raise VariantError(f"{where}: no inline form here for {', '.join(unknown)}")
    return found


def _one(blocks: list[Body], where: str) -> Body:
    if len(blocks) != 1:
        raise VariantError(f"{where}: expected one block, found {len(blocks)}")
    return blocks[0]


def _enabled(status: object, where: str) -> bool:
    """A split resource's status string as the inline blocks' boolean."""
    states = {'"Enabled"': True, '"Disabled"': False, '"Suspended"': False}
    if status not in states:
        raise VariantError(f"{where}: status {status!r} is no literal Enabled/Disabled/Suspended")
    return states[str(status)]


def inline_versioning(resource: Body) -> list[Body]:
    config = _one(resource["versioning_configuration"], "versioning_configuration")
    status = _only(config, {"status"}, "versioning_configuration")["status"]
    return [{"enabled": _enabled(status, "versioning_configuration")}]


def inline_encryption(resource: Body) -> list[Body]:
    """The same ``rule`` blocks: the inline block has the split resource's shape."""
    for rule in resource["rule"]:
        found = _only(rule, {"apply_server_side_encryption_by_default", "bucket_key_enabled"}, "rule")
        for default in found.get("apply_server_side_encryption_by_default", []):
            _only(default, {"sse_algorithm", "kms_master_key_id"}, "apply_server_side_encryption_by_default")
    return [{"rule": resource["rule"]}]


def inline_lifecycle_rule(rule: Body) -> Body:
    known = {"id", "status", "filter", "expiration", "noncurrent_version_expiration"}
    found = _only(rule, {*known, "abort_incomplete_multipart_upload"}, "lifecycle rule")
    if any(fields(block) for block in found.get("filter", [])):
        raise VariantError("lifecycle rule: only an empty filter (every object) is translated")
    inline: Body = {"id": found["id"], "enabled": _enabled(found["status"], "lifecycle rule")}
    if "abort_incomplete_multipart_upload" in found:
        abort = _one(found["abort_incomplete_multipart_upload"], "abort_incomplete_multipart_upload")
        days = _only(abort, {"days_after_initiation"}, "abort_incomplete_multipart_upload")
        inline["abort_incomplete_multipart_upload_days"] = days["days_after_initiation"]
    if "expiration" in found:
        expiration = _one(found["expiration"], "expiration")
        inline["expiration"] = [
            _only(expiration, {"days", "date", "expired_object_delete_marker"}, "expiration")
        ]
    if "noncurrent_version_expiration" in found:
        noncurrent = _one(found["noncurrent_version_expiration"], "noncurrent_version_expiration")
        days = _only(noncurrent, {"noncurrent_days"}, "noncurrent_version_expiration")
        inline["noncurrent_version_expiration"] = [{"days": days["noncurrent_days"]}]
    return inline


def inline_lifecycle(resource: Body) -> list[Body]:
    return [inline_lifecycle_rule(rule) for rule in resource["rule"]]


TRANSLATIONS: dict[str, Callable[[Body], list[Body]]] = {
    "aws_s3_bucket_versioning": inline_versioning,
    "aws_s3_bucket_server_side_encryption_configuration": inline_encryption,
    "aws_s3_bucket_lifecycle_configuration": inline_lifecycle,
}
RESOURCE_ARGUMENTS = {
    "aws_s3_bucket_versioning": {"bucket", "versioning_configuration", "depends_on"},
    "aws_s3_bucket_server_side_encryption_configuration": {"bucket", "rule", "depends_on"},
    "aws_s3_bucket_lifecycle_configuration": {"bucket", "rule", "depends_on"},
}


def parsed_resources(text: str) -> dict[tuple[str, str], Body]:
    """Every resource of one ``.tf`` file by (type, name), as python-hcl2 8 parses it (labels unquoted)."""
    found: dict[tuple[str, str], Body] = {}
    for entry in hcl2.loads(text).get("resource", []):
        for type_name, named in entry.items():
            for name, body in named.items():
                found[(type_name.strip('"'), name.strip('"'))] = body
    return found


def target_bucket(type_name: str, name: str, resource: Body) -> str:
    """The ``aws_s3_bucket`` a split resource configures (its ``bucket`` must reference one here)."""
    where = f"{type_name}.{name}"
    found = _only(resource, RESOURCE_ARGUMENTS[type_name], where)
    bucket = BUCKET_REFERENCE.match(str(found["bucket"]))
    if bucket is None:
        raise VariantError(f"{where}: bucket {found['bucket']!r} is no aws_s3_bucket of this file")
    for dependency in found.get("depends_on", []):
        if SPLIT_REFERENCE.fullmatch(render(dependency)) is None:
            raise VariantError(f"{where}: depends on {render(dependency)}, which the bucket does not")
    return bucket.group(1)


def inline_blocks(text: str) -> dict[str, list[str]]:
    """For each bucket configured by split resources in ``text``: its inline blocks' lines."""
    resources = parsed_resources(text)
    blocks: dict[str, list[str]] = {}
    for match in SPLIT_RESOURCE.finditer(text):
        type_name, name = match.groups()
        resource = resources[(type_name, name)]
        bucket = target_bucket(type_name, name, resource)
        lines = blocks.setdefault(bucket, [])
        for body in TRANSLATIONS[type_name](resource):
            lines += ["", *render_block(INLINE_BLOCK[type_name], body, indent=1)]
    return blocks


def rewrite_references(text: str) -> str:
    """Each reference to a split resource becomes one to the bucket of the same name (the stack
    names them alike: ``aws_s3_bucket_versioning.uploads`` configures ``aws_s3_bucket.uploads``)."""
    return SPLIT_REFERENCE.sub(lambda found: f"aws_s3_bucket.{found.group(1)}", text)


def inline_variant(text: str) -> str:
    """``text`` (a ``.tf`` file, s3.tf) with its split S3 resources folded into their buckets as
    the deprecated inline blocks with the same settings; any other text is left as it is."""
    blocks = inline_blocks(text)
    spans = [resource_span(text, *match.groups()) for match in SPLIT_RESOURCE.finditer(text)]
    for start, end in reversed(spans):
        before, after = text[:start].rstrip("\n"), text[end:].lstrip("\n")
        text = f"{before}\n\n{after}" if after else f"{before}\n"
    for bucket, lines in blocks.items():
        _, end = resource_span(text, "aws_s3_bucket", bucket)
        closing = end - 1
        text = text[:closing].rstrip() + "\n" + "\n".join(lines) + "\n" + text[closing:]
    return rewrite_references(text)


def variant_files(texts: dict[str, str]) -> dict[str, str]:
    """The ``.tf`` files (name -> text) of the inline variant that differ from ``texts``."""
    changed = {}
    for name, text in texts.items():
        variant = inline_variant(text) if SPLIT_RESOURCE.search(text) else rewrite_references(text)
        if variant != text:
            changed[name] = variant
    return changed


def root_texts(root: Path = ROOT) -> dict[str, str]:
    return {
        path.name: path.read_text()
        for path in sorted(root.glob("*.tf"))
        if not path.name.endswith("_override.tf")
    }


def write_variant(where: Path, files: dict[str, str]) -> None:
    """Put ``files`` into a staged working directory as files of its own: each link to the root's file
    is removed first, so nothing is ever written through it into the repository."""
    for name, text in files.items():
        target = where / name
        target.unlink(missing_ok=True)
        target.write_text(text)


# ----------------------------------------------------------------------------- timeline and summary


def interleaved(runs: int) -> list[str]:
    """The order of the applies: split, inline, split, inline, ... (``runs`` of each)."""
    return [variant for _ in range(runs) for variant in VARIANTS]


def _epoch(timestamp: str) -> float:
    """Terraform's ``@timestamp`` (RFC 3339, microseconds) as epoch seconds."""
    return dt.datetime.fromisoformat(timestamp).timestamp()


def apply_timeline(stdout: str, started: float) -> list[dict[str, Any]]:
    """Each resource (and data source read) of a ``terraform apply -json``: when it started and
    ended, in seconds after ``started`` (epoch seconds, the command's start), by end."""
    begun: dict[str, float] = {}
    timeline = []
    for line in stdout.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        kind = message.get("type") if isinstance(message, dict) else None
        if kind not in ("apply_start", "apply_complete"):
            continue
        address = message["hook"]["resource"]["addr"]
        at = _epoch(message["@timestamp"]) - started
        if kind == "apply_start":
            begun[address] = at
        elif address in begun:
            start = begun.pop(address)
            timeline.append(
                {
                    "resource": address,
                    "action": message["hook"].get("action"),
                    "start": round(start, 1),
                    "end": round(at, 1),
                    "seconds": round(at - start, 1),
                }
            )
    return sorted(timeline, key=lambda entry: (entry["end"], entry["start"]))


def state_dependencies(state: dict[str, Any]) -> dict[str, set[str]]:
    """Each managed resource's dependencies as the state records them (transitive, data sources
    included), by address without instance key."""
    found: dict[str, set[str]] = {}
    for resource in state.get("resources", []):
        if resource.get("mode") == "managed":
            prefix = f"{resource['module']}." if "module" in resource else ""
            needs = found.setdefault(f"{prefix}{resource['type']}.{resource['name']}", set())
            for instance in resource.get("instances", []):
                needs.update(instance.get("dependencies", []))
    return found


def _finish(entry: dict[str, Any]) -> tuple[float, float]:
    """By end, and of two that ended together the one that started later (it waited for the other)."""
    return entry["end"], entry["start"]


def critical_path(timeline: list[dict[str, Any]], dependencies: dict[str, set[str]]) -> list[dict[str, Any]]:
    """The chain that ended the apply: the last resource to complete, then the one of its
    dependencies that completed last (what it waited for; the dependencies are transitive, so that
    is the one it started after), and so on back to a resource that waited for none. Data sources
    are left out: they are read in no measurable time and the state records no dependencies for them."""
    managed = [entry for entry in timeline if not entry["resource"].startswith("data.")]
    if not managed:
        return []
    chain = [max(managed, key=_finish)]
    while True:
        needs = dependencies.get(INSTANCE_KEY.sub("", chain[-1]["resource"]), set())
        before = [entry for entry in managed if INSTANCE_KEY.sub("", entry["resource"]) in needs]
        if not before:
            return chain[::-1]
        chain.append(max(before, key=_finish))


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median apply of each variant and their ratio, split over inline."""
    medians = {
        variant: round(statistics.median(r["apply_seconds"] for r in runs if r["variant"] == variant), 1)
        for variant in VARIANTS
    }
    return {
        "apply_seconds_split": medians["split"],
        "apply_seconds_inline": medians["inline"],
        "apply_split_over_inline": round(medians["split"] / medians["inline"], 3),
    }


# ------------------------------------------------------------------------------------ measurement


def stage(endpoint: str, provider: str, variant: str) -> Stack:
    """A fresh working directory of its own for one variant (build/tf/bench-apply-<variant>-<version>)."""
    stack = Stack.staged(endpoint, provider, name=f"bench-apply-{variant}")
    if variant == "inline":
        write_variant(stack.workspace.path, variant_files(root_texts()))
    return stack


def apply_once(provider: str, variant: str, variables: dict[str, object]) -> dict[str, Any]:
    """``terraform apply`` of one variant onto a fresh embedded emulator (init timed apart; no destroy:
    the emulator is thrown away)."""
    load = [round(x, 2) for x in os.getloadavg()]
    log = ROOT / "build" / f"bench-emulator-apply-{variant}.log"
    emulator = Emulator(port=0, log_path=log, async_retry_delays=(0.5, 0.5))
    emulator.start()
    stack = None
    try:
        stack = stage(emulator.endpoint_url, provider, variant)
        overrides.write(stack.workspace.path, emulator.endpoint_url, provider, variables)
        started = time.monotonic()
        stack.workspace.init()
        init_seconds = time.monotonic() - started
        began, started = time.time(), time.monotonic()
        applied = stack.workspace.run("apply", "-auto-approve", "-input=false", "-json", timeout=900)
        seconds = time.monotonic() - started
    finally:
        if stack is not None:
            stack.remove_overrides()
        emulator.stop()
    timeline = apply_timeline(applied.stdout, began)
    dependencies = state_dependencies(json.loads((stack.workspace.path / "terraform.tfstate").read_text()))
    return {
        "variant": variant,
        "apply_seconds": round(seconds, 1),
        "init_seconds": round(init_seconds, 1),
        "load_average_at_start": load,
        "critical_path": critical_path(timeline, dependencies),
        "slowest": sorted(timeline, key=lambda entry: -entry["seconds"])[:5],
        "timeline": timeline,
    }


def measure(provider: str, runs: int, variables: dict[str, object]) -> dict[str, Any]:
    """``runs`` applies of each variant, interleaved; the medians and their ratio."""
    results = []
    for number, variant in enumerate(interleaved(runs), start=1):
        results.append(apply_once(provider, variant, variables))
        print(
            f"split-apply {number}/{2 * runs}: {variant} {results[-1]['apply_seconds']} s",
            file=sys.stderr,
            flush=True,
        )
    return {"provider": provider, "runs_per_variant": runs, **summarise(results), "runs": results}


def figures(provider: str, runs: int, variables: dict[str, object]) -> dict[str, Any]:
    """The system benchmark's figures: the medians, their ratio with its goal, the details."""
    measured = measure(provider, runs, variables)
    ratio = measured["apply_split_over_inline"]
    return {
        "apply_seconds_split": measured["apply_seconds_split"],
        "apply_seconds_inline": measured["apply_seconds_inline"],
        "apply_split_over_inline": ratio,
        "goals": {"apply_split_over_inline": goal("apply_split_over_inline", ratio)},
        "split_apply": measured,
    }


def _chain(run: dict[str, Any]) -> str:
    steps = [f"{step['resource']} {step['start']:g}-{step['end']:g} s" for step in run["critical_path"]]
    return " > ".join(steps) or "no timeline"


def lines(figures: dict[str, Any], goal: str) -> list[str]:
    """The table's lines for one measurement (``goal``: how the ratio fared against its goal)."""
    runs = figures["runs"]
    result = [
        f"  terraform apply, split S3 resources vs inline blocks (hashicorp/aws"
        f" {toolchain.provider_label(figures['provider'])}, {figures['runs_per_variant']} of each, interleaved)",
    ]
    for variant in VARIANTS:
        seconds = " / ".join(f"{r['apply_seconds']:g}" for r in runs if r["variant"] == variant)
        result.append(f"    {variant:<7} {seconds} s, median {figures[f'apply_seconds_{variant}']:g} s")
    result.append(f"    apply_split_over_inline {figures['apply_split_over_inline']:.3f}  ({goal})")
    for variant in VARIANTS:
        last = [r for r in runs if r["variant"] == variant][-1]
        result.append(f"    ended by ({variant}, last run): {_chain(last)}")
    return result
