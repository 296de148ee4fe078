"""Names the template and the code must agree on, derived from the code at test time: the Event
Grid trigger the subscription targets, the rollout queue, the history tables."""

from __future__ import annotations

import ast
import importlib
import sys
from unittest.mock import MagicMock

import pytest

from infra_model import INFRA, REPO_ROOT, parse, variable


@pytest.fixture(scope="module")
def code():
    sys.path.insert(0, str(REPO_ROOT))
    try:
        yield lambda name: importlib.import_module(name)
    finally:
        sys.path.remove(str(REPO_ROOT))


def _event_grid_functions() -> set[str]:
    """Names of the functions in function_app.py that carry an Event Grid trigger."""
    tree = ast.parse((REPO_ROOT / "function_app.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        decorators = [d for d in node.decorator_list if isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute)]
        if not any(d.func.attr == "event_grid_trigger" for d in decorators):
            continue
        named = [d.args[0].value for d in decorators if d.func.attr == "function_name" and d.args]
        names.add(named[0] if named else node.name)
    return names


def test_event_subscription_targets_the_event_grid_trigger(main_bicep):
    target = variable(main_bicep, "functionName")
    assert _event_grid_functions() == {target}
    assert parse(INFRA / "app" / "event-subscription.bicep")["parameters"]["functionName"]["default"] == target


def _bound_queue_name(code) -> str:
    """The queue_name the queue trigger in function_app.py is bound to, followed from the decorator
    through a module-level alias and an imported module's attribute to its value."""
    tree = ast.parse((REPO_ROOT / "function_app.py").read_text())
    calls = [d for node in tree.body if isinstance(node, ast.FunctionDef) for d in node.decorator_list
             if isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr == "queue_trigger"]
    assert len(calls) == 1, "function_app.py has one queue trigger"
    expr = next(k.value for k in calls[0].keywords if k.arg == "queue_name")
    aliases = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
               if isinstance(t, ast.Name)}
    if isinstance(expr, ast.Name) and expr.id in aliases:
        expr = aliases[expr.id]
    if isinstance(expr, ast.Constant):
        return expr.value
    modules = {a.asname or a.name: f"{n.module}.{a.name}" for n in tree.body
               if isinstance(n, ast.ImportFrom) for a in n.names}
    assert isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name), ast.dump(expr)
    return getattr(code(modules[expr.value.id]), expr.attr)


def test_rollout_queue_and_its_poison_queue(main_bicep, code):
    queue = _bound_queue_name(code)
    assert code("shared.adapters.queues").ROLLOUT_QUEUE == queue  # the adapter sends where the trigger reads
    assert variable(main_bicep, "rolloutQueueName") == queue
    assert variable(main_bicep, "queueNames") == ["rolloutQueueName", "${rolloutQueueName}-poison"]


def test_history_tables_are_the_ones_the_code_opens(main_bicep, code):
    store = code("shared.adapters.tables").TableStore(MagicMock(), table_prefix="PREFIX")
    suffixes = {store.table_name.removeprefix("PREFIX")}
    assert set(variable(main_bicep, "historyTableSuffixes")) == suffixes
    names = variable(main_bicep, "historyTableNames")
    assert names["loop_type"]["detail"] == {"item_name": "suffix", "array_name": "historyTableSuffixes"}
    assert names["config"] == "${tablePrefix}${suffix}"
