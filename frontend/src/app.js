/**
 * Composition root: reads the deploy-time configuration, builds the parts and wires them.
 * The API origin comes from config.js (served beside the bundle, editable after a build);
 * "" means the same origin as the page.
 */

import { createClient } from "../client/src/index.js";
import { createClipboard } from "./clipboard.js";
import { createController } from "./controller.js";
import { createStore } from "./store.js";
import { createView } from "./view.js";

const config = window.TASKSTREAM_CONFIG ?? {};
// No token: the page signs in for a session cookie, which every request and stream carries.
const client = createClient({
  baseUrl: typeof config.apiBaseUrl === "string" ? config.apiBaseUrl : "",
  credentials: "include",
  fetch: window.fetch.bind(window),
  EventSource: window.EventSource,
  connectivity: window,
  isOnline: () => navigator.onLine !== false,
});
const store = createStore();
const view = createView({ document, window, readState: () => store.flush() });

const controller = createController({ client, store, clipboard: createClipboard({ navigator, document }) });

store.subscribe(view.requestRender);
view.bind(controller.handlers);
window.addEventListener("online", () => controller.online());
window.addEventListener("pagehide", (event) => {
  if (!event.persisted) controller.stop();
});
view.requestRender();
controller.start();
