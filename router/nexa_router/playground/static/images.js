// The Images tab: txt2img and img2img (/v1/txt2img, /v1/img2img), a gallery of the results with
// the parameters that made them. The API answers once the image is done, so progress is the time
// so far against an estimate from the last image made here (seconds per step and pixel).

import { can, declares, fillPicker, pickerNote, selectedCard } from "./catalog.js";
import { $, el, seconds, showError, ticker } from "./dom.js";

const SIZES = [128, 192, 256, 320, 384, 448, 512, 576, 640, 768, 896, 1024];
const DEFAULT_SIZE = 256;

function readAsDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.addEventListener("load", () => resolve(reader.result));
    reader.addEventListener("error", () => reject(new Error(`Could not read ${file.name}.`)));
    reader.readAsDataURL(file);
  });
}

export function setupImages(api) {
  const picker = $("image-model");
  const prompt = $("image-prompt");
  const negative = $("image-negative");
  const width = $("image-width");
  const height = $("image-height");
  const steps = $("image-steps");
  const cfg = $("image-cfg");
  const seed = $("image-seed");
  const input = $("image-input");
  const strength = $("image-strength");
  const submit = $("image-submit");
  const progressBox = $("image-progress-box");
  const progress = $("image-progress");
  const progressText = $("image-progress-text");
  const errorBox = $("image-error");
  const gallery = $("image-gallery");
  const modeRadios = [...document.querySelectorAll('input[name="image-mode"]')];
  const state = { cards: [], usable: 0, msPerStepPixel: null };

  for (const select of [width, height]) {
    select.replaceChildren(...SIZES.map((size) => el("option", { value: size, text: `${size}` })));
    select.value = String(DEFAULT_SIZE);
  }
  const mode = () => modeRadios.find((radio) => radio.checked).value;
  const syncMode = () => {
    $("image-input-box").hidden = mode() !== "img2img";
  };
  modeRadios.forEach((radio) => radio.addEventListener("change", syncMode));
  strength.addEventListener("input", () => {
    $("image-strength-value").textContent = strength.value;
  });
  picker.addEventListener("change", () => syncEdit());

  function syncEdit() {
    const card = selectedCard(picker, state.cards);
    const img2img = modeRadios.find((radio) => radio.value === "img2img");
    img2img.disabled = Boolean(card && declares(card) && !can(card, "image_edit"));
    if (img2img.disabled && img2img.checked) modeRadios[0].checked = true;
    syncMode();
  }

  function addToGallery(image, params, tookMs) {
    const src = `data:image/png;base64,${image.base64 || image.b64_json}`;
    const rows = [
      ["prompt", params.prompt],
      ["negative", params.negative_prompt || "–"],
      ["mode", params.mode === "img2img" ? `img2img, strength ${params.strength}` : "txt2img"],
      ["size", `${params.width}×${params.height}`],
      ["steps", params.sample_steps],
      ["guidance", params.cfg_scale],
      ["seed", image.seed ?? params.seed ?? "random"],
      ["model", params.model || "default"],
      ["time", seconds(tookMs)],
    ];
    const reuse = el("button", { type: "button", class: "secondary", text: "Use these settings" });
    reuse.addEventListener("click", () => {
      prompt.value = params.prompt;
      negative.value = params.negative_prompt;
      width.value = String(params.width);
      height.value = String(params.height);
      steps.value = String(params.sample_steps);
      cfg.value = String(params.cfg_scale);
      seed.value = image.seed ?? "";
      prompt.focus();
    });
    const card = el(
      "figure",
      { class: "shot", "data-seed": image.seed ?? "" },
      el("img", { src, alt: params.prompt, width: params.width, height: params.height }),
      el("dl", {}, ...rows.flatMap(([name, value]) => [el("dt", { text: name }), el("dd", { text: String(value) })])),
      el(
        "div",
        { class: "actions" },
        el("a", { class: "secondary", href: src, download: `nexa-${image.seed ?? "image"}.png`, text: "Download" }),
        reuse,
      ),
    );
    gallery.prepend(card);
    $("image-gallery-empty").hidden = true;
  }

  $("image-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(errorBox, null);
    const params = {
      model: picker.value || undefined,
      prompt: prompt.value.trim(),
      negative_prompt: negative.value.trim(),
      width: Number(width.value),
      height: Number(height.value),
      sample_steps: Number(steps.value),
      cfg_scale: Number(cfg.value),
      mode: mode(),
    };
    if (seed.value !== "") params.seed = Number(seed.value);
    const body = { ...params };
    delete body.mode;
    try {
      if (params.mode === "img2img") {
        if (!input.files[0]) throw new Error("Choose an input image for image to image.");
        body.image = await readAsDataUrl(input.files[0]);
        body.strength = params.strength = Number(strength.value);
      }
    } catch (error) {
      showError(errorBox, error);
      return;
    }

    const work = params.sample_steps * params.width * params.height;
    const estimateMs = state.msPerStepPixel ? state.msPerStepPixel * work : null;
    submit.disabled = true;
    progressBox.hidden = false;
    if (estimateMs) progress.max = 1;
    else progress.removeAttribute("value"); // indeterminate until one image has been timed
    const stopTicker = ticker((ms) => {
      if (estimateMs) {
        const share = Math.min(ms / estimateMs, 0.99);
        progress.value = share;
        progressText.textContent = `Generating ${params.sample_steps} steps… ${seconds(ms)} (≈${Math.round(share * 100)}%, estimated from the last image)`;
      } else {
        progressText.textContent = `Generating ${params.sample_steps} steps… ${seconds(ms)}`;
      }
    });
    const started = performance.now();
    try {
      const answer = await api.json(params.mode, { method: "POST", json: body });
      const took = performance.now() - started;
      state.msPerStepPixel = took / work;
      for (const image of answer.data) addToGallery(image, params, took);
    } catch (error) {
      showError(errorBox, error);
    } finally {
      stopTicker();
      submit.disabled = state.usable === 0;
      progressBox.hidden = true;
    }
  });

  return {
    setModels(cards) {
      state.cards = cards;
      const usable = fillPicker(picker, cards, "image_generation");
      $("image-model-note").textContent = pickerNote(usable, cards, "image_generation", "tiny-sd");
      state.usable = usable.length;
      submit.disabled = usable.length === 0;
      syncEdit();
    },
  };
}
