"""A task's output in a person's browser, against the real system: the text of a `generate` task
appears in its open row and grows live; a reload in the middle of the answer shows the whole text
once; log lines and metadata show; the tag filter lists only the tasks of its tag."""

import re
import uuid
from typing import Any

from playwright.sync_api import Locator, Page, Request, expect

from tests.e2e.conftest import Site

LONG = 60_000  # ms: generous deadlines for a slow, shared machine
TEXT = '.output__stream[data-stream="output"] .output__text'


def submit(page: Page, kind: str, tags: str = "", **values: object) -> Locator:
    """Fills the kind's form (and its tags), submits it, and returns the new task's row by id."""
    form = page.locator(f"form[data-kind={kind}]")
    for name, value in values.items():
        form.locator(f"[name={name}]").fill(str(value))
    form.locator("[name=__tags]").fill(tags)
    rows = page.locator("#tasks > li[data-id]")
    before = rows.count()
    form.locator("button[type=submit]").click()
    expect(rows).to_have_count(before + 1, timeout=LONG)
    task_id = rows.first.get_attribute("data-id")
    assert task_id
    return page.locator(f"#tasks > li[data-id='{task_id}']")


def open_output(row: Locator) -> Locator:
    """Opens the row's output with its toggle, from the keyboard, and returns the output region."""
    toggle = row.locator("button[data-action=toggle-output]")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.focus()
    toggle.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    return row.locator(".output")


def task_id_of(row: Locator) -> str:
    task_id = row.get_attribute("data-id")
    assert task_id
    return task_id


def output_text(site: Site, task_id: str, stream: str = "output") -> str:
    response = site.stack.http.get(f"/api/tasks/{task_id}/output")
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    text: str = answer["streams"][stream]["text"]
    return text


def shown_length(page: Page, task_id: str) -> int:
    length: int = page.evaluate(
        "([id, sel]) => document.querySelector(`li[data-id='${id}'] ${sel}`)"
        "?.textContent.length ?? 0",
        [task_id, TEXT],
    )
    return length


def wait_until_complete(row: Locator) -> None:
    """The task ended and its row holds all its output (its own stream is closed)."""
    expect(row).to_have_attribute("data-state", "succeeded", timeout=LONG)
    expect(row.locator(".output__status-text")).to_have_attribute(
        "data-status", "complete", timeout=LONG
    )


def test_generated_text_appears_and_grows_live(page: Page, site: Site) -> None:
    row = submit(page, "generate", words=120, rate=15)
    task_id = task_id_of(row)
    output = open_output(row)
    text = output.locator(TEXT)
    expect(text).to_have_text(re.compile(r"\S"), timeout=LONG)
    first = shown_length(page, task_id)
    # Grows while the task still runs: the text arrives live, not at the end.
    page.wait_for_function(
        "([id, sel, n]) => { const row = document.querySelector(`li[data-id='${id}']`);"
        " const text = row?.querySelector(sel)?.textContent ?? '';"
        " return row?.dataset.state === 'running' && text.length > n; }",
        arg=[task_id, TEXT, first],
        timeout=LONG,
    )
    expect(output.locator(".output__status-text")).to_have_attribute("data-status", "live")
    wait_until_complete(row)
    expected = output_text(site, task_id)
    assert len(expected.split()) == 120
    assert text.text_content() == expected

    # The log lines written while the row was open (the first may come before it opened).
    logs = output.locator(".output__logs > li")
    expect(logs.filter(has_text="half way")).to_have_count(1)
    expect(logs.last).to_contain_text("done")
    expect(logs.last.locator(".output__level")).to_have_text("info")
    metadata = output.locator(".output__metadata")
    expect(metadata.locator(".output__pair", has_text="stage")).to_have_text("stagedone")
    expect(metadata.locator(".output__pair", has_text="words")).to_have_text("words120")
    expect(output.locator(".output__size")).to_have_text(f"{len(expected):,} characters")


def test_reload_mid_answer_shows_the_whole_text_once(page: Page, site: Site) -> None:
    row = submit(page, "generate", words=300, rate=30)
    task_id = task_id_of(row)
    open_output(row)
    page.wait_for_function(
        "([id, sel]) => (document.querySelector(`li[data-id='${id}'] ${sel}`)"
        "?.textContent.length ?? 0) > 40",
        arg=[task_id, TEXT],
        timeout=LONG,
    )
    expect(row).to_have_attribute("data-state", "running")
    page.reload()
    again = page.locator(f"#tasks > li[data-id='{task_id}']")
    expect(again).to_have_attribute("data-state", "running", timeout=LONG)
    output = open_output(again)
    # Reopened mid-answer: what was written before shows at once, the rest follows live.
    expect(output.locator(TEXT)).to_have_text(re.compile(r"\S"), timeout=LONG)
    wait_until_complete(again)
    expected = output_text(site, task_id)
    assert len(expected.split()) == 300
    assert output.locator(TEXT).text_content() == expected, "the whole text, once"
    logs = output.locator(".output__logs > li")
    # The line written before the reload comes from `/output`; those after it, live; each once.
    expect(logs.filter(has_text="writing 300 words")).to_have_count(1)
    expect(logs.filter(has_text="half way")).to_have_count(1)
    expect(logs.last).to_contain_text("done")
    expect(output.locator(".output__metadata")).to_contain_text("words300")


