"""axe-core in the e2e tests (docs/decisions/2026-12-06-axe-core.md): the engine comes from
the axe-playwright-python package, which ships axe.min.js; we run it ourselves so a test can
choose the rules and read the nodes. A screen fails on any serious or critical violation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from axe_playwright_python.base import AXE_SCRIPT
from playwright.async_api import Page

# WCAG 2.1 A and AA, and axe's best practices (landmarks, one h1, ...).
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
FAILING = ("serious", "critical")


async def axe(page: Page, rules: list[str] | None = None) -> list[dict[str, Any]]:
    """The violations axe finds on the page as it is now (all impacts)."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(AXE_SCRIPT)
    options: dict[str, Any] = {"resultTypes": ["violations"]}
    if rules:
        options["runOnly"] = {"type": "rule", "values": rules}
    else:
        options["runOnly"] = {"type": "tag", "values": TAGS}
    results = await page.evaluate("(options) => axe.run(document, options)", options)
    violations: list[dict[str, Any]] = results["violations"]
    return violations


def describe(violations: list[dict[str, Any]]) -> list[str]:
    return [
        f"{v['impact']} {v['id']} ({v['help']}): "
        + "; ".join(" ".join(map(str, n["target"])) for n in v["nodes"][:5])
        for v in violations
    ]


async def check_axe(page: Page, name: str, artifacts: Path, rules: list[str] | None = None) -> None:
    """Fails on serious or critical violations; every violation goes to
    test-artifacts/axe-<name>.json for review."""
    violations = await axe(page, rules)
    (artifacts / f"axe-{name}.json").write_text(json.dumps(violations, indent=1))
    bad = [v for v in violations if v["impact"] in FAILING]
    assert not bad, f"{name}: axe-core finds {describe(bad)}"
