"""The IAM policies docs/cloud-storage.md documents, read from the document itself so that
the tests check what users copy."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CLOUD_DOC = ROOT / "docs" / "cloud-storage.md"
# each policy is labelled with an HTML comment right before its block
LABELLED_POLICY = re.compile(r"<!-- policy: ([\w-]+) -->\s*```json\n(.*?)```", re.DOTALL)
# the names the documented policies use
DOC_BUCKET = "acme-backups"
DOC_PREFIX = "wms"


def documented_policies() -> dict[str, dict[str, Any]]:
    text = CLOUD_DOC.read_text(encoding="utf-8")
    policies: dict[str, dict[str, Any]] = {}
    for name, body in LABELLED_POLICY.findall(text):
        assert name not in policies, f"{name} is documented twice"
        policies[name] = json.loads(body)
    return policies


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    found = policy["Statement"]
    return [found] if isinstance(found, dict) else list(found)
