// The Models tab: every model of /v1/models with its modality, state and capabilities, and, where
// the server has the operator API (/v1/operator/models), each loaded model's memory and the buttons
// that load, pin, unpin and unload it. The list is re-read while something loads, so a model is
// seen going from `available` through `loading` to `loaded` (and back when unloaded).

import { capabilitiesOf } from "./catalog.js";
import { $, bytes, el, showError } from "./dom.js";

// While a model loads (or an operator request runs), the lists are re-read this often, for at most this long.
const POLL_MS = 1000;
const POLL_LIMIT_MS = 10 * 60 * 1000;
// The first re-read after an operator request starts: soon enough to show `loading`.
const FIRST_POLL_MS = 250;

// What each button asks of POST /v1/operator/models/{action}: pinning is a load with `pin`,
// unpinning a load with `pin: false` (it stays loaded), unloading also unpins.
const ACTIONS = {
  load: { label: "Load", path: "load", body: {} },
  pin: { label: "Pin", path: "load", body: { pin: true } },
  unpin: { label: "Unpin", path: "load", body: { pin: false } },
  unload: { label: "Unload", path: "unload", body: {} },
};

function stateBadge(value) {
  return value ? el("span", { class: `state ${value}`, text: value }) : el("span", { class: "muted", text: "not reported" });
}

function relative(unixSeconds) {
  if (!unixSeconds) return "never";
  const s = Math.round(unixSeconds - Date.now() / 1000);
  if (s <= 0) return "now";
  return s < 120 ? `in ${s} s` : `in ${Math.round(s / 60)} min`;
}

