"""Lambda API additions and fixes for the hashicorp/aws provider (5.x) on moto 5.2.5.

moto's Lambda API is REST-JSON: a request is routed by the URL patterns of ``moto.awslambda.urls``
and the action is found by matching method + URI against botocore's service model; the action's
snake-case name must then be a method of ``LambdaResponse``. Added here (URL pattern + method):

* ``GetRuntimeManagementConfig`` / ``PutRuntimeManagementConfig``
  (``/2021-07-20/functions/{name}/runtime-management-config``);
* ``GetFunctionRecursionConfig`` / ``PutFunctionRecursionConfig``
  (``/2024-08-31/functions/{name}/recursion-config``);
* ``PutFunctionCodeSigningConfig`` / ``DeleteFunctionCodeSigningConfig`` (the GET exists in moto);
* ``GetProvisionedConcurrencyConfig`` (always ``ProvisionedConcurrencyConfigNotFoundException``) and
  ``ListProvisionedConcurrencyConfigs`` (empty), ``GetAccountSettings``.

Model fixes: ``DeadLetterConfig``, ``LoggingConfig``, ``KMSKeyArn``, ``TracingConfig`` and
``EphemeralStorage`` are stored on create/update and returned by ``GetFunction`` (moto drops the
first two and ignores updates of the others, which shows up as a perpetual Terraform diff).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from moto.awslambda.models import LambdaFunction
from moto.awslambda.responses import LambdaResponse
from moto.core.responses import TYPE_RESPONSE

from emulator.patch import Patch

_FN = r"(?P<function_name>[\w_:%-]+)"
_EXTRA_PATHS = {
    r"{0}/(?P<api_version>[^/]+)/functions/"
    + _FN
    + r"/runtime-management-config/?$": LambdaResponse.dispatch,
    r"{0}/(?P<api_version>[^/]+)/functions/" + _FN + r"/recursion-config/?$": LambdaResponse.dispatch,
    r"{0}/(?P<api_version>[^/]+)/functions/" + _FN + r"/provisioned-concurrency/?$": LambdaResponse.dispatch,
    r"{0}/(?P<api_version>[^/]+)/account-settings/?$": LambdaResponse.dispatch,
}


def _function_name(response: LambdaResponse) -> str:
    # /<api-version>/functions/<name>/<sub-resource>
    parts = response.path.split("?")[0].rstrip("/").split("/")
    return unquote(parts[3])


def _json(status: int, body: dict[str, Any]) -> TYPE_RESPONSE:
    return status, {"status": status, "content-type": "application/json"}, json.dumps(body)


def _fn(response: LambdaResponse) -> LambdaFunction:
    qualifier = response.querystring.get("Qualifier", [None])[0]
    return response.backend.get_function(_function_name(response), qualifier)


# ---------------------------------------------------------------------------- new actions


def get_runtime_management_config(self: LambdaResponse) -> TYPE_RESPONSE:
    fn = _fn(self)
    config = getattr(fn, "_emulator_runtime_management", None) or {"UpdateRuntimeOn": "Auto"}
    body = {"FunctionArn": fn.function_arn, **config}
    return _json(200, body)


def put_runtime_management_config(self: LambdaResponse) -> TYPE_RESPONSE:
    fn = _fn(self)
    request = json.loads(self.body or "{}")
    config = {"UpdateRuntimeOn": request.get("UpdateRuntimeOn", "Auto")}
    if request.get("RuntimeVersionArn"):
        config["RuntimeVersionArn"] = request["RuntimeVersionArn"]
    fn._emulator_runtime_management = config  # type: ignore[attr-defined]
    return _json(200, {"FunctionArn": fn.function_arn, **config})


def get_function_recursion_config(self: LambdaResponse) -> TYPE_RESPONSE:
    fn = _fn(self)
    return _json(200, {"RecursiveLoop": getattr(fn, "_emulator_recursive_loop", "Terminate")})


def put_function_recursion_config(self: LambdaResponse) -> TYPE_RESPONSE:
    fn = _fn(self)
    request = json.loads(self.body or "{}")
    fn._emulator_recursive_loop = request.get("RecursiveLoop", "Terminate")  # type: ignore[attr-defined]
    return _json(200, {"RecursiveLoop": fn._emulator_recursive_loop})  # type: ignore[attr-defined]


def put_function_code_signing_config(self: LambdaResponse) -> TYPE_RESPONSE:
    fn = _fn(self)
    request = json.loads(self.body or "{}")
    fn.code_signing_config_arn = request.get("CodeSigningConfigArn")
    return _json(200, {"CodeSigningConfigArn": fn.code_signing_config_arn, "FunctionName": fn.function_name})


def delete_function_code_signing_config(self: LambdaResponse) -> TYPE_RESPONSE:
    fn = _fn(self)
    fn.code_signing_config_arn = None
    return 204, {"status": 204}, ""


def get_provisioned_concurrency_config(self: LambdaResponse) -> TYPE_RESPONSE:
    fn = self.backend.get_function(_function_name(self))  # the qualifier names the (absent) config
    return (
        404,
        {"status": 404, "x-amzn-errortype": "ProvisionedConcurrencyConfigNotFoundException"},
        json.dumps(
            {
                "Type": "User",
                "message": f"No Provisioned Concurrency Config found for function: {fn.function_arn}",
            }
        ),
    )


def list_provisioned_concurrency_configs(self: LambdaResponse) -> TYPE_RESPONSE:
    self.backend.get_function(_function_name(self))
    return _json(200, {"ProvisionedConcurrencyConfigs": []})


def get_account_settings(self: LambdaResponse) -> TYPE_RESPONSE:
    functions = list(self.backend.list_functions())
    return _json(
        200,
        {
            "AccountLimit": {
                "TotalCodeSize": 80530636800,
                "CodeSizeUnzipped": 262144000,
                "CodeSizeZipped": 52428800,
                "ConcurrentExecutions": 1000,
                "UnreservedConcurrentExecutions": 1000,
            },
            "AccountUsage": {
                "TotalCodeSize": sum(int(fn.code_size or 0) for fn in functions),
                "FunctionCount": len(functions),
            },
        },
    )


# ---------------------------------------------------------------------------- model fixes


def _init(original: Any) -> Any:
    def init(
        self: LambdaFunction, account_id: str, spec: dict[str, Any], region: str, version: Any = 1
    ) -> None:
        original(self, account_id, spec, region, version)
        self._emulator_dead_letter = spec.get("DeadLetterConfig") or None  # type: ignore[attr-defined]
        self._emulator_logging = spec.get("LoggingConfig") or None  # type: ignore[attr-defined]

    return init


def logging_config(fn: LambdaFunction) -> dict[str, Any]:
    """The function's effective LoggingConfig (AWS defaults: Text to ``/aws/lambda/<name>``)."""
    config = {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{fn.function_name}"}
    config.update(getattr(fn, "_emulator_logging", None) or {})
    return config


def dead_letter_target(fn: LambdaFunction) -> str | None:
    config = getattr(fn, "_emulator_dead_letter", None) or {}
    return config.get("TargetArn") or None


def _get_configuration(original: Any) -> Any:
    def get_configuration(self: LambdaFunction, on_create: bool = False) -> dict[str, Any]:
        config = original(self, on_create)
        target = dead_letter_target(self)
        if target:
            config["DeadLetterConfig"] = {"TargetArn": target}
        config["LoggingConfig"] = logging_config(self)
        return config

    return get_configuration


def _update_configuration(original: Any) -> Any:
    def update_configuration(self: LambdaFunction, config_updates: dict[str, Any]) -> dict[str, Any]:
        for key, value in config_updates.items():
            if key == "DeadLetterConfig":
                self._emulator_dead_letter = value or None  # type: ignore[attr-defined]
            elif key == "LoggingConfig":
                self._emulator_logging = value or None  # type: ignore[attr-defined]
            elif key == "KMSKeyArn":
                self.kms_key_arn = value or None
            elif key == "TracingConfig":
                self.tracing_config = value or {"Mode": "PassThrough"}
            elif key == "EphemeralStorage" and value:
                self.ephemeral_storage = value["Size"]
        return original(self, config_updates)

    return update_configuration


def _added(func: Any) -> Any:
    return lambda _none: func


_MISSING_ACTION = "moto 5.2.5 has no handler for this Lambda API action, which hashicorp/aws calls"

PATCHES = [
    Patch(
        "moto.awslambda.urls.url_paths",
        "moto routes no URL for runtime-management-config, recursion-config, provisioned-concurrency"
        " and account-settings, which the provider reads",
        lambda _paths: dict(_EXTRA_PATHS),
        kind="entries",
    ),
    *(
        Patch(
            f"moto.awslambda.responses.LambdaResponse.{func.__name__}", _MISSING_ACTION, _added(func), "add"
        )
        for func in (
            get_runtime_management_config,
            put_runtime_management_config,
            get_function_recursion_config,
            put_function_recursion_config,
            put_function_code_signing_config,
            delete_function_code_signing_config,
            get_provisioned_concurrency_config,
            list_provisioned_concurrency_configs,
            get_account_settings,
        )
    ),
    Patch(
        "moto.awslambda.models.LambdaFunction.__init__",
        "moto drops DeadLetterConfig and LoggingConfig on create (a perpetual Terraform diff)",
        _init,
    ),
    Patch(
        "moto.awslambda.models.LambdaFunction.get_configuration",
        "moto does not return DeadLetterConfig and LoggingConfig in GetFunction(Configuration)",
        _get_configuration,
    ),
    Patch(
        "moto.awslambda.models.LambdaFunction.update_configuration",
        "moto ignores updates of DeadLetterConfig, LoggingConfig, KMSKeyArn, TracingConfig and"
        " EphemeralStorage",
        _update_configuration,
    ),
]
