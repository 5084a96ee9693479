"use strict";
// The videoqa page. It speaks only the server's public API (the same endpoints an OpenAI client uses),
// so everything it shows can also be had with curl.

const POLL_MS = 500; // how often indexing progress is asked for
const KEY_STORAGE = "videoqa-api-key";
// The <video> element cannot send the Authorization header; the server takes the key from this cookie
// for the video file alone.
const MEDIA_KEY_COOKIE = "videoqa_key";

const state = {
  apiKey: sessionStorage.getItem(KEY_STORAGE),
  askedForKey: false, // the page asks for a key once; a wrong one then shows as an error
  model: "videoqa", // replaced by the name /v1/models gives
  library: new Map(), // video id -> VIDEO, as GET /v1/videos listed it
  video: null, // the VIDEO on show
  history: [], // the chat about it so far: {role, content} with plain-text content
  captions: null, // AbortController of the captions stream of the video on show
};

const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

// m:ss rounded to the nearest second, as the answers' "(at m:ss)" are written (media/timefmt.py)
function clock(seconds) {
  const whole = Math.round(seconds);
  const pad = (n) => String(n).padStart(2, "0");
  const [h, m, s] = [Math.floor(whole / 3600), Math.floor((whole % 3600) / 60), whole % 60];
  return h ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --- errors: one line at the top of the page ------------------------------------------------------------

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

function clearError() {
  $("error").hidden = true;
}

// Runs an event handler, showing what goes wrong as the error line instead of losing it in the console.
function guarded(handler) {
  return (...args) => {
    clearError();
    handler(...args).catch((error) => {
      if (error.name !== "AbortError") showError(error.message);
    });
  };
}

// --- the API ---------------------------------------------------------------------------------------------

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body.error && body.error.message) return body.error.message;
  } catch {
    // not OpenAI's error JSON (a proxy's page, say): the status line says what there is to say
  }
  return `${response.status} ${response.statusText}`.trim();
}

// fetch() with the API key; on the first 401 the page asks for the key and tries again.
async function request(path, options = {}) {
  for (;;) {
    const headers = new Headers(options.headers);
    if (state.apiKey) headers.set("Authorization", `Bearer ${state.apiKey}`);
    const response = await fetch(path, { ...options, headers });
    if (response.status === 401 && !state.askedForKey) {
      state.askedForKey = true;
      const key = window.prompt("This server needs an API key:");
      if (key && key.trim()) {
        state.apiKey = key.trim();
        sessionStorage.setItem(KEY_STORAGE, state.apiKey);
        setMediaKeyCookie(state.apiKey);
        continue;
      }
    }
    if (!response.ok) throw new Error(await errorMessage(response));
    return response;
  }
}

function setMediaKeyCookie(key) {
  document.cookie = `${MEDIA_KEY_COOKIE}=${encodeURIComponent(key)}; path=/v1/videos; SameSite=Strict`;
}
if (state.apiKey) setMediaKeyCookie(state.apiKey);

async function getJson(path, options) {
  return (await request(path, options)).json();
}

async function postJson(path, body) {
  const headers = { "Content-Type": "application/json" };
  return request(path, { method: "POST", headers, body: JSON.stringify(body) });
}

// Server-Sent Events read from a fetch response rather than with EventSource, which cannot send the
// Authorization header. Calls onData with each event's JSON until [DONE] or the end of the stream.
async function readEvents(response, onData) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replaceAll("\r", ""); // events may end in \r\n\r\n
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const lines = buffer.slice(0, end).split("\n");
      buffer = buffer.slice(end + 2);
      const data = lines.filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      if (data === "[DONE]") return;
      if (!data) continue;
      const event = JSON.parse(data);
      if (event.error) throw new Error(event.error.message);
      onData(event);
    }
  }
}

// --- the library -----------------------------------------------------------------------------------------

async function loadLibrary() {
  const list = await getJson("/v1/videos");
  state.library = new Map(list.data.map((video) => [video.id, video]));
  const items = list.data.map(libraryItem);
  $("videos").replaceChildren(...(items.length ? items : [el("li", { className: "muted" }, "No videos yet.")]));
}

