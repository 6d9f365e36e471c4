// The Audio tab: transcribe or translate an uploaded file or a microphone recording
// (/v1/audio/transcriptions|translations), and speak typed text (/v1/audio/speech) once the
// server lists a speech model.

import { can, fillPicker, pickerNote } from "./catalog.js";
import { $, el, seconds, showError, ticker } from "./dom.js";

// A recording is stopped after this long (the API's upload limit is 25 MiB).
const MAX_RECORDING_MS = 5 * 60 * 1000;

function timestamp(s) {
  const ms = Math.round(s * 1000);
  const h = Math.floor(ms / 3600000);
  const m = Math.floor((ms % 3600000) / 60000);
  const sec = ((ms % 60000) / 1000).toFixed(2).padStart(5, "0");
  return `${h ? `${h}:` : ""}${String(m).padStart(2, "0")}:${sec}`;
}

function renderVerbose(target, result) {
  const meta = [
    result.language && `language ${result.language}`,
    typeof result.duration === "number" && `${result.duration.toFixed(2)} s of audio`,
    Array.isArray(result.segments) && `${result.segments.length} segments`,
  ].filter(Boolean);
  const rows = (result.segments || []).map((segment) =>
    el(
      "tr",
      {},
      el("td", { class: "time", text: `${timestamp(segment.start)} → ${timestamp(segment.end)}` }),
      el("td", { text: segment.text.trim() }),
    ),
  );
  const parts = [
    el("p", { class: "transcript", text: result.text.trim() }),
    el("p", { class: "hint", text: meta.join(" · ") }),
    el("table", { class: "segments" }, el("thead", {}, el("tr", {}, el("th", { text: "Time" }), el("th", { text: "Segment" }))), el("tbody", {}, ...rows)),
  ];
  if (Array.isArray(result.words) && result.words.length) {
    const words = result.words.map((w) => el("span", { title: `${timestamp(w.start)} → ${timestamp(w.end)}`, text: w.word }));
    parts.push(el("h3", { text: "Words (hover for timings)" }), el("p", {}, ...words));
  }
  target.replaceChildren(...parts);
}

function setupRecorder(onRecorded) {
  const button = $("audio-record");
  const note = $("audio-record-note");
  if (!window.MediaRecorder || !navigator.mediaDevices?.getUserMedia) {
    button.disabled = true;
    note.textContent = window.isSecureContext
      ? "This browser cannot record (no MediaRecorder)."
      : "Recording needs a secure page (https, or http on localhost); upload a file instead.";
    return;
  }
  let recorder = null;
  let stopTicker = null;
  let limit = null;
  button.addEventListener("click", async () => {
    if (recorder) {
      recorder.stop();
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (error) {
      note.textContent = `No microphone: ${error.message}`;
      return;
    }
    const chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.addEventListener("dataavailable", (event) => chunks.push(event.data));
    recorder.addEventListener("stop", () => {
      stream.getTracks().forEach((track) => track.stop());
      clearTimeout(limit);
      stopTicker();
      const type = recorder.mimeType || "audio/webm";
      const blob = new Blob(chunks, { type });
      recorder = null;
      button.textContent = "Record";
      button.classList.remove("recording");
      onRecorded(blob);
      note.textContent = `Recorded ${(blob.size / 1024).toFixed(0)} KiB (${type}); Run sends it.`;
    });
    recorder.start();
    limit = setTimeout(() => recorder?.stop(), MAX_RECORDING_MS);
    button.textContent = "Stop recording";
    button.classList.add("recording");
    stopTicker = ticker((ms) => {
      note.textContent = `Recording… ${seconds(ms)}`;
    }, 250);
  });
}

function setupSpeech(api) {
  const note = $("speech-note");
  const controls = $("speech-controls");
  const picker = $("speech-model");
  const errorBox = $("speech-error");
  const player = $("speech-audio");
  const submit = $("speech-submit");
  let objectUrl = null;

  $("speech-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(errorBox, null);
    submit.disabled = true;
    try {
      const body = { model: picker.value, input: $("speech-input").value, response_format: "wav" };
      // No voice: the voice model's own first speaker; OpenAI's names (alloy, …) map onto its speakers.
      if ($("speech-voice").value.trim()) body.voice = $("speech-voice").value.trim();
      if ($("speech-speed").value !== "") body.speed = Number($("speech-speed").value);
      const response = await api.fetch("audio/speech", { method: "POST", json: body });
      const blob = await response.blob();
      if (objectUrl) URL.revokeObjectURL(objectUrl);
      objectUrl = URL.createObjectURL(blob);
      player.src = objectUrl;
      player.hidden = false;
      await player.play().catch(() => {}); // autoplay may be refused; the controls are there
    } catch (error) {
      showError(errorBox, error);
    } finally {
      submit.disabled = false;
    }
  });

  return (cards) => {
    const usable = cards.filter((card) => can(card, "speech"));
    controls.hidden = usable.length === 0;
    note.textContent = usable.length
      ? ""
      : "This server lists no speech model (no model with the `speech` capability in /v1/models), so there is nothing to speak with yet.";
    if (usable.length) fillPicker(picker, cards, "speech");
  };
}

