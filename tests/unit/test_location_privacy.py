"""Privacy of location (issue 19, docs/privacy.md "Positions are taken only when the rep
asks"): the PWA never watches the position, and takes one only on the screens where the
rep asks for it. A new place that takes a position is added here and to docs/privacy.md."""

from __future__ import annotations

from pathlib import Path

PWA_JS = Path(__file__).resolve().parents[2] / "pwa" / "js"
# Each place and what the rep does there (docs/privacy.md says what is kept of it).
TAKES_A_POSITION = {
    "screens/visit.js": "a check-in, 'Log a visit'",
    "screens/accounts.js": "a prospect captured where the rep stands",
    "screens/nearby.js": "the Nearby screen opened, or 'Update my position'",
    "screens/route-plan.js": "'Order my stops' (worked out on the phone, not sent)",
}


def _scripts() -> dict[str, str]:
    return {
        path.relative_to(PWA_JS).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(PWA_JS.rglob("*.js"))
    }


def test_the_pwa_never_watches_the_position() -> None:
    scripts = _scripts()
    assert scripts, PWA_JS
    assert [name for name, text in scripts.items() if "watchPosition" in text] == []


def test_a_position_is_taken_only_where_the_rep_asks_for_one() -> None:
    taking = {name for name, text in _scripts().items() if "getCurrentPosition" in text}
    assert taking == set(TAKES_A_POSITION), taking
    privacy = (PWA_JS.parents[1] / "docs" / "privacy.md").read_text(encoding="utf-8")
    for words in ("check-in", "captures a prospect", "Nearby", "Order my stops", "watchPosition"):
        assert words in privacy, words
