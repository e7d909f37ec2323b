"""deploy/: the recording and alert rules pass promtool (syntax and their unit tests,
deploy/prometheus/tests*.yml), and the dashboard reads only metrics we serve or record."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from metrics.business import BusinessMetrics
from metrics.edge import ApiMetrics
from metrics.state import DatabaseState

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
RULE_FILES = [PROMETHEUS / "rules.yml", PROMETHEUS / "alerts.yml"]
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "paysaga.json"
# A metric name in PromQL: ours (paysaga_...) or a recorded one (level:metric:operations).
NAME = re.compile(r"(?<![\w:])(paysaga_\w+|[a-zA-Z_]\w*:\w+:\w+)")


def promtool(*arguments: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: `make prometheus` installs Debian's prometheus package"
    return subprocess.run(
        [binary, *arguments], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
    )


def test_the_rules_are_valid_prometheus_rules() -> None:
    checked = promtool("check", "rules", *(str(f) for f in RULE_FILES))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_alerts_fire_on_their_stories_and_only_on_them() -> None:
    tested = promtool("test", "rules", "tests.yml", "tests_daily.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def served_names() -> set[str]:
    """Every sample name the API's and the worker's registries can serve (a labelled
    family has no samples before its first event, so names come from the families; the
    database gauges as `describe` names them, without a database)."""
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
    families = [
        *ApiMetrics().registry.collect(),
        *BusinessMetrics().registry.collect(),
        *DatabaseState(_no_database, timedelta(0), 0).describe(),
    ]
    return {
        family.name + suffix for family in families for suffix in suffixes.get(family.type, [""])
    }


def rules() -> Iterator[dict[str, Any]]:
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            yield from group["rules"]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_the_dashboard_reads_only_metrics_that_exist() -> None:
    known = served_names() | {rule["record"] for rule in rules() if "record" in rule}
    expressions = dashboard_expressions()
    assert len(expressions) >= 12
    used = {name for expr in expressions for name in NAME.findall(expr)}
    assert used - known == set(), f"the dashboard reads metrics nobody serves: {used - known}"
    titles = {panel["title"] for panel in json.loads(DASHBOARD.read_text())["panels"]}
    for subject in ("per minute", "success ratio", "latency", "Money in", "Money out", "Review"):
        assert any(subject in title for title in titles), subject
    assert any("webhook backlog" in title for title in titles)


def test_the_rules_read_only_metrics_that_exist() -> None:
    known = served_names() | {rule["record"] for rule in rules() if "record" in rule}
    used = {name for rule in rules() for name in NAME.findall(rule["expr"])}
    assert used - known == set(), f"the rules read metrics nobody serves: {used - known}"


def test_the_dashboard_is_provisioned_from_prometheus() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    provider = yaml.safe_load((provisioning / "dashboards" / "paysaga.yml").read_text())
    assert provider["providers"][0]["type"] == "file"
    source = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    uid = source["datasources"][0]["uid"]
    dashboard = json.loads(DASHBOARD.read_text())
    assert {panel["datasource"]["uid"] for panel in dashboard["panels"]} == {uid}


def _no_database() -> Any:
    raise AssertionError("describe() must not read the database")


def test_both_prometheus_configs_load_with_the_rules() -> None:
    """`make run`'s (deploy/prometheus/prometheus.yml) and docker-compose.yml's (compose.yml)."""
    for config in ("prometheus.yml", "compose.yml"):
        checked = promtool("check", "config", config)
        assert checked.returncode == 0, checked.stdout + checked.stderr
