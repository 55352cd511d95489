"""What the static routes serve (server/pwa.py): plain names of the app's files, nothing a
developer keeps beside them; and a path that cannot name a file is a missing file."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.pwa import AppFiles, is_app_file

SERVED = [
    "js/app.js",
    "js/screens/account.js",
    "css/app.css",
    "icons/icon-maskable-512.png",
    "vendor/leaflet/images/layers-2x.png",
    "vendor/leaflet/leaflet.js.map",
]
REFUSED = [
    "js/../server/app.py", "js/./app.js", "js/.hidden", "js//app.js", "js/app.js/", "js/a\\b.js",
    "js/a\x00b.js", "js/a\r\nb.js", "js/app.js\x1b[31m", "js/\u00e9.js", "js/a b.js", "js/%2e%2e",
    "icons/make_icons.py", "tools/stamp_sw.py", "js/__pycache__/app.cpython-311.pyc",
    "js/README.md", "js/" + "a" * 300, "js/" + "a/" * 200 + "a.js", "",
]  # fmt: skip


@pytest.mark.parametrize("path", SERVED)
def test_the_apps_files_pass(path: str) -> None:
    assert is_app_file(path)


@pytest.mark.parametrize("path", REFUSED, ids=repr)
def test_odd_paths_and_developer_files_are_refused(path: str) -> None:
    assert not is_app_file(path)


@pytest.mark.parametrize(
    "name", ["missing.js", "app.js/inside", "a\x00b", "a" * 5000, "/".join(["a"] * 3000)]
)
async def test_a_path_that_names_no_file_is_a_missing_file(tmp_path: Path, name: str) -> None:
    (tmp_path / "app.js").write_text("export {};\n")
    files = AppFiles()
    assert (await files.info(str(tmp_path / "app.js")))["type"] == "file"
    with pytest.raises(FileNotFoundError):
        await files.info(str(tmp_path / name))
