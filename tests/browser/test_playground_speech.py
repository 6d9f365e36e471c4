"""Text to speech in the browser against the real router and audio service (a Piper voice): the
typed text comes back as a WAV that the page's <audio> element holds as a blob and can play."""

from __future__ import annotations

import httpx
from browser_helpers import Page

# The audio element's source and what the browser decoded of it (duration in seconds).
PLAYER = """
const a = document.getElementById('speech-audio');
return {src: a.src, hidden: a.hidden, readyState: a.readyState, duration: a.duration, error: a.error && a.error.code,
        position: a.currentTime, ended: a.ended, paused: a.paused};
"""
# Keeps the blobs the page makes object URLs of, so the test can read the one the player got (the
# page's Content-Security-Policy rightly lets nothing fetch a blob: URL).
KEEP_BLOBS = """
window.__blobs = new Map();
const make = URL.createObjectURL.bind(URL);
URL.createObjectURL = (blob) => { const url = make(blob); window.__blobs.set(url, blob); return url; };
"""
# The size, type and first four bytes of the player's blob (async: the last argument is the callback).
BLOB_HEAD = """
const done = arguments[arguments.length - 1];
const blob = window.__blobs.get(document.getElementById('speech-audio').src);
if (!blob) { done({error: 'the player holds no blob the page made'}); return; }
blob.slice(0, 4).arrayBuffer()
  .then(b => done({size: blob.size, type: blob.type, head: String.fromCharCode(...new Uint8Array(b))}))
  .catch(e => done({error: String(e)}));
"""


def test_speech_form_plays_the_voice(page: Page, router_url: str) -> None:
    cards = httpx.get(f"{router_url}/v1/models", timeout=30).json()["data"]
    voices = [c["id"] for c in cards if "speech" in c.get("capabilities", [])]
    assert voices, f"the router lists no speech model: {[c['id'] for c in cards]}"
    page.open(router_url, "audio")
    page.wait(lambda: page.options("#speech-model").get(voices[0]), 60, f"{voices[0]} not offered")
    assert page.visible("#speech-controls") and not page.text("#speech-note")
    page.choose("#speech-model", voices[0])
    page.js(KEEP_BLOBS)
    page.fill("#speech-input", "The playground reads this sentence aloud.")
    page.find("#speech-submit").click()
    page.wait(lambda: (p := page.js(PLAYER))["src"].startswith("blob:") and p["readyState"] >= 1, 180,
              f"no audio arrived: {page.js(PLAYER)} {page.text('#speech-error')}")  # fmt: skip
    player = page.js(PLAYER)
    assert not player["hidden"] and player["error"] is None, player
    # A sentence of seven words is a second or more of speech, and far less than a minute.
    assert 1.0 < player["duration"] < 60.0, player
    blob = page.driver.execute_async_script(BLOB_HEAD)
    assert blob.get("head") == "RIFF" and blob["size"] > 44 and blob["type"].startswith("audio/"), blob
    # The page starts playing it (Speak is the click that allows it): the position moves on.
    page.wait(lambda: (p := page.js(PLAYER))["position"] > 0 or p["ended"], 30, f"never played: {page.js(PLAYER)}")
    assert not page.visible("#speech-error")


def test_speech_refusal_shown_as_the_apis_message(page: Page, router_url: str) -> None:
    cards = httpx.get(f"{router_url}/v1/models", timeout=30).json()["data"]
    voice = next(c["id"] for c in cards if "speech" in c.get("capabilities", []))
    page.open(router_url, "audio")
    page.wait(lambda: page.options("#speech-model").get(voice), 60, f"{voice} not offered")
    page.choose("#speech-model", voice)
    page.fill("#speech-speed", "9")  # beyond OpenAI's 0.25-4
    page.js("document.getElementById('speech-speed').removeAttribute('max')")  # past the form's own check
    page.find("#speech-submit").click()
    page.wait(lambda: page.visible("#speech-error"), 60, "the refusal was not shown")
    body = {"model": voice, "input": "Hello from the nexa playground.", "response_format": "wav", "speed": 9}
    refusal = httpx.post(f"{router_url}/v1/audio/speech", json=body, timeout=60)
    assert refusal.status_code == 400, refusal.text
    error = refusal.json()["error"]
    code = f", {error['code']}" if error.get("code") else ""
    assert page.text("#speech-error") == f"{error['message']} (HTTP 400{code})"
    assert page.js("return document.getElementById('speech-audio').hidden") is True
