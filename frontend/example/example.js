// Fernhill Books' reports page: its backend starts the task (it holds the API key) and answers a
// watch token; the page shows the task with <taskstream-task>. The task id and token are kept in
// sessionStorage, so a reload in this tab shows the same task again, resumed where it was.

const STORAGE_KEY = "fernhill.report";

const form = document.getElementById("start-form");
const button = document.getElementById("start-button");
const startError = document.getElementById("start-error");
const report = document.getElementById("report");
const slot = document.getElementById("report-slot");
const again = document.getElementById("new-report");

function remembered() {
  try {
    const value = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? "null");
    return value && typeof value.task_id === "string" && typeof value.token === "string" ? value : null;
  } catch {
    return null;
  }
}

function remember(value) {
  if (value) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(value));
  else sessionStorage.removeItem(STORAGE_KEY);
}

/** A POST of JSON to this site's own backend; its answer, or an Error saying what went wrong. */
async function post(path, body = {}) {
  let response;
  try {
    response = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  } catch {
    throw new Error("The server cannot be reached. Check your connection and try again.");
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.detail ?? `The server answered ${response.status}.`);
  return answer;
}

function show({ task_id: taskId, token, api }) {
  const task = document.createElement("taskstream-task");
  task.api = api;
  task.token = token;
  task.taskId = taskId;
  // The token lasts minutes; when the API refuses it, the backend mints another for this task.
  task.tokenProvider = async (id) => {
    const fresh = await post(`/tasks/${encodeURIComponent(id)}/token`);
    const held = remembered();
    if (held?.task_id === id) remember({ ...held, token: fresh.token });
    return fresh.token;
  };
  task.canceller = (id) => post(`/tasks/${encodeURIComponent(id)}/cancel`);
  task.addEventListener("taskstream-end", () => {
    again.hidden = false;
  });
  task.addEventListener("taskstream-error", () => {
    again.hidden = false;
  });
  slot.replaceChildren(task);
  report.hidden = false;
  again.hidden = true;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  button.disabled = true;
  startError.hidden = true;
  try {
    const started = await post("/start", { words: Number(form.elements.words.value) });
    remember(started);
    show(started);
    document.getElementById("report-heading").focus();
  } catch (error) {
    startError.textContent = error.message;
    startError.hidden = false;
  } finally {
    button.disabled = false;
  }
});

again.addEventListener("click", () => {
  remember(null);
  slot.replaceChildren();
  report.hidden = true;
  button.focus();
});

const held = remembered();
if (held) show(held);
