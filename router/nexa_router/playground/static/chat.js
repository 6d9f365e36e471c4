// The Chat tab: a conversation streamed from /v1/chat/completions, rendered as it arrives.
// Stop aborts the fetch: the connection closes, and the server stops generating within a token.

import { can, declares, fillPicker, pickerNote, selectedCard } from "./catalog.js";
import { $, el, seconds, showError } from "./dom.js";
import { renderMarkdown } from "./markdown.js";

const EXAMPLE_SCHEMA = {
  type: "object",
  properties: { name: { type: "string" }, age: { type: "integer" } },
  required: ["name", "age"],
};
const EXAMPLE_TOOLS = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "The current weather in a city",
      parameters: {
        type: "object",
        properties: {
          city: { type: "string", description: "The city's name" },
          unit: { type: "string", enum: ["celsius", "fahrenheit"] },
        },
        required: ["city"],
      },
    },
  },
];

function parseJson(text, what) {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`The ${what} is not valid JSON: ${error.message}`);
  }
}

/** `afterAnswer()` runs when an answer ends: the model list is re-read, since the answer may have
 * loaded its model (and unloaded another to make room), so the picker shows each one's new state. */
export function setupChat(api, afterAnswer = () => {}) {
  const picker = $("chat-model");
  const modelNote = $("chat-model-note");
  const modeNote = $("chat-mode-note");
  const system = $("chat-system");
  const temperature = $("chat-temperature");
  const maxTokens = $("chat-max-tokens");
  const schema = $("chat-schema");
  const tools = $("chat-tools");
  const messagesBox = $("chat-messages");
  const errorBox = $("chat-error");
  const input = $("chat-input");
  const send = $("chat-send");
  const stop = $("chat-stop");
  const modeRadios = [...document.querySelectorAll('input[name="chat-mode"]')];

  schema.value = JSON.stringify(EXAMPLE_SCHEMA, null, 2);
  tools.value = JSON.stringify(EXAMPLE_TOOLS, null, 2);

  const state = { cards: [], usable: 0, history: [], controller: null };

  const mode = () => modeRadios.find((radio) => radio.checked).value;

  function updateModes() {
    const card = selectedCard(picker, state.cards);
    const reasons = [];
    for (const radio of modeRadios) {
      const needs = { chat: "chat", json_schema: "json_schema", tools: "tools" }[radio.value];
      const ok = !card || !declares(card) || can(card, needs);
      radio.disabled = !ok;
      if (!ok) reasons.push(`${card.id} does not declare \`${needs}\``);
      if (!ok && radio.checked) modeRadios[0].checked = true;
    }
    modeNote.textContent = reasons.join("; ");
    $("chat-schema-box").hidden = mode() !== "json_schema";
    $("chat-tools-box").hidden = mode() !== "tools";
  }

  picker.addEventListener("change", updateModes);
  modeRadios.forEach((radio) => radio.addEventListener("change", updateModes));

  function addMessage(role, text) {
    const content = el("div", { class: "content" });
    const node = el("div", { class: `message ${role}`, "data-role": role }, el("div", { class: "role", text: role }), content);
    if (role === "user") content.textContent = text;
    else renderMarkdown(content, text);
    messagesBox.append(node);
    node.scrollIntoView({ block: "end" });
    return node;
  }

  function setBusy(busy) {
    // Screen readers read the answer once it is complete, not at every token.
    messagesBox.setAttribute("aria-busy", String(busy));
    send.hidden = busy;
    stop.hidden = !busy;
    picker.disabled = busy || state.usable === 0;
  }

  function requestBody(userText) {
    const messages = [];
    if (system.value.trim()) messages.push({ role: "system", content: system.value.trim() });
    messages.push(...state.history, { role: "user", content: userText });
    const body = {
      model: picker.value,
      messages,
      stream: true,
      stream_options: { include_usage: true },
    };
    if (temperature.value !== "") body.temperature = Number(temperature.value);
    if (maxTokens.value !== "") body.max_tokens = Number(maxTokens.value);
    if (mode() === "json_schema") {
      body.response_format = {
        type: "json_schema",
        json_schema: { name: "answer", schema: parseJson(schema.value, "JSON schema"), strict: true },
      };
    } else if (mode() === "tools") {
      body.tools = parseJson(tools.value, "tools list");
      body.tool_choice = $("chat-tool-choice").value;
    }
    return body;
  }

  /** What the answer shows: its text, and any tool call as a JSON block. */
  function answerText(content, calls, jsonMode) {
    let text = content;
    if (jsonMode && content) {
      let pretty = content;
      try {
        pretty = JSON.stringify(JSON.parse(content), null, 2);
      } catch {
        // still streaming (or not JSON): show it as it is
      }
      text = "```json\n" + pretty + "\n```";
    }
    for (const call of calls) {
      let args = call.arguments;
      try {
        args = JSON.stringify(JSON.parse(args), null, 2);
      } catch {
        // partial arguments while streaming
      }
      text += `${text ? "\n\n" : ""}Tool call \`${call.name}\`:\n\n\`\`\`json\n${args}\n\`\`\``;
    }
    return text;
  }

  async function submit() {
    const userText = input.value.trim();
    if (!userText || state.controller) return;
    showError(errorBox, null);
    let body;
    try {
      body = requestBody(userText);
    } catch (error) {
      showError(errorBox, error);
      return;
    }
    input.value = "";
    addMessage("user", userText);
    const node = addMessage("assistant", "");
    const contentNode = node.querySelector(".content");
    const stats = el("div", { class: "stats" });
    node.append(stats);
    node.classList.add("streaming");

    const controller = new AbortController();
    state.controller = controller;
    setBusy(true);
    const jsonMode = mode() === "json_schema";
    let content = "";
    const calls = [];
    let usage = null;
    let finish = null;
    let answeredBy = null;
    let deltas = 0;
    let outcome = "done";
    const started = performance.now();
    let firstAt = null;
    let scheduled = false;
    const render = () => {
      scheduled = false;
      renderMarkdown(contentNode, answerText(content, calls, jsonMode));
    };
    try {
      for await (const chunk of api.events("chat/completions", body, controller.signal)) {
        if (chunk.usage) usage = chunk.usage;
        // The model that answered (the response's `model`), which may differ from an alias picked.
        if (chunk.model && !answeredBy) {
          answeredBy = chunk.model;
          node.dataset.model = answeredBy;
          node.querySelector(".role").append(el("span", { class: "by", text: ` · ${answeredBy}` }));
        }
        for (const choice of chunk.choices || []) {
          const delta = choice.delta || choice.message || {};
          if (delta.content) {
            content += delta.content;
            deltas += 1;
            firstAt ??= performance.now();
          }
          for (const call of delta.tool_calls || []) {
            const index = call.index ?? 0;
            calls[index] ??= { name: "", arguments: "" };
            if (call.function?.name) calls[index].name += call.function.name;
            if (call.function?.arguments) {
              calls[index].arguments += call.function.arguments;
              deltas += 1;
              firstAt ??= performance.now();
            }
          }
          if (choice.finish_reason) finish = choice.finish_reason;
        }
        // One render per frame, however fast the tokens come.
        if (!scheduled) {
          scheduled = true;
          requestAnimationFrame(render);
        }
      }
    } catch (error) {
      if (error.name === "AbortError") outcome = "stopped";
      else {
        outcome = "failed";
        showError(errorBox, error);
      }
    } finally {
      const ended = performance.now();
      state.controller = null;
      setBusy(false);
      render();
      node.classList.remove("streaming");
      node.dataset.outcome = outcome;
      stats.textContent = statsLine({ started, firstAt, ended, usage, deltas, finish, outcome });
      if (outcome !== "failed" || content || calls.length) {
        state.history.push({ role: "user", content: userText });
        const reply = { role: "assistant", content };
        if (calls.length) {
          reply.tool_calls = calls.map((call, i) => ({
            id: `call_${i}`,
            type: "function",
            function: { name: call.name, arguments: call.arguments },
          }));
        }
        state.history.push(reply);
      }
      input.focus();
      afterAnswer();
    }
  }

  function statsLine({ started, firstAt, ended, usage, deltas, finish, outcome }) {
    const parts = [];
    if (firstAt !== null) parts.push(`first token ${seconds(firstAt - started)}`);
    // The server counts tokens (usage); a stopped stream has no usage, so its pieces are counted.
    const tokens = usage ? usage.completion_tokens : deltas;
    const approx = usage ? "" : "≈";
    if (firstAt !== null && tokens > 1 && ended > firstAt) {
      parts.push(`${approx}${((tokens - 1) / ((ended - firstAt) / 1000)).toFixed(1)} tokens/s`);
    }
    parts.push(`${approx}${tokens} tokens`);
    if (outcome === "stopped") parts.push("stopped");
    else if (outcome === "failed") parts.push("failed");
    else if (finish) parts.push(`finish: ${finish}`);
    parts.push(`total ${seconds(ended - started)}`);
    return parts.join(" · ");
  }

  $("chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  stop.addEventListener("click", () => state.controller?.abort());
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && state.controller && !$("key-dialog").open) state.controller.abort();
  });
  $("chat-clear").addEventListener("click", () => {
    state.controller?.abort();
    state.history = [];
    messagesBox.replaceChildren();
    showError(errorBox, null);
    input.focus();
  });
  $("chat-settings").addEventListener("submit", (event) => event.preventDefault());

  return {
    setModels(cards) {
      state.cards = cards;
      const usable = fillPicker(picker, cards, "chat");
      state.usable = usable.length;
      modelNote.textContent = pickerNote(usable, cards, "chat", "smollm2");
      send.disabled = usable.length === 0;
      updateModes();
    },
  };
}
