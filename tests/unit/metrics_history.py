"""A short repository history (tests/history.py: backups of both types, WAL, verifications,
drills, a copy target) and a configuration naming it, for the tests of the metrics; and the
metrics read back in the exposition format."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.history import History, HistoryPlan, config_text, write_history
from tests.unit.helpers import new_age_key

PLAN = HistoryPlan(days=45, drills=3, holds=0, realistic_sizes=False)


def metrics_history(folder: Path, metrics_table: str = "") -> tuple[History, Path]:
    """The history's repositories under folder, and folder/lifeboat.toml naming them, with
    metrics_table (TOML lines of [metrics]) appended."""
    history = write_history(folder / "repositories", PLAN)
    key = new_age_key(folder)
    config = folder / "lifeboat.toml"
    text = config_text(history, key.identity_file, key.public)
    config.write_text(text + '\n[logging]\nformat = "plain"\n' + metrics_table)
    return history, config


Samples = dict[str, dict[frozenset[tuple[str, str]], float]]


def samples(text: str) -> Samples:
    """name -> labels -> value of every sample of the exposition text."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    """The one sample of name with exactly these labels."""
    return found[name][frozenset(labels.items())]
