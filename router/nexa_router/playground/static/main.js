// The playground's entry point: wires the tabs to one API client and one shared model list.

import { Api } from "./api.js";
import { setupAudio } from "./audio.js";
import { setupChat } from "./chat.js";
import { $, showError } from "./dom.js";
import { setupImages } from "./images.js";
import { keyPrompt, keyStatus } from "./keys.js";
import { setupModels } from "./models.js";
import { setupTabs } from "./tabs.js";

const fatal = $("fatal");
// Never a blank page: anything unexpected is said in the banner.
window.addEventListener("error", (event) => showError(fatal, new Error(`The page failed: ${event.message}`)));
window.addEventListener("unhandledrejection", (event) => showError(fatal, event.reason));

const api = new Api(keyPrompt());
api.onKeyChange = keyStatus(api);
api.onKeyChange(Boolean(api.key));

// Chat re-reads the model list after each answer (its model may have just been loaded).
const tabs = [setupChat(api, () => refreshCards().catch(() => {})), setupAudio(api), setupImages(api)];

/** Read /v1/models once for every tab. */
async function refreshCards() {
  try {
    const answer = await api.json("models");
    const cards = Array.isArray(answer.data) ? answer.data : [];
    showError(fatal, null);
    for (const tab of tabs) tab.setModels(cards);
    return cards;
  } catch (error) {
    showError(fatal, error);
    for (const tab of tabs) tab.setModels([]);
    throw error;
  }
}

const models = setupModels(api, refreshCards);
setupTabs((name) => {
  if (name === "models") models.refreshAll();
});
if (location.hash !== "#models") models.refreshAll();
document.documentElement.dataset.ready = "true";
