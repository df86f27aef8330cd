"""The console in a real browser: Debian's Chromium, driven by playwright-core, against the real
app (plus the third-party example plugin hello) with the demo data, on 127.0.0.1.

The scenarios are frontend/e2e/*.test.mjs: sign-in, the sections of the enabled plugins in
English and Russian under the strict CSP, a deal moved in one browser seen moving in another
through SSE, a third-party plugin's generic view (list, create with a 422 on its field, a 412
on a stale edit), an agent's board holding only their deals, a client's timeline and a clients
CSV export and import with a bad row, one scenario per later plugin's section (payments,
documents, notifications), four tabs of one browser sharing one tab's streams (REST still
answers in each, events reach each, a hand-over when the leading tab closes), the empty and
error states (a record's screen without its id, the sections unreadable for a moment), and
axe-core on every screen."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from console_e2e import CHROMIUM, FRONTEND, browser_missing, crm2, running_server

SECRET = "console-e2e-secret-0123456789abcdef"


@pytest.fixture
def server_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM2_")}
    env |= {
        "CRM2_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'console.db'}",
        "CRM2_AUTH_JWT_SECRET": SECRET,
        # the clients import scenario's 3-row file then runs as a background job (202)
        "CRM2_DEALS_IMPORT_BACKGROUND_ROWS": "2",
        # uploaded documents go to the test's folder, not ./var of the checkout
        "CRM2_DOCUMENTS_LOCAL_ROOT": str(tmp_path / "documents"),
        # backup sets and their key too
        "CRM2_BACKUP_DIR": str(tmp_path / "backups"),
        "CRM2_BACKUP_KEY_FILE": str(tmp_path / "backup.key"),
        # a resume more than 40 events back gets a reset (console.test.mjs makes one)
        "CRM2_SSE_MAX_REPLAY_EVENTS": "40",
    }
    crm2(env, "migrate")
    crm2(env, "seed", "demo")
    return env


@pytest.mark.slow
def test_console_in_chromium(server_env: dict[str, str], tmp_path: Path) -> None:
    reason = browser_missing()
    if reason:
        pytest.skip(f"browser tests skipped: {reason}")
    email, password = "e2e.manager@example.com", "e2e-manager-password"
    agent, agent_password = "e2e.agent@example.com", "e2e-agent-password"
    crm2(server_env, "users", "create", "--email", email, "--password", password,
         "--role", "manager", "--name", "Maria Manager")  # fmt: skip
    crm2(server_env, "users", "create", "--email", agent, "--password", agent_password,
         "--role", "agent", "--name", "Anton Agent")  # fmt: skip
    admin, admin_password = "e2e.admin@example.com", "e2e-admin-password"
    crm2(server_env, "users", "create", "--email", admin, "--password", admin_password,
         "--role", "admin", "--name", "Ada Admin")  # fmt: skip
    shots = Path(os.environ.get("CRM2_E2E_SHOTS", FRONTEND / ".e2e-artifacts"))
    with running_server(server_env, tmp_path / "serve.log") as base:
        env = {
            **os.environ,
            "CRM2_E2E_BASE_URL": base,
            "CRM2_E2E_EMAIL": email,
            "CRM2_E2E_PASSWORD": password,
            "CRM2_E2E_AGENT_EMAIL": agent,
            "CRM2_E2E_AGENT_PASSWORD": agent_password,
            "CRM2_E2E_ADMIN_EMAIL": admin,
            "CRM2_E2E_ADMIN_PASSWORD": admin_password,
            "CRM2_E2E_CHROMIUM": str(CHROMIUM),
            "CRM2_E2E_SHOTS": str(shots),
        }
        done = subprocess.run(
            ["node", "--test", "--test-reporter=spec", "--test-concurrency=1", "e2e/"],
            cwd=FRONTEND,
            env=env,
            capture_output=True,
            text=True,
            timeout=420,  # a guard against a hang: ~200 s at a load average of 28 on 2 cores
        )
    print(done.stdout)
    assert done.returncode == 0, f"browser tests failed:\n{done.stdout}\n{done.stderr}"
    passed = re.search(r"\bpass (\d+)", done.stdout)
    # every scenario written runs: a file that silently stopped loading would lower the count
    written = _scenarios_written()
    assert passed and int(passed.group(1)) == written, (
        f"{written} scenarios are written but not every one ran:\n{done.stdout}"
    )
    assert re.search(r"\bfail 0\b", done.stdout) and not re.search(r"\bskipped [1-9]", done.stdout)


def _scenarios_written() -> int:
    """The ``test(...)`` calls at the start of a line in the e2e scenario files."""
    calls = re.compile(r"^\s*test\(", re.M)
    return sum(len(calls.findall(f.read_text())) for f in (FRONTEND / "e2e").glob("*.test.mjs"))
