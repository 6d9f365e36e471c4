// The Models tab: every model of /v1/models with its state and capabilities, and, where the server
// has the operator API (/v1/operator/models), what is loaded, its memory, and load/unload buttons.

import { capabilitiesOf } from "./catalog.js";
import { $, bytes, el, showError } from "./dom.js";

// While a model loads, the lists are re-read this often, for at most this long.
const POLL_MS = 1500;
const POLL_LIMIT_MS = 10 * 60 * 1000;

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
  // null: not asked yet; false: this server has no operator API.
  const state = { operator: null, cards: [], pollUntil: 0, timer: null };

  async function act(action, model, button) {
    showError(errorBox, null);
    button.disabled = true;
    try {
      await api.json(`operator/models/${action}`, { method: "POST", json: { model } });
    } catch (error) {
      showError(errorBox, error);
    } finally {
      button.disabled = false;
      state.pollUntil = performance.now() + POLL_LIMIT_MS;
      await refreshAll();
    }
  }

  function actionButton(action, model) {
    const button = el("button", { type: "button", class: "secondary", "data-action": action, "data-model": model, text: action === "load" ? "Load" : "Unload" });
    button.addEventListener("click", () => act(action, model, button));
    return button;
  }

  function renderCards(cards) {
    tbody.replaceChildren(
      ...cards.map((card) => {
        let action = null;
        if (state.operator) {
          if (card.state === "loaded") action = actionButton("unload", card.id);
          else if (card.state !== "loading") action = actionButton("load", card.id);
        }
        const aliases = Array.isArray(card.aliases) && card.aliases.length ? el("div", { class: "hint", text: `also: ${card.aliases.join(", ")}` }) : null;
        return el(
          "tr",
          { "data-model": card.id },
          el("td", {}, el("code", { text: card.id }), aliases),
          el("td", { text: card.modality || "–" }),
          el("td", { text: card.backend || "–" }),
          el("td", {}, stateBadge(card.state)),
          el("td", {}, el("div", { class: "caps" }, ...capabilitiesOf(card).map((c) => el("span", { text: c })))),
          el("td", {}, action),
        );
      }),
    );
    if (!cards.length) tbody.append(el("tr", {}, el("td", { colspan: 6, class: "muted", text: "No service answered with a model list." })));
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

  function renderLoaded(loaded) {
    operatorBody.replaceChildren(
      ...loaded.map((m) =>
        el(
          "tr",
          { "data-model": m.id },
          el("td", {}, el("code", { text: m.id })),
          el("td", { text: m.modality || "–" }),
          el("td", {}, stateBadge(m.state)),
          el("td", { text: bytes(m.memory_bytes) }),
          el("td", { text: m.pinned ? "yes" : "no" }),
          el("td", { text: m.pinned ? "never (pinned)" : relative(m.expires_at) }),
          el("td", { text: `${m.active ?? 0} / ${m.queued ?? 0}` }),
          el("td", {}, m.state === "loaded" ? actionButton("unload", m.id) : null),
        ),
      ),
    );
    if (!loaded.length) operatorBody.append(el("tr", {}, el("td", { colspan: 8, class: "muted", text: "No model is loaded." })));
  }

  async function refreshAll() {
    clearTimeout(state.timer);
    showError(errorBox, null);
    try {
      const [cards, loaded] = await Promise.all([refreshCards(), readOperator()]);
      state.cards = cards;
      renderCards(cards);
      if (state.operator) renderLoaded(loaded);
      const busy = cards.some((c) => c.state === "loading") || loaded.some((m) => m.state === "loading");
      if (busy && performance.now() < state.pollUntil) state.timer = setTimeout(refreshAll, POLL_MS);
    } catch (error) {
      showError(errorBox, error);
    }
  }

  $("models-refresh").addEventListener("click", () => {
    state.pollUntil = performance.now() + POLL_LIMIT_MS;
    refreshAll();
  });

  return {
    refreshAll,
    showCards(cards) {
      state.cards = cards;
      renderCards(cards);
    },
  };
}
