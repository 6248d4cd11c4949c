// Deploy-time settings, read by the app at start-up. Edit this file in dist/ to point the page at
// another API origin (that origin must allow this page's origin in its CORS settings); no rebuild
// is needed. An empty apiBaseUrl means the API is served from the same origin as this page.
window.TASKSTREAM_CONFIG = {
  apiBaseUrl: "",
};
