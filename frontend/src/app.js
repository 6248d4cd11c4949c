/**
 * Composition root: reads the deploy-time configuration, builds the parts and wires them.
 * The API origin comes from config.js (served beside the bundle, editable after a build);
 * "" means the same origin as the page.
 */

import { createApi } from "./api.js";
import { createClipboard } from "./clipboard.js";
import { createController } from "./controller.js";
import { createStore } from "./store.js";
import { createStream } from "./stream.js";
import { createView } from "./view.js";

const config = window.TASKSTREAM_CONFIG ?? {};
const api = createApi({ baseUrl: typeof config.apiBaseUrl === "string" ? config.apiBaseUrl : "" });
const store = createStore();
const view = createView({ document, window, readState: () => store.flush() });

const controller = createController({
  api,
  store,
  // The list's stream and each open row's stream; the controller gives each its address.
  openStream: (handlers) =>
    createStream({
      EventSource: window.EventSource,
      isOnline: () => navigator.onLine !== false,
      connectivity: window,
      ...handlers,
    }),
  clipboard: createClipboard({ navigator, document }),
});

store.subscribe(view.requestRender);
view.bind(controller.handlers);
window.addEventListener("online", () => controller.online());
window.addEventListener("pagehide", (event) => {
  if (!event.persisted) controller.stop();
});
view.requestRender();
controller.start();