function libraryItem(video) {
  const button = el("button", { type: "button", className: "video" }, video.name);
  button.dataset.id = video.id;
  button.classList.toggle("selected", state.video !== null && state.video.id === video.id);
  button.addEventListener("click", guarded(() => openVideo(video)));
  return el("li", {}, button, el("span", { className: `badge ${video.status}` }, video.status));
}

async function uploadVideo(file) {
  const form = new FormData();
  form.append("file", file);
  $("status").textContent = `uploading ${file.name}`;
  $("indexing").hidden = false;
  const video = await (await request("/v1/videos", { method: "POST", body: form })).json();
  await loadLibrary();
  await openVideo(video);
}

async function searchLibrary(query) {
  if (!query.trim()) return;
  const list = await getJson(`/v1/search?${new URLSearchParams({ q: query })}`);
  const chips = list.data.map((hit) =>
    momentChip(`${hit.video} ${clock(hit.start_s)}`, hit.text, hit.start_s, () => openHit(hit)),
  );
  $("hits").replaceChildren(...(chips.length ? chips : [el("p", { className: "muted" }, "No matches.")]));
}

async function openHit(hit) {
  const video = state.library.get(hit.video_id) || (await getJson(`/v1/videos/${hit.video_id}`));
  await openVideo(video, hit.start_s);
}

// --- the video on show -----------------------------------------------------------------------------------

async function openVideo(video, startAt = null) {
  const onShow = state.video !== null && state.video.id === video.id;
  if (!onShow) showVideo(video);
  if (startAt !== null) seek(startAt);
  if (onShow) return; // its indexing is already watched, its captions already streamed
  if (video.status === "new" || video.status === "failed") {
    // POST starts indexing (again, after a failure); the server never builds one index twice at once
    video = await (await postJson("/v1/videos", { path: video.name })).json();
  }
  await watchIndexing(video.id);
}

function showVideo(video) {
  if (state.captions) state.captions.abort();
  state.video = video;
  state.history = [];
  $("title").textContent = video.name;
  $("player").src = video.media_url;
  $("turns").replaceChildren();
  $("captions").replaceChildren();
  $("captions-status").textContent = "";
  setAsking(true);
  for (const button of document.querySelectorAll("#videos button.video")) {
    button.classList.toggle("selected", button.dataset.id === video.id);
  }
}

async function watchIndexing(id) {
  for (;;) {
    const video = await getJson(`/v1/videos/${id}`);
    if (!state.video || state.video.id !== id) return; // another video was picked meanwhile
    showProgress(video);
    if (video.status === "ready") return videoReady(video);
    if (video.status === "failed") throw new Error(video.error || `indexing ${video.name} failed`);
    await sleep(POLL_MS);
  }
}

function showProgress(video) {
  const percent = Math.round(video.progress * 100);
  const stage = video.stage && video.status === "indexing" ? ` (${video.stage})` : "";
  $("indexing").hidden = false;
  $("progress").value = video.progress;
  $("status").textContent = video.status === "ready" ? "ready" : `${video.status}${stage}: ${percent}%`;
}

async function videoReady(video) {
  state.video = video;
  setAsking(false);
  $("question").focus();
  await Promise.all([loadLibrary(), streamCaptions(video.id)]);
}

function seek(seconds) {
  const player = $("player");
  const play = () => {
    player.currentTime = seconds;
    // The browser may refuse to play without a user gesture; the player is at the moment all the same.
    player.play().catch(() => {});
  };
  if (player.readyState >= HTMLMediaElement.HAVE_METADATA) play();
  else player.addEventListener("loadedmetadata", play, { once: true });
}

// A clickable moment: a label (its time), its text, and what a click does (seek the player there).
function momentChip(label, text, startS, onClick) {
  const chip = el("button", { type: "button", className: "chip" }, el("b", {}, label), " ", text);
  chip.dataset.start = startS;
  chip.addEventListener("click", guarded(async () => onClick()));
  return chip;
}

