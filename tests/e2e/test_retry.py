"""A retried task in the browser: once a new attempt starts, the last attempt's error is gone from
its row, live and after a reload alike, because the page folds events by the same table as the
server (a `started` event clears `error`).
"""

import os
import re
import signal
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import Site
from tests.e2e.test_page import LONG, run

# What a row shows at one instant, read in one go so that no repaint falls in between.
SHOWN = """(li) => {
  const outcome = li.querySelector(".task__outcome");
  return {
    state: li.dataset.state,
    meta: li.querySelector(".task__meta").textContent,
    outcome: outcome.hidden ? "" : outcome.textContent,
  };
}"""

# Every paint of every row, in order: a MutationObserver's callback runs once the frame's DOM
# changes are done, so each record is a whole row as one frame left it.
RECORD_PAINTS = """() => {
  const paints = (window.__paints = []);
  const read = (li) => {
    const outcome = li.querySelector(".task__outcome");
    return {
      id: li.dataset.id,
      state: li.dataset.state,
      meta: li.querySelector(".task__meta").textContent,
      outcome: outcome.hidden ? "" : outcome.textContent,
    };
  };
  const last = new Map();
  new MutationObserver(() => {
    for (const li of document.querySelectorAll("#tasks > li[data-id]")) {
      const row = read(li);
      const key = JSON.stringify(row);
      if (last.get(row.id) !== key) paints.push(row);
      last.set(row.id, key);
    }
  }).observe(document.getElementById("tasks"), {
    subtree: true, childList: true, characterData: true, attributes: true,
  });
}"""


def row_of(page: Page, task_id: str) -> Locator:
    return page.locator(f"#tasks > li[data-id='{task_id}']")


def shown(row: Locator) -> dict[str, str]:
    result: dict[str, str] = row.evaluate(SHOWN)
    return result


def pool_processes(worker_pid: int) -> list[int]:
    """The worker's pool processes: its children, found through /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == worker_pid:
            found.append(int(entry.name))
    return found


def test_a_new_attempt_no_longer_shows_the_last_error_live_or_after_a_reload(
    page: Page, site: Site
) -> None:
    """Attempt 1 ends in error when its pool process is killed; attempt 2 then runs for a minute,
    long enough to look at its row at leisure, before and after a reload."""
    task_id = run(page, "long", seconds=60).get_attribute("data-id")
    assert task_id
    row = row_of(page, task_id)
    under_way = re.compile(r"step \d+ of 60")  # the pool process is in the task's body
    expect(row.locator(".task__message")).to_contain_text(under_way, timeout=LONG)
    worker = site.stack.task(task_id)["worker"]
    for pid in pool_processes(int(worker.rsplit("/", 1)[1])):  # one of them runs the task
        os.kill(pid, signal.SIGKILL)

    expect(row.locator(".task__meta")).to_contain_text("Attempt 2", timeout=LONG)
    # The page was told the error: the retry is in the log...
    expect(page.locator("#log")).to_contain_text("will retry", timeout=LONG)
    expect(page.locator("#log")).to_contain_text("WorkerLost")
    # ...but the running attempt is not the one that failed, so its row names no error.
    live = shown(row)
    assert live["state"] == "running", live
    assert "Attempt 2" in live["meta"], live
    assert live["outcome"] == "", live

    page.reload()
    again = row_of(page, task_id)
    expect(again.locator(".task__meta")).to_contain_text("Attempt 2", timeout=LONG)
    reloaded = shown(again)
    assert reloaded["state"] == "running", reloaded
    assert reloaded["outcome"] == "", reloaded

    again.locator("button[data-action=cancel]").click()  # rather than wait out the minute
    expect(again).to_have_attribute("data-state", "cancelled", timeout=LONG)
    expect(again.locator(".task__outcome")).to_be_hidden()


def test_an_unreliable_task_shows_its_error_only_between_attempts(page: Page) -> None:
    """Every attempt fails, so both errors are seen; the error of attempt 1 is not painted while
    attempt 2 runs, and what the page folded live is what a reload shows."""
    page.evaluate(RECORD_PAINTS)
    task_id = run(page, "unreliable", failure_rate=1, max_retries=1).get_attribute("data-id")
    assert task_id
    row = row_of(page, task_id)
    expect(row).to_have_attribute("data-state", "retrying", timeout=LONG)
    expect(row.locator(".task__outcome")).to_contain_text("Last error")
    expect(row.locator(".task__outcome")).to_contain_text("attempt 1 failed")
    expect(row).to_have_attribute("data-state", "failed", timeout=LONG)
    expect(row.locator(".task__outcome")).to_contain_text("attempt 2 failed")

    recorded: list[dict[str, Any]] = page.evaluate("window.__paints")
    paints = [p for p in recorded if p["id"] == task_id]
    states = [p["state"] for p in paints]
    assert "retrying" in states, states
    retried = states.index("retrying")
    running_again = [p for p in paints[retried:] if p["state"] == "running"]
    # Attempt 2 runs for about 0.3 s: it may share a frame with its end, but a paint of it
    # must not show attempt 1's error.
    assert all(p["outcome"] == "" for p in running_again), running_again
    final = shown(row)

    page.reload()
    again = row_of(page, task_id)
    expect(again).to_have_attribute("data-state", "failed", timeout=LONG)
    assert shown(again) == final