export function setupAudio(api) {
  const picker = $("audio-model");
  const file = $("audio-file");
  const task = $("audio-task");
  const format = $("audio-format");
  const language = $("audio-language");
  const words = $("audio-words");
  const submit = $("audio-submit");
  const progress = $("audio-progress");
  const errorBox = $("audio-error");
  const result = $("audio-result");
  const state = { recorded: null, cards: [] };

  setupRecorder((blob) => {
    state.recorded = blob;
    file.value = "";
  });
  file.addEventListener("change", () => {
    state.recorded = null;
    $("audio-record-note").textContent = "";
  });
  const syncWords = () => {
    words.disabled = format.value !== "verbose_json";
  };
  format.addEventListener("change", syncWords);
  syncWords();
  const syncTask = () => {
    const capability = task.value === "translations" ? "translation" : "transcription";
    const usable = fillPicker(picker, state.cards, capability);
    submit.disabled = usable.length === 0;
    $("audio-model-note").textContent = pickerNote(usable, state.cards, capability, "whisper-tiny.en");
  };
  task.addEventListener("change", syncTask);

  $("audio-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(errorBox, null);
    const upload = file.files[0] || state.recorded;
    if (!upload) {
      showError(errorBox, new Error("Choose an audio file or record one first."));
      return;
    }
    const form = new FormData();
    const extension = (state.recorded?.type || "").includes("ogg") ? "ogg" : "webm";
    form.append("file", upload, upload.name || `recording.${extension}`);
    if (picker.value) form.append("model", picker.value);
    form.append("response_format", format.value);
    if (language.value.trim()) form.append("language", language.value.trim());
    if (format.value === "verbose_json") {
      form.append("timestamp_granularities[]", "segment");
      if (words.checked) form.append("timestamp_granularities[]", "word");
    }
    submit.disabled = true;
    progress.hidden = false;
    result.replaceChildren();
    const stopTicker = ticker((ms) => {
      submit.textContent = `Working… ${seconds(ms)}`;
    }, 200);
    const started = performance.now();
    try {
      const response = await api.fetch(`audio/${task.value}`, { method: "POST", form });
      const took = el("p", { class: "hint", text: `${upload.name || "recording"} · answered in ${seconds(performance.now() - started)}` });
      if (format.value === "json" || format.value === "verbose_json") {
        const body = await response.json();
        if (format.value === "json") result.replaceChildren(el("p", { class: "transcript", text: body.text.trim() }));
        else renderVerbose(result, body);
      } else {
        result.replaceChildren(el("pre", { text: await response.text() }));
      }
      result.dataset.format = format.value;
      result.append(took);
    } catch (error) {
      showError(errorBox, error);
    } finally {
      stopTicker();
      submit.textContent = "Run";
      submit.disabled = false;
      progress.hidden = true;
    }
  });

  const setSpeechModels = setupSpeech(api);
  return {
    setModels(cards) {
      state.cards = cards;
      syncTask();
      setSpeechModels(cards);
    },
  };
}