// --- captions --------------------------------------------------------------------------------------------

async function streamCaptions(id) {
  const controller = new AbortController();
  state.captions = controller;
  $("captions-status").textContent = "captioning…";
  const response = await request(`/v1/videos/${id}/captions?format=sse`, { signal: controller.signal });
  let count = 0;
  await readEvents(response, (caption) => {
    const seekThere = () => seek(caption.start_s);
    $("captions").append(el("li", {}, momentChip(clock(caption.start_s), caption.caption, caption.start_s, seekThere)));
    count += 1;
  });
  $("captions-status").textContent = count === 1 ? "1 caption" : `${count} captions`;
}

// --- chat ------------------------------------------------------------------------------------------------

function setAsking(busy) {
  $("question").disabled = busy;
  $("ask").disabled = busy;
}

async function ask(question) {
  const video = state.video;
  const answer = el("p", { className: "answer" });
  const moments = el("div", { className: "chips moments" });
  $("turns").append(el("li", {}, el("p", { className: "question" }, question), answer, moments));
  const content = [
    { type: "text", text: question },
    { type: "video_url", video_url: { url: `videoqa://${video.id}` } },
  ];
  const messages = [...state.history, { role: "user", content }];
  setAsking(true);
  try {
    const response = await postJson("/v1/chat/completions", { model: state.model, messages, stream: true });
    let text = "";
    await readEvents(response, (chunk) => {
      const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
      if (delta && delta.content) answer.textContent = text += delta.content;
      if (chunk.videoqa) moments.append(...chunk.videoqa.evidence.map((item) => citedMoment(video, item)));
    });
    if (state.video === video) {
      state.history.push({ role: "user", content: question }, { role: "assistant", content: text });
    }
  } catch (error) {
    answer.remove();
    throw error;
  } finally {
    if (state.video === video) setAsking(false);
  }
}

function citedMoment(video, item) {
  const chip = momentChip(clock(item.start_s), item.text, item.start_s, () => seek(item.start_s));
  chip.title = `${item.channel}: play from ${clock(item.start_s)}`;
  const download = el("button", { type: "button", className: "download", title: "Download this moment" }, "⤓");
  download.setAttribute("aria-label", `Download the clip at ${clock(item.start_s)}`);
  download.addEventListener("click", guarded(() => downloadClip(video, item)));
  return el("span", { className: "moment" }, chip, download);
}

// Fetched rather than linked so the API key goes with it; a clip is a few seconds, small enough to hold.
async function downloadClip(video, item) {
  const params = new URLSearchParams({ start_s: item.start_s, end_s: item.end_s });
  const response = await request(`/v1/videos/${video.id}/clip?${params}`);
  const named = /filename="?([^";]+)"?/.exec(response.headers.get("Content-Disposition") || "");
  const url = URL.createObjectURL(await response.blob());
  el("a", { href: url, download: named ? named[1] : "clip.mp4" }).click();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// --- start -----------------------------------------------------------------------------------------------

async function start() {
  try {
    const list = await getJson("/v1/models");
    if (list.data.length) state.model = list.data[0].id;
  } catch (error) {
    showError(error.message); // a 503 while the models load: the library can be shown all the same
  }
  await loadLibrary();
}

document.addEventListener("DOMContentLoaded", () => {
  $("ask-form").addEventListener(
    "submit",
    guarded(async (event) => {
      event.preventDefault();
      const question = $("question").value.trim();
      if (!question || !state.video) return;
      $("question").value = "";
      await ask(question);
    }),
  );
  $("search-form").addEventListener(
    "submit",
    guarded(async (event) => {
      event.preventDefault();
      await searchLibrary($("search").value);
    }),
  );
  $("upload").addEventListener(
    "change",
    guarded(async (event) => {
      const [file] = event.target.files;
      event.target.value = "";
      if (file) await uploadVideo(file);
    }),
  );
  guarded(start)();
});
