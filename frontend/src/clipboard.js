/**
 * Copying text: the asynchronous Clipboard API where the browser offers it (a secure context),
 * else a hidden textarea selected and copied with `execCommand("copy")`, which still works on a
 * plain-HTTP page. `copy(text)` resolves to true when the text was copied.
 */

export function createClipboard({ navigator: nav = globalThis.navigator, document: doc = globalThis.document } = {}) {
  function fallback(text) {
    if (!doc?.body || typeof doc.execCommand !== "function") return false;
    const area = doc.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.setAttribute("aria-hidden", "true");
    area.style.position = "fixed";
    area.style.top = "0";
    area.style.left = "0";
    area.style.opacity = "0";
    const focused = doc.activeElement;
    doc.body.append(area);
    area.focus({ preventScroll: true });
    area.select();
    let copied = false;
    try {
      copied = doc.execCommand("copy") === true;
    } catch {
      copied = false;
    }
    area.remove();
    focused?.focus?.({ preventScroll: true }); // the Copy button keeps the keyboard focus
    return copied;
  }

  return {
    async copy(text) {
      const value = String(text ?? "");
      if (typeof nav?.clipboard?.writeText === "function") {
        try {
          await nav.clipboard.writeText(value);
          return true;
        } catch {
          // Refused (no permission, not focused): the old way may still work.
        }
      }
      return fallback(value);
    },
  };
}