export function setupModels(api, refreshCards) {
  const tbody = $("models-table").querySelector("tbody");
  const operatorBody = $("operator-table").querySelector("tbody");
  const errorBox = $("models-error");
  const note = $("operator-note");
  // operator: null: not asked yet; false: this server has no operator API.
  // pending: model id -> the action running for it. actionError: the last operator request's
  // failure, kept on screen across the refreshes that follow it.
  // reads: a count, so that only the newest of overlapping re-reads is shown.
  const state = { operator: null, cards: [], loaded: new Map(), pending: new Map(), pollUntil: 0, timer: null, actionError: null, reads: 0 };

  async function act(action, model) {
    if (state.pending.has(model)) return;
    const { path, body } = ACTIONS[action];
    state.actionError = null;
    showError(errorBox, null);
    state.pending.set(model, action);
    state.pollUntil = performance.now() + POLL_LIMIT_MS;
    render();
    // A load waits until the model is loaded: meanwhile the lists are re-read to show it loading.
    clearTimeout(state.timer);
    state.timer = setTimeout(refreshAll, FIRST_POLL_MS);
    try {
      await api.json(`operator/models/${path}`, { method: "POST", json: { model, ...body } });
    } catch (error) {
      state.actionError = error;
    } finally {
      state.pending.delete(model);
      await refreshAll();
    }
  }

  function actionButton(action, model) {
    const pending = state.pending.get(model);
    // Pinning a model that is not loaded loads it too.
    const label = action === "pin" && state.loaded.get(model)?.state !== "loaded" ? "Load & pin" : ACTIONS[action].label;
    const button = el("button", {
      type: "button",
      class: action === "unload" ? "secondary danger-text" : "secondary",
      "data-action": action,
      "data-model": model,
      disabled: Boolean(pending),
      "aria-busy": pending === action ? "true" : null,
      text: pending === action ? `${label}…` : label,
    });
    button.addEventListener("click", () => act(action, model));
    return button;
  }

  /** The buttons a model's row offers, from its card's state and the operator's list. */
  function actionsFor(card) {
    if (!state.operator) return null;
    const loaded = state.loaded.get(card.id);
    const buttons = [];
    if (card.state === "loaded" || loaded?.state === "loaded") {
      buttons.push(actionButton(loaded?.pinned ? "unpin" : "pin", card.id), actionButton("unload", card.id));
    } else if (card.state === "loading" || loaded?.state === "loading") {
      buttons.push(el("span", { class: "muted", text: "loading…" }));
    } else {
      buttons.push(actionButton("load", card.id), actionButton("pin", card.id));
    }
    return el("div", { class: "actions" }, ...buttons);
  }

  function memoryOf(card) {
    const loaded = state.loaded.get(card.id);
    if (!loaded) return el("span", { class: "muted", text: state.operator ? "–" : "not reported" });
    // Estimated while loading, measured once loaded (the operator API's `memory_bytes`).
    const text = loaded.state === "loading" ? `≈${bytes(loaded.memory_bytes)}` : bytes(loaded.memory_bytes);
    return el("span", { class: "memory", "data-bytes": loaded.memory_bytes, text }, loaded.pinned ? el("span", { class: "pin", text: " · pinned" }) : null);
  }

  function renderCards() {
    const cards = state.cards;
    tbody.replaceChildren(
      ...cards.map((card) => {
        const aliases = Array.isArray(card.aliases) && card.aliases.length ? el("div", { class: "hint", text: `also: ${card.aliases.join(", ")}` }) : null;
        return el(
          "tr",
          { "data-model": card.id, "data-state": card.state || "" },
          el("td", {}, el("code", { text: card.id }), aliases),
          el("td", { text: card.modality || "–" }),
          el("td", { text: card.backend || "–" }),
          el("td", {}, stateBadge(card.state)),
          el("td", {}, memoryOf(card)),
          el("td", {}, el("div", { class: "caps" }, ...capabilitiesOf(card).map((c) => el("span", { text: c })))),
          el("td", {}, actionsFor(card)),
        );
      }),
    );
    if (!cards.length) tbody.append(el("tr", {}, el("td", { colspan: 7, class: "muted", text: "No service answered with a model list." })));
  }

  async function readOperator() {
    if (state.operator === false) return [];
    try {
      const answer = await api.json("operator/models");
      state.operator = true;
      $("operator-box").hidden = false;
      note.textContent = "";
      return answer.data || [];
    } catch (error) {
      if (error.status === 404 || error.status === 405) {
        state.operator = false;
        $("operator-box").hidden = true;
        note.textContent = "This server has no operator API (GET /v1/operator/models answered 404), so memory use and load/unload buttons are not shown.";
        return [];
      }
      throw error;
    }
  }

  function renderLoaded() {
    const loaded = [...state.loaded.values()];
    operatorBody.replaceChildren(
      ...loaded.map((m) =>
        el(
          "tr",
          { "data-model": m.id, "data-state": m.state },
          el("td", {}, el("code", { text: m.id })),
          el("td", { text: m.modality || "–" }),
          el("td", {}, stateBadge(m.state)),
          el("td", { text: bytes(m.memory_bytes) }),
          el("td", { text: m.pinned ? "yes" : "no" }),
          el("td", { text: m.pinned ? "never (pinned)" : relative(m.expires_at) }),
          el("td", { text: `${m.active ?? 0} / ${m.queued ?? 0}` }),
          el("td", {}, m.state === "loaded" ? el("div", { class: "actions" }, actionButton("unload", m.id)) : null),
        ),
      ),
    );
    if (!loaded.length) operatorBody.append(el("tr", {}, el("td", { colspan: 8, class: "muted", text: "No model is loaded." })));
  }

  function render() {
    renderCards();
    if (state.operator) renderLoaded();
  }

  async function refreshAll() {
    clearTimeout(state.timer);
    const read = ++state.reads;
    let failure = null;
    try {
      const [cards, loaded] = await Promise.all([refreshCards(), readOperator()]);
      if (read !== state.reads) return; // a newer read (after an operator request ended) shows its own
      state.cards = cards;
      state.loaded = new Map(loaded.map((m) => [m.id, m]));
      render();
    } catch (error) {
      if (read !== state.reads) return;
      failure = error;
    }
    // An operator request's failure stays shown (as the API worded it) until the next action.
    showError(errorBox, failure || state.actionError);
    const busy =
      state.pending.size > 0 ||
      state.cards.some((c) => c.state === "loading") ||
      [...state.loaded.values()].some((m) => m.state === "loading");
    if (busy && performance.now() < state.pollUntil) state.timer = setTimeout(refreshAll, POLL_MS);
    // For tests and assistive tools: whether the lists are settled.
    tbody.closest("table").setAttribute("aria-busy", String(busy));
  }

  $("models-refresh").addEventListener("click", () => {
    state.pollUntil = performance.now() + POLL_LIMIT_MS;
    state.actionError = null;
    refreshAll();
  });

  return {
    refreshAll,
    showCards(cards) {
      state.cards = cards;
      render();
    },
  };
}