def test_tag_filter_shows_only_tagged_tasks(page: Page) -> None:
    tag = f"e2e:{uuid.uuid4().hex[:8]}"
    streams: list[str] = []

    def note(request: Request) -> None:
        if "/api/events" in request.url:
            streams.append(request.url)

    page.on("request", note)
    tagged = submit(page, "add", tags=f"{tag}, other", x=1, y=2)
    submit(page, "add", x=3, y=4)
    expect(tagged.locator(".task__tags button")).to_have_text([tag, "other"])
    expect(tagged).to_have_attribute("data-state", "succeeded", timeout=LONG)

    tag_input = page.locator("#tag-filter-input")
    tag_input.fill(tag)
    tag_input.press("Enter")
    shown = page.locator("#tasks > li[data-id]:not([hidden])")
    expect(shown).to_have_count(1, timeout=LONG)
    expect(shown).to_have_attribute("data-id", task_id_of(tagged))
    expect(page.locator("#tasks > li[data-id]")).to_have_count(1)  # the list asked for the tag

    # The list's stream follows that tag: a new tagged task appears and runs to its end.
    later = submit(page, "add", tags=tag, x=5, y=6)
    expect(later).to_have_attribute("data-state", "succeeded", timeout=LONG)
    expect(later.locator(".task__outcome-text")).to_have_text("11")
    hidden = submit(page, "add", x=7, y=8)
    expect(hidden).to_be_hidden()
    expect(shown).to_have_count(2)
    tagged_streams = [url for url in streams if "tag=" in url]
    assert tagged_streams, streams
    assert all("types=" not in url for url in streams), "the list's stream keeps its default types"

    tag_input.fill("")
    expect(page.locator("#tasks > li[data-id]:not([hidden])")).not_to_have_count(2, timeout=LONG)
    expect(hidden).to_be_visible(timeout=LONG)
    expect(hidden).to_have_attribute("data-state", "succeeded", timeout=LONG)

    # A row's tag filters by it too.
    page.locator(f"#tasks > li:not([hidden]) .task__tags button[data-tag='{tag}']").first.click()
    expect(tag_input).to_have_value(tag)
    expect(shown).to_have_count(2, timeout=LONG)


def test_at_most_four_rows_follow_live_and_the_page_still_answers(page: Page) -> None:
    """Each open row holds a stream: with the list's, four rows take five of the six connections
    a browser opens to one HTTP/1.1 origin, so a fifth pauses the oldest, and requests still go
    through."""
    rows = [submit(page, "long", seconds=60) for _ in range(5)]
    for row in rows:
        open_output(row)
    status = [row.locator(".output__status-text") for row in rows]
    expect(status[0]).to_have_attribute("data-status", "paused", timeout=LONG)
    expect(status[0]).to_contain_text("at most 4 rows")
    for each in status[1:]:
        expect(each).to_have_attribute("data-status", "live", timeout=LONG)
    # A running row's log lines arrive live on its own stream.
    expect(rows[1].locator(".output__logs > li").first).to_contain_text(
        re.compile(r"step \d+ of 60 done"), timeout=LONG
    )

    rows[0].locator("button[data-action=resume-output]").click()
    expect(status[0]).to_have_attribute("data-status", "live", timeout=LONG)
    expect(status[1]).to_have_attribute("data-status", "paused")
    for row in rows:  # a request each, with every stream open
        row.locator("button[data-action=cancel]").click()
        expect(row).to_have_attribute("data-state", "cancelled", timeout=LONG)
    for each in status[0], status[2], status[3], status[4]:
        expect(each).to_have_attribute("data-status", "complete", timeout=LONG)


def test_a_fast_answer_with_a_hundred_tasks_listed_touches_only_its_own_text(
    page: Page, site: Site
) -> None:
    """200 words a second into an open row, a hundred tasks listed: the words are appended to the
    row's text, never re-rendered, and no other row is touched while they arrive (what keeps the
    page smooth is that the work per chunk does not grow with the list or the text)."""
    listed = [site.stack.submit("add", x=n, y=1)["id"] for n in range(100)]
    for task_id in listed:
        site.stack.wait_state(task_id, "succeeded")
    page.reload()
    for task_id in (listed[0], listed[-1]):
        row = page.locator(f"#tasks > li[data-id='{task_id}']")
        expect(row).to_have_attribute("data-state", "succeeded", timeout=LONG)
    row = submit(page, "generate", words=600, rate=200)
    task_id = task_id_of(row)
    open_output(row)
    expect(row.locator(TEXT)).to_have_text(re.compile(r"\S"), timeout=LONG)
    page.evaluate(
        """([id, sel, listed]) => {
          const text = document.querySelector(`li[data-id='${id}'] ${sel}`);
          const still = new Set(listed);  // finished: nothing about them changes
          window.__seen = { others: 0, removed: 0, appended: 0 };
          new MutationObserver((records) => {
            for (const r of records) {
              const row = (r.target.nodeType === 1 ? r.target : r.target.parentElement)
                ?.closest("#tasks > li[data-id]");
              if (row && still.has(row.dataset.id)) window.__seen.others += 1;
              if (!text.contains(r.target)) continue;
              if (r.type === "characterData") {  // a text node grew, or was rewritten
                if (r.target.data.startsWith(r.oldValue)) window.__seen.appended += 1;
                else window.__seen.removed += 1;
              } else {
                window.__seen.removed += r.removedNodes.length;
                window.__seen.appended += r.addedNodes.length;
              }
            }
          }).observe(document.querySelector("#tasks"), {
            subtree: true, childList: true, attributes: true,
            characterData: true, characterDataOldValue: true,
          });
        }""",
        [task_id, TEXT, listed],
    )
    wait_until_complete(row)
    seen = page.evaluate("window.__seen")
    assert seen["others"] == 0, seen  # the other hundred rows were left alone
    assert seen["removed"] == 0, seen  # the text only grew
    assert seen["appended"] > 10, seen  # in many small appends, as the chunks came
    assert row.locator(TEXT).text_content() == output_text(site, task_id)
