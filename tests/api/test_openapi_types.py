"""The JS client's REST types (`frontend/client/types/api.d.ts`) are generated from the API's own
OpenAPI description, as a live API serves it: an API change that leaves them stale fails here."""

import difflib
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.stack import Stack

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
COMMITTED = FRONTEND / "client" / "types" / "api.d.ts"


def generate(description: str) -> str:
    """`npm run api-types`, the generator `make types` runs, on `description`."""
    npm = shutil.which("npm")
    if npm is None or not (FRONTEND / "node_modules" / "openapi-typescript").is_dir():
        pytest.fail("the web app's packages are not installed: run `make web`")
    done = subprocess.run(
        [npm, "run", "--silent", "api-types"],
        cwd=FRONTEND,
        input=description,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_committed_client_types_are_generated_from_the_api_served(stack: Stack) -> None:
    response = stack.http.get("/openapi.json")
    assert response.status_code == 200, response.text
    generated = generate(response.text)
    committed = COMMITTED.read_text(encoding="utf-8")
    if generated != committed:
        diff = difflib.unified_diff(
            committed.splitlines(), generated.splitlines(), "committed", "generated", lineterm=""
        )
        shown = "\n".join(list(diff)[:60])
        pytest.fail(
            f"{COMMITTED.relative_to(FRONTEND.parent)} does not match the API's OpenAPI "
            f"description: run `make types`.\n{shown}"
        )
