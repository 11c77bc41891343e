"""Security Monitor Lambda: daily check that every S3 bucket and DynamoDB table is encrypted with KMS.

parse -> validate -> act -> report, one layer each under ``security_monitor/``:
the configuration (alert topic, regions, declared exemptions, exemption tag, concurrency) is read
once at load (:mod:`security_monitor.config`); every bucket of the account and every table of each
configured region is classified COMPLIANT / NON_COMPLIANT / EXEMPTED / ERROR
(:mod:`security_monitor.classify`) by a bounded pool of threads (:mod:`security_monitor.scan`; an
error on one resource never stops the scan; throttled calls are retried with backoff,
:mod:`security_monitor.access`); each finding is logged as one JSON line; the returned report holds
counts and the findings that need attention, never the compliant ones; one SNS summary is sent
whenever there is any finding, exempted ones included (:mod:`security_monitor.report`).

Exemptions are declared in Terraform (``security_scan_exemptions``, passed as the JSON object
``SECURITY_SCAN_EXEMPTIONS``: bucket or table name -> reason), where changing them takes a reviewed
apply. A resource's tags exempt nothing: anyone allowed to tag a bucket or table could otherwise
silence the monitor. The exemption tag (``EXEMPTION_TAG_KEY``) is still read on non-compliant
resources that are not declared, so that such a finding says the tag is there and not declared.

This module is the handler: the logger, the metrics, the configuration and the clients are created
once per container, and ``lambda_handler`` walks the layers with them.
"""

from __future__ import annotations

import functools
import os
from typing import Final

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from security_monitor.access import RegionClients, RetryPolicy, ScanClients, create_clients
from security_monitor.config import MonitorConfig, parse_scan_exemptions
from security_monitor.report import ScanReport, build_report, log_finding, publish_alert, record_metrics
from security_monitor.scan import scan

__all__ = [  # the handler, and what the benchmarks drive a scan with
    "CLIENTS",
    "CONFIG",
    "RETRY",
    "RegionClients",
    "RetryPolicy",
    "ScanClients",
    "lambda_handler",
    "logger",
    "metrics",
    "parse_scan_exemptions",
    "run_scan",
]

logger = Logger()
metrics = Metrics()


def run_scan(clients: ScanClients, config: MonitorConfig, retry: RetryPolicy) -> ScanReport:
    """Scan (logging each finding as it comes), then report: one alert whenever anything was found."""
    tally = scan(clients, config, retry, on_finding=functools.partial(log_finding, logger))
    unused = tally.unused_exemptions(config.exemptions)
    if unused:
        logger.warning(
            "Declared exemptions matched no non-compliant resource (compliant, errored or absent)",
            extra={"unused_exemptions": unused},
        )
    report = build_report(tally)
    if tally.needs_alert:
        publish_alert(logger, clients.sns, config.alert_topic_arn, tally, config.scan_regions)
        report["alert_sent"] = True
    record_metrics(metrics, report["counts"])
    return report


CONFIG: Final = MonitorConfig.from_env(os.environ)
CLIENTS: Final = create_clients(CONFIG.scan_regions, CONFIG.scan_concurrency)
RETRY = RetryPolicy()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> ScanReport:
    report = run_scan(CLIENTS, CONFIG, RETRY)
    logger.info("Scan complete", extra={"counts": report["counts"], "alert_sent": report["alert_sent"]})
    return report
