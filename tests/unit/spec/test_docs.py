"""The README's table of fields is the spec's: a change to one without the other fails here."""

from __future__ import annotations

import re

import pytest

from heartml.spec import load_spec
from heartml.spec.docs import features_table, fields_table
from oracles import HEART_SPEC_FILE, REPO_ROOT

pytestmark = pytest.mark.task1


def test_the_readme_tables_are_the_specs() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(
        r"<!-- fields:uci_heart[^>]*-->\n(.*?)<!-- /fields:uci_heart -->", readme, re.S
    )
    assert found, "the README has no generated fields table"
    spec = load_spec(HEART_SPEC_FILE)
    assert found.group(1) == fields_table(spec) + "\n" + features_table(spec)
    # And the table says what the policy says: the three required fields, the rest unknown.
    required = re.findall(r"^\| `(\w+)` .*\| no \(required\) \|$", found.group(1), re.M)
    assert required == ["age", "sex", "cp"]
