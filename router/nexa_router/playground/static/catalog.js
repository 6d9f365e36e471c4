// What the model cards of /v1/models say a model can do, and the model pickers built from them.
// Servers whose cards carry no `capabilities` (or `state`) still work: capabilities are then
// inferred from the modality, and the pickers say that the state is not reported.

import { el } from "./dom.js";

const BY_MODALITY = {
  text: ["completions", "chat", "tools", "json_schema"],
  audio: ["transcription", "translation"],
  image: ["image_generation", "image_edit"],
};
const USE = {
  chat: "the Chat tab",
  transcription: "the Audio tab",
  translation: "the Audio tab",
  speech: "Text to speech (Audio tab)",
  image_generation: "the Images tab",
  embeddings: "/v1/embeddings",
};

// Backends whose models do something else than their modality's usual work.
const BY_BACKEND = { piper: ["speech"] };

export function capabilitiesOf(card) {
  if (Array.isArray(card.capabilities)) return card.capabilities;
  return BY_BACKEND[card.backend] || BY_MODALITY[card.modality || "text"] || [];
}

export function can(card, capability) {
  return capabilitiesOf(card).includes(capability);
}

/** Whether the card says exactly what it can do (the contract's `capabilities` field). */
export function declares(card) {
  return Array.isArray(card.capabilities);
}

function where(card) {
  const use = capabilitiesOf(card).map((c) => USE[c]).find(Boolean);
  return use ? `use ${use}` : card.modality || "other";
}

/**
 * Fill `select` with every model, grouped by modality; those without `capability` are listed but
 * disabled (saying where they belong). Keeps the current choice when it is still there. Returns
 * the models that can be chosen.
 */
export function fillPicker(select, cards, capability) {
  const previous = select.value;
  const groups = new Map();
  for (const card of cards) {
    const modality = card.modality || "other";
    if (!groups.has(modality)) groups.set(modality, el("optgroup", { label: modality }));
    const usable = can(card, capability);
    const parts = [card.id];
    if (card.state) parts.push(card.state);
    if (!usable) parts.push(where(card));
    groups.get(modality).append(el("option", { value: card.id, disabled: !usable, text: parts.join(" · ") }));
  }
  select.replaceChildren(...groups.values());
  const usable = cards.filter((card) => can(card, capability));
  if (usable.some((card) => card.id === previous)) select.value = previous;
  else if (usable.length) {
    // A model that is already loaded answers fastest.
    select.value = (usable.find((card) => card.state === "loaded") || usable[0]).id;
  }
  select.disabled = usable.length === 0;
  return usable;
}

/** A short note under a picker: why nothing can be picked, or that the server reports no states. */
export function pickerNote(usable, cards, capability, example) {
  if (!usable.length) {
    return `No model here has the \`${capability}\` capability; serve one, e.g. \`nexa server ${example}\`.`;
  }
  if (!cards.some((card) => card.state)) return "This server's model cards carry no load state.";
  return "";
}

export function selectedCard(select, cards) {
  return cards.find((card) => card.id === select.value) || null;
}
