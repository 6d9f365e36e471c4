// Every request the page makes goes through here: relative `v1/…` URLs (this server's own origin,
// the same public API any client uses), the API key from session storage, and failures turned
// into the API's own error message.

const KEY_STORAGE = "nexa.apiKey";
// A 401 asks for a key; bounded, so a server that refuses every key cannot loop the page.
const MAX_KEY_PROMPTS = 5;

export class ApiError extends Error {
  constructor(message, { status = 0, code = null, type = null, param = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.type = type;
    this.param = param;
  }

  /** The API's message, then what it was (status and code) for the curious. */
  display() {
    const what = [this.status ? `HTTP ${this.status}` : null, this.code].filter(Boolean).join(", ");
    return what ? `${this.message} (${what})` : this.message;
  }
}

/** The OpenAI error body of a failed answer, or the best description of a body that is not one. */
async function errorOf(response) {
  const text = await response.text().catch(() => "");
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: a proxy's HTML page, say
  }
  const detail = body && typeof body === "object" ? body.error : null;
  if (detail && typeof detail === "object" && typeof detail.message === "string") {
    return new ApiError(detail.message, { status: response.status, ...detail });
  }
  const snippet = text.trim().slice(0, 300);
  return new ApiError(snippet || `The server answered ${response.status} ${response.statusText}`.trim(), {
    status: response.status,
  });
}

export class Api {
  /** `askKey(message)` resolves to a key the person typed, or null when they cancel. */
  constructor(askKey) {
    this.askKey = askKey;
    this.onKeyChange = () => {};
    this.pendingPrompt = null;
  }

  get key() {
    return sessionStorage.getItem(KEY_STORAGE);
  }

  setKey(key) {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
    this.onKeyChange(Boolean(key));
  }

  /** One prompt at a time: the calls that all got 401 at page load share it. */
  promptForKey(message) {
    if (!this.pendingPrompt) {
      this.pendingPrompt = this.askKey(message).finally(() => {
        this.pendingPrompt = null;
      });
    }
    return this.pendingPrompt;
  }

  /** fetch `v1/<path>`; resolves to the Response when it is 2xx, throws ApiError otherwise. */
  async fetch(path, { method = "GET", json, form, signal } = {}) {
    for (let prompts = 0; ; prompts += 1) {
      const sentKey = this.key;
      const headers = {};
      if (sentKey) headers.Authorization = `Bearer ${sentKey}`;
      let body;
      if (json !== undefined) {
        headers["Content-Type"] = "application/json";
        body = JSON.stringify(json);
      } else if (form !== undefined) {
        body = form; // the browser sets the multipart boundary
      }
      let response;
      try {
        response = await fetch(`v1/${path}`, { method, headers, body, signal, credentials: "same-origin" });
      } catch (error) {
        if (error.name === "AbortError") throw error;
        throw new ApiError(`Could not reach the server (${error.message}).`);
      }
      if (response.ok) return response;
      const error = await errorOf(response);
      if (response.status !== 401 || prompts >= MAX_KEY_PROMPTS) throw error;
      if (this.key !== sentKey) continue; // another call already got a new key: just retry
      const key = await this.promptForKey(error.message);
      if (!key) throw error;
      this.setKey(key);
    }
  }

  async json(path, options) {
    const response = await this.fetch(path, options);
    return response.json();
  }

  /** POST a streaming request; yields each server-sent event's JSON until `[DONE]`.
   * An `{"error": …}` event (a failure after the stream began) is thrown as ApiError. */
  async *events(path, body, signal) {
    const response = await this.fetch(path, { method: "POST", json: body, signal });
    if (!(response.headers.get("content-type") || "").startsWith("text/event-stream")) {
      yield await response.json();
      return;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value.replace(/\r\n?/g, "\n");
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block
            .split("\n")
            .filter((line) => line.startsWith("data:"))
            .map((line) => line.slice(5).replace(/^ /, ""))
            .join("\n");
          if (!data) continue;
          if (data === "[DONE]") return;
          const event = JSON.parse(data);
          if (event && event.error) {
            throw new ApiError(event.error.message || "The stream failed.", { ...event.error });
          }
          yield event;
        }
      }
    } finally {
      // Stopping early (the Stop button, or an error) closes the connection, which ends the generation.
      reader.cancel().catch(() => {});
    }
  }
}
