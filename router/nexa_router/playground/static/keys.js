// The API-key prompt: a modal dialog shown when a /v1 call answers 401. The key lives in this
// tab's session storage only (api.js), never in local storage or a cookie.

import { $ } from "./dom.js";

/** Returns `askKey(message)`: resolves to the typed key, or null when the person cancels. */
export function keyPrompt() {
  const dialog = $("key-dialog");
  const form = $("key-form");
  const input = $("key-input");
  const reason = $("key-reason");

  return (message) =>
    new Promise((resolve) => {
      // The server's own words: "Missing API key…" first, "Incorrect API key." after a wrong one.
      reason.textContent = message;
      input.value = "";
      const finish = (key) => {
        form.removeEventListener("submit", onSubmit);
        dialog.removeEventListener("cancel", onCancel);
        dialog.close();
        resolve(key);
      };
      const onSubmit = (event) => {
        event.preventDefault();
        const cancelled = event.submitter && event.submitter.value === "cancel";
        finish(cancelled ? null : input.value.trim() || null);
      };
      const onCancel = (event) => {
        event.preventDefault();
        finish(null);
      };
      form.addEventListener("submit", onSubmit);
      dialog.addEventListener("cancel", onCancel); // Esc
      dialog.showModal();
      input.focus();
    });
}

/** The header's "API key set · Forget" line. */
export function keyStatus(api) {
  const status = $("key-status");
  $("key-forget").addEventListener("click", () => api.setKey(null));
  return (hasKey) => {
    status.hidden = !hasKey;
  };
}
