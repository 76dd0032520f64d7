// Encore's web page: identify a clip (a file, a drop or the microphone), search in words or by
// voice with the reading shown as editable filter chips, and a linkable track view (#/track/<id>).
//
// Every string that comes from the API (titles, artists, error messages) enters the page as text
// through el() or textContent, never through innerHTML: titles come from users' files.

const $ = (id) => document.getElementById(id);
const HOME_TITLE = document.title;

// --- DOM and API helpers -----------------------------------------------------------------------

/** An element with attributes and children; strings become text nodes, so nothing is parsed as HTML. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false || child === "") continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/** A readable sentence for an error answer: ``{"detail": str}``, or FastAPI's list for a 422. */
function describeError(response, data) {
  const detail = data && data.detail;
  let message;
  if (typeof detail === "string" && detail.trim()) {
    message = detail;
  } else if (Array.isArray(detail) && detail.length) {
    message = detail.map((d) => {
      const where = (d.loc || []).filter((part) => part !== "body" && part !== "query").join(" → ");
      return where ? `${where}: ${d.msg}` : String(d.msg);
    }).join("; ");
  } else if (response.status === 413) {
    message = "the file is larger than the server accepts";
  } else {
    message = `the server answered ${response.status} ${response.statusText}`.trim();
  }
  const retry = Number.parseInt(response.headers.get("Retry-After") || "", 10);
  const later = response.status === 429 && retry > 0 ? ` Try again in ${retry} s.` : "";
  return `${message.charAt(0).toUpperCase()}${message.slice(1)} (HTTP ${response.status})${later}`;
}

/** Call the API; resolves to the JSON answer or throws an ApiError whose message a person can read. */
async function api(path, { method = "GET", json, form, signal } = {}) {
  const init = { method, signal, headers: { Accept: "application/json" } };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (form !== undefined) {
    init.body = form;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError("Could not reach the Encore server. Check that it is running and that you are online, "
      + "then try again.", 0);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(describeError(response, data), response.status);
  if (data === null) throw new ApiError(`The server sent an answer this page cannot read (HTTP ${response.status}).`,
    response.status);
  return data;
}

/** Only the latest request of a kind may render: starting one aborts the one before. */
function latest() {
  let controller = null;
  return () => {
    controller?.abort();
    controller = new AbortController();
    const mine = controller;
    return { signal: mine.signal, current: () => controller === mine };
  };
}

/**
 * Show a busy message and disable controls; returns the function that ends it, leaving an
 * optional short outcome in the status (a live region, so screen readers hear it).
 */
function busy(status, region, message, controls = []) {
  note(status, el("span", { class: "spinner", "aria-hidden": "true" }), message);
  region.setAttribute("aria-busy", "true");
  for (const control of controls) control.disabled = true;
  return (outcome = "") => {
    // The outcome is for screen readers only: on screen, the answer below already says it.
    status.replaceChildren(...(outcome ? [el("span", { class: "sr-only", text: outcome })] : []));
    status.classList.add("quiet");
    region.removeAttribute("aria-busy");
    for (const control of controls) control.disabled = false;
  };
}

function note(status, ...message) {
  status.classList.remove("quiet");
  status.replaceChildren(...message);
}

function errorBox(title, err) {
  const message = err instanceof ApiError || err instanceof Error ? err.message : String(err);
  return el("div", { class: "error", role: "alert" }, el("strong", { text: title }), el("p", { text: message }));
}

// --- formatting --------------------------------------------------------------------------------

const percent = (p) => (p > 0.999 ? "over 99.9%" : `${Math.round(p * 100)}%`);

function minutes(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

const number = (v, digits = 2) => (Number.isInteger(v) ? String(v) : String(Number(v.toFixed(digits))));
const trackHref = (id) => `#/track/${encodeURIComponent(id)}`;

function trackList(tracks, label) {
  return el("ol", { class: "tracks", "aria-label": label }, tracks.map((t) => el("li", { class: "track" },
    el("a", { class: "track-link", href: trackHref(t.track_id) },
      el("span", { class: "title", text: t.title || "Untitled" }),
      el("span", { class: "artist", text: t.artist || "Unknown artist" })),
    el("span", { class: "meta" },
      t.year != null && el("span", { class: "year", text: t.year }),
      t.genre && el("span", { class: "genre", text: t.genre }),
      t.tempo != null && el("span", { class: "tempo", text: `${Math.round(t.tempo)} bpm` })))));
}

// --- recording ---------------------------------------------------------------------------------

function recordingFormat() {
  // ffmpeg on the server decodes all of these; browsers support different ones (Safari: mp4).
  const formats = [["audio/webm;codecs=opus", "webm"], ["audio/ogg;codecs=opus", "ogg"], ["audio/webm", "webm"],
    ["audio/mp4", "m4a"]];
  for (const [type, ext] of formats) {
    if (MediaRecorder.isTypeSupported(type)) return { type, ext };
  }
  return { type: "", ext: "webm" };
}

async function openMicrophone({ music }) {
  if (!navigator.mediaDevices?.getUserMedia || typeof MediaRecorder === "undefined") {
    throw new Error("This browser cannot record here: recording needs a recent browser and a secure page "
      + "(https, or http://localhost). Upload a file instead.");
  }
  // The browser's clean-up for calls reshapes sound: for music (what is identified) all of it is
  // off. For speech, noise suppression swallows words the recognizer needs (a spoken "happy rock
  // from the eighties" came out as "happy r eighties" with it), so only that is off.
  const audio = music ? { echoCancellation: false, noiseSuppression: false, autoGainControl: false }
    : { noiseSuppression: false };
  try {
    return await navigator.mediaDevices.getUserMedia({ audio });
  } catch (err) {
    if (err.name === "NotAllowedError" || err.name === "SecurityError") {
      throw new Error("Microphone access was refused. Allow it in the browser's site settings, or upload a file.");
    }
    if (err.name === "NotFoundError") throw new Error("No microphone was found on this device.");
    throw new Error(`The microphone could not be opened (${err.message || err.name}).`);
  }
}

/**
 * Start recording; resolves once the microphone is open to ``{stop, done}``, where ``done``
 * resolves to ``{blob, name, seconds}`` after ``stop()`` or ``maxSeconds``.
 */
async function startRecording({ music, maxSeconds, onTick }) {
  const stream = await openMicrophone({ music });
  const { type, ext } = recordingFormat();
  let recorder;
  try {
    recorder = new MediaRecorder(stream, type ? { mimeType: type } : {});
  } catch (err) {
    stream.getTracks().forEach((t) => t.stop());
    throw new Error(`This browser cannot record audio (${err.message || err.name}). Upload a file instead.`);
  }
  const chunks = [];
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  let ticker = null;
  let limit = null;
  const done = new Promise((resolve, reject) => {
    const finish = () => {
      clearInterval(ticker);
      clearTimeout(limit);
      stream.getTracks().forEach((t) => t.stop());
    };
    recorder.ondataavailable = (event) => { if (event.data.size) chunks.push(event.data); };
    recorder.onstop = () => {
      finish();
      resolve({ blob: new Blob(chunks, { type: recorder.mimeType || type }), name: `recording.${ext}`,
        seconds: elapsed() });
    };
    recorder.onerror = (event) => {
      finish();
      reject(new Error(`Recording failed (${event.error?.message || "unknown error"}).`));
    };
  });
  const stop = () => { if (recorder.state !== "inactive") recorder.stop(); };
  recorder.start(250);
  ticker = setInterval(() => onTick?.(elapsed()), 250);
  limit = setTimeout(stop, maxSeconds * 1000);
  return { stop, done };
}

// --- identify ----------------------------------------------------------------------------------

const identifyForm = $("identify-form");
const fileInput = $("clip-file");
const recordButton = $("record");
const identifyStatus = $("identify-status");
const identifyResult = $("identify-result");
const nextIdentify = latest();
const IDENTIFY_MAX_SECONDS = 12;

async function identify(blob, name) {
  const request = nextIdentify();
  const form = new FormData();
  form.append("file", blob, name);
  identifyResult.replaceChildren();
  const done = busy(identifyStatus, identifyResult, `Identifying ${name}…`, [$("identify-submit"), recordButton]);
  let outcome = "";
  try {
    const answer = await api("/v1/identify", { method: "POST", form, signal: request.signal });
    if (!request.current()) return;
    identifyResult.replaceChildren(...renderIdentify(answer));
    outcome = answer.match ? `${name}: ${answer.match.title || "Untitled"}.` : `${name}: not in your catalog.`;
  } catch (err) {
    if (err.name === "AbortError" || !request.current()) return;
    identifyResult.replaceChildren(errorBox(`Could not identify ${name}`, err));
  } finally {
    if (request.current()) done(outcome);
  }
}

function renderIdentify(answer) {
  const parts = [];
  const m = answer.match;
  if (m) {
    parts.push(el("div", { class: "card match", id: "match" },
      el("p", { class: "kicker", text: "Match found" }),
      el("h3", { class: "match-title", text: m.title || "Untitled" }),
      el("p", { class: "byline", text: [m.artist, m.album].filter(Boolean).join(" · ") || "Unknown artist" }),
      el("dl", { class: "facts" },
        el("div", {}, el("dt", { text: "Confidence" }), el("dd", { class: "confidence", text: percent(m.confidence) })),
        el("div", {}, el("dt", { text: "Clip starts at" }), el("dd", { class: "offset", text: minutes(m.offset_s) })),
        el("div", {}, el("dt", { text: "Answered in" }), el("dd", { text: `${Math.round(answer.took_ms)} ms` })))));
  } else {
    parts.push(el("div", { class: "card unknown", id: "unknown" },
      el("p", { class: "kicker", text: "Unknown" }),
      el("h3", { text: "Not in your catalog" }),
      el("p", { text: "This clip does not come from any track in the catalog. Here is what sounds like it." })));
  }
  if (answer.similar.length) {
    parts.push(el("h3", { class: "list-heading", id: "similar-heading", text: `Similar tracks (${answer.similar.length})` }),
      trackList(answer.similar, "Similar tracks"));
  } else {
    parts.push(el("p", { class: "hint", text: "No similar tracks to show: the discovery collection is empty." }));
  }
  return parts;
}

fileInput.addEventListener("change", () => {
  const file = fileInput.files[0];
  if (file) identify(file, file.name);
});

identifyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const file = fileInput.files[0];
  if (file) identify(file, file.name);
  else note(identifyStatus, "Choose a clip first, drop one here, or record one.");
});

identifyForm.addEventListener("dragover", (event) => {
  event.preventDefault();
  identifyForm.classList.add("over");
});
identifyForm.addEventListener("dragleave", () => identifyForm.classList.remove("over"));
identifyForm.addEventListener("drop", (event) => {
  event.preventDefault();
  identifyForm.classList.remove("over");
  const file = event.dataTransfer?.files?.[0];
  if (file) identify(file, file.name);
  else note(identifyStatus, "Drop an audio file (not a link or text).");
});
// A file dropped beside the drop zone would make the browser leave the page to open it.
window.addEventListener("dragover", (event) => event.preventDefault());
window.addEventListener("drop", (event) => event.preventDefault());

let identifyRecording = null;

function resetRecordButton() {
  recordButton.textContent = "Record from microphone";
  recordButton.setAttribute("aria-pressed", "false");
  recordButton.classList.remove("recording");
}

recordButton.addEventListener("click", async () => {
  if (identifyRecording) {
    identifyRecording.stop();
    return;
  }
  identifyResult.replaceChildren();
  note(identifyStatus, "Opening the microphone…");
  let recording;
  try {
    recording = await startRecording({
      music: true,
      maxSeconds: IDENTIFY_MAX_SECONDS,
      onTick: (s) => note(identifyStatus, `Recording… ${minutes(s)} of ${minutes(IDENTIFY_MAX_SECONDS)}. `
        + "Press “Stop and identify” when you have a few seconds."),
    });
  } catch (err) {
    identifyStatus.replaceChildren();
    identifyResult.replaceChildren(errorBox("Could not record", err));
    return;
  }
  identifyRecording = recording;
  recordButton.textContent = "Stop and identify";
  recordButton.setAttribute("aria-pressed", "true");
  recordButton.classList.add("recording");
  note(identifyStatus, "Recording… hold the microphone near the music.");
  try {
    const { blob, name, seconds } = await recording.done;
    if (seconds < 1) {
      note(identifyStatus, "That recording was under a second: record a few seconds of the music.");
      return;
    }
    await identify(blob, name);
  } catch (err) {
    identifyResult.replaceChildren(errorBox("Could not record", err));
  } finally {
    identifyRecording = null;
    resetRecordButton();
  }
});

// --- search ------------------------------------------------------------------------------------

const searchForm = $("search-form");
const queryInput = $("query");
const searchSubmit = $("search-submit");
const speakButton = $("speak");
const searchStatus = $("search-status");
const searchResult = $("search-result");
const nextSearch = latest();

/** What is searched: the query and the corrections made through the chips (null drops a filter). */
const search = { query: "", filters: {}, transcript: null, last: null };

const RANGES = [
  { key: "year", label: "Years", min: 1000, max: 3000, step: 1 },
  { key: "tempo", label: "Tempo (bpm)", min: 0, max: 400, step: 1 },
  { key: "energy", label: "Energy", min: 0, max: 1, step: 0.05 },
  { key: "danceability", label: "Danceability", min: 0, max: 1, step: 0.05 },
];

async function runSearch() {
  const request = nextSearch();
  const body = { query: search.query, limit: 20 };
  if (Object.keys(search.filters).length) body.filters = { ...search.filters };
  const done = busy(searchStatus, searchResult, "Searching…", [searchSubmit, speakButton]);
  let outcome = "";
  try {
    const answer = await api("/v1/search", { method: "POST", json: body, signal: request.signal });
    if (!request.current()) return;
    search.last = { answer, filters: { ...search.filters }, transcript: search.transcript };
    renderSearch(answer);
    outcome = found(answer);
  } catch (err) {
    if (err.name === "AbortError" || !request.current()) return;
    showSearchError("Search failed", err);
  } finally {
    if (request.current()) done(outcome);
  }
}

/** An error above the last good answer (its chips still usable), or alone when there is none. */
function showSearchError(title, err) {
  const box = errorBox(title, err);
  if (search.last) {
    search.filters = { ...search.last.filters };
    search.transcript = search.last.transcript;
    renderSearch(search.last.answer);
    searchResult.prepend(box);
  } else {
    searchResult.replaceChildren(box);
  }
}

const found = (answer) => (answer.results.length === 1 ? "1 track." : `${answer.results.length} tracks.`);

function setFilters(changes) {
  Object.assign(search.filters, changes);
  runSearch();
}

function rangeChip(range, interp) {
  const lo = interp[`${range.key}_min`];
  const hi = interp[`${range.key}_max`];
  const input = (end, value) => {
    const name = `${range.key}_${end}`;
    const field = el("input", {
      type: "number", name, min: range.min, max: range.max, step: range.step, inputmode: "decimal",
      value: value == null ? "" : number(value), placeholder: "any",
    });
    field.addEventListener("change", () => {
      if (field.validity.badInput) return;  // half-typed: wait for a number
      setFilters({ [name]: field.value === "" ? null : Number(field.value) });
    });
    return el("label", {}, end === "min" ? "from" : "to", field);
  };
  return el("fieldset", { class: "chip range", "data-filter": range.key },
    el("legend", { text: range.label }),
    input("min", lo), input("max", hi),
    el("button", {
      type: "button", class: "remove", "aria-label": `Remove the ${range.label.toLowerCase()} filter`,
      title: "Remove this filter", text: "×",
      onclick: () => setFilters({ [`${range.key}_min`]: null, [`${range.key}_max`]: null }),
    }));
}

function valueChip(filter, label, value) {
  return el("span", { class: "chip", "data-filter": filter },
    el("span", { class: "chip-label", text: label }), el("span", { class: "chip-value", text: value }),
    el("button", {
      type: "button", class: "remove", "aria-label": `Remove the filter ${label} ${value}`,
      title: "Remove this filter", text: "×", onclick: () => setFilters({ [filter]: null }),
    }));
}

function chips(interp) {
  const filters = [];
  if (interp.genres.length) filters.push(valueChip("genre", "Genre", interp.genres.join(" or ")));
  for (const range of RANGES) {
    if (interp[`${range.key}_min`] != null || interp[`${range.key}_max`] != null) filters.push(rangeChip(range, interp));
  }
  if (interp.artists_by.length) filters.push(valueChip("artist", "By", interp.artists_by.join(" or ")));
  if (interp.artists_not.length) filters.push(valueChip("exclude_artist", "Not by", interp.artists_not.join(", ")));

  // What ranks rather than filters: the request's filters cannot take these back, the query can.
  const readings = [
    ...interp.moods.map((m) => ["mood", m]),
    ...interp.artists_like.map((a) => ["like", `sounds like ${a}`]),
    ...interp.excluded_genres.map((g) => ["not-genre", `no ${g}`]),
    ...(interp.free_text ? [["free", `“${interp.free_text}”`]] : []),
  ];
  return el("div", { class: "reading" },
    filters.length
      ? el("div", { class: "chips", role: "group", "aria-label": "Filters understood from the query" },
        el("span", { class: "group-label", text: "Filters" }), filters)
      : el("p", { class: "hint", text: "No filters: every year, genre and tempo." }),
    readings.length && el("div", { class: "chips", role: "group", "aria-label": "Also understood" },
      el("span", { class: "group-label", text: "Also understood" }),
      readings.map(([kind, text]) => el("span", { class: `chip reading-chip ${kind}`, text })),
      el("span", { class: "hint", text: "(edit the query to change these)" })),
    interp.explanations.length && el("details", { class: "explain" },
      el("summary", { text: "How the query was read" }),
      el("ul", {}, interp.explanations.map((line) => el("li", { text: line })))));
}

/** A selector for the focused control of the search answer, to focus its twin after a re-render. */
function focusedControl() {
  const active = document.activeElement;
  if (!active || !searchResult.contains(active)) return null;
  const chipEl = active.closest(".chip[data-filter]");
  if (!chipEl) return "";
  const part = active.name ? `input[name="${active.name}"]` : "button.remove";
  return `.chip[data-filter="${chipEl.dataset.filter}"] ${part}`;
}

function renderSearch(answer) {
  // A keyboard user editing a chip keeps their place: the same control, or the next chip's when
  // theirs was removed (the answer is re-rendered from scratch).
  const focused = focusedControl();
  const heard = search.transcript;
  const parts = [
    heard && el("p", { class: "heard" }, "Heard: ", el("q", { id: "transcript", text: heard })),
    chips(answer.interpretation),
    ...(answer.results.length
      ? [el("h3", { class: "list-heading", id: "results-heading", tabindex: "-1", text: `${answer.results.length} tracks` }),
        trackList(answer.results, "Search results")]
      : [el("p", { class: "empty", id: "no-results",
        text: "No tracks match all of this. Remove a filter above, or describe it differently." })]),
  ];
  searchResult.replaceChildren(...parts.filter(Boolean));
  if (focused !== null) {
    const twin = focused && searchResult.querySelector(focused);
    (twin || searchResult.querySelector(".chips input, .chips button") || $("results-heading") || queryInput).focus();
  }
}

searchForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const query = queryInput.value.trim();
  if (!query) {
    note(searchStatus, "Type what you would like to hear first.");
    return;
  }
  Object.assign(search, { query, filters: {}, transcript: null, last: null });
  runSearch();
});

// --- voice: hold to speak ------------------------------------------------------------------------

const VOICE_MAX_SECONDS = 14;  // the server takes up to 15 s by default
let holding = false;
let voiceRecording = null;

function resetSpeakButton() {
  speakButton.textContent = "Hold to speak";
  speakButton.classList.remove("recording");
  speakButton.removeAttribute("aria-pressed");
}

async function pressStart() {
  if (holding || voiceRecording || speakButton.disabled) return;
  holding = true;
  speakButton.textContent = "Listening… let go to search";
  speakButton.classList.add("recording");
  speakButton.setAttribute("aria-pressed", "true");
  note(searchStatus, "Listening… say your query, then let go.");
  let recording;
  try {
    recording = await startRecording({
      music: false,
      maxSeconds: VOICE_MAX_SECONDS,
      onTick: (s) => note(searchStatus, `Listening… ${minutes(s)}. Let go when you are done.`),
    });
  } catch (err) {
    holding = false;
    resetSpeakButton();
    searchStatus.replaceChildren();
    showSearchError("Could not listen", err);
    return;
  }
  voiceRecording = recording;
  if (!holding) recording.stop();  // let go while the microphone was still opening
  let heard;
  try {
    heard = await recording.done;
  } catch (err) {
    showSearchError("Could not listen", err);
    return;
  } finally {
    voiceRecording = null;
    holding = false;
    resetSpeakButton();
  }
  if (heard.seconds < 0.7) {
    note(searchStatus, "Keep holding the button while you speak: that was too short to hear a query.");
    return;
  }
  await searchVoice(heard.blob, heard.name);
}

function pressEnd() {
  if (!holding) return;
  holding = false;
  voiceRecording?.stop();
}

async function searchVoice(blob, name) {
  const request = nextSearch();
  const form = new FormData();
  form.append("file", blob, name);
  const done = busy(searchStatus, searchResult, "Recognising your query…", [searchSubmit, speakButton]);
  let outcome = "";
  try {
    const answer = await api("/v1/search/voice?limit=20", { method: "POST", form, signal: request.signal });
    if (!request.current()) return;
    // From here on the transcript is the query: chips re-run it as a text search.
    Object.assign(search, { query: answer.transcript, filters: {}, transcript: answer.transcript });
    queryInput.value = answer.transcript;
    search.last = { answer, filters: {}, transcript: answer.transcript };
    renderSearch(answer);
    outcome = `Heard “${answer.transcript}”: ${found(answer)}`;
  } catch (err) {
    if (err.name === "AbortError" || !request.current()) return;
    showSearchError("Voice search failed", err);
  } finally {
    if (request.current()) done(outcome);
  }
}

speakButton.addEventListener("pointerdown", (event) => {
  if (event.button !== 0) return;
  event.preventDefault();  // no text selection or focus fight while held
  speakButton.setPointerCapture?.(event.pointerId);
  speakButton.focus();
  pressStart();
});
speakButton.addEventListener("pointerup", pressEnd);
speakButton.addEventListener("pointercancel", pressEnd);
speakButton.addEventListener("lostpointercapture", pressEnd);
speakButton.addEventListener("contextmenu", (event) => event.preventDefault());  // long press on phones
speakButton.addEventListener("keydown", (event) => {
  if (event.key !== " " && event.key !== "Enter") return;
  event.preventDefault();
  if (!event.repeat) pressStart();
});
speakButton.addEventListener("keyup", (event) => {
  if (event.key !== " " && event.key !== "Enter") return;
  event.preventDefault();
  pressEnd();
});
speakButton.addEventListener("blur", pressEnd);

// --- track view (#/track/<id>) -------------------------------------------------------------------

const home = $("home");
const trackView = $("track-view");
const trackStatus = $("track-status");
const trackDetail = $("track-detail");
const nextTrack = latest();
let homeScroll = 0;

function bar(value, max, label, shown) {
  const width = max > 0 ? Math.max(0, Math.min(1, value / max)) * 100 : 0;
  return el("li", { class: "bar-row" },
    el("span", { class: "bar-label", title: label, text: label }),
    el("span", { class: "bar", "aria-hidden": "true" },
      (() => { const fill = el("span", { class: "bar-fill" }); fill.style.width = `${width.toFixed(1)}%`; return fill; })()),
    el("span", { class: "bar-value", text: shown }));
}

function renderTrack(track, neighbours) {
  const tags = Object.entries(track.tags || {}).sort((a, b) => b[1] - a[1]);
  const top = tags.length ? tags[0][1] : 0;
  const descriptors = [
    track.tempo != null && el("li", { class: "bar-row" }, el("span", { class: "bar-label", text: "Tempo" }),
      el("span", { class: "bar-text", text: `${Math.round(track.tempo)} bpm` })),
    track.energy != null && bar(track.energy, 1, "Energy", track.energy.toFixed(2)),
    track.danceability != null && bar(track.danceability, 1, "Danceability", track.danceability.toFixed(2)),
  ].filter(Boolean);
  document.title = `${track.title || "Untitled"} · Encore`;
  return [
    el("h2", { id: "track-title", tabindex: "-1", text: track.title || "Untitled" }),
    el("p", { class: "byline", text: [track.artist || "Unknown artist", track.album].filter(Boolean).join(" · ") }),
    el("dl", { class: "facts" },
      el("div", {}, el("dt", { text: "Year" }), el("dd", { class: "year", text: track.year ?? "unknown" })),
      el("div", {}, el("dt", { text: "Genre" }), el("dd", { class: "genre", text: track.genre || "unknown" }))),
    el("div", { class: "panels" },
      el("section", { "aria-labelledby": "descriptors-heading" },
        el("h3", { id: "descriptors-heading", text: "Sound" }),
        descriptors.length ? el("ul", { class: "bars descriptors" }, descriptors)
          : el("p", { class: "hint", text: "No descriptors for this track." })),
      el("section", { "aria-labelledby": "tags-heading" },
        el("h3", { id: "tags-heading", text: "Tags" }),
        tags.length
          ? el("ul", { class: "bars tags", "aria-label": "Tag probabilities, highest first" },
            tags.map(([tag, p]) => bar(p, top, tag, `${Math.round(p * 100)}%`)))
          : el("p", { class: "hint", text: "No tags for this track." }))),
    el("section", { "aria-labelledby": "neighbours-heading" },
      el("h3", { id: "neighbours-heading", text: "Sounds like this" }),
      neighbours.length ? trackList(neighbours, "Tracks that sound like this one")
        : el("p", { class: "hint", text: "No neighbours found." })),
  ];
}

async function showTrack(id) {
  const request = nextTrack();
  trackDetail.replaceChildren();
  const done = busy(trackStatus, trackDetail, "Loading the track…");
  const path = `/v1/tracks/${encodeURIComponent(id)}`;
  try {
    const [track, similar] = await Promise.all([
      api(path, { signal: request.signal }),
      api(`${path}/similar?limit=10`, { signal: request.signal }),
    ]);
    if (!request.current()) return;
    trackDetail.replaceChildren(...renderTrack(track, similar.results));
    $("track-title").focus();
  } catch (err) {
    if (err.name === "AbortError" || !request.current()) return;
    document.title = `Track not available · Encore`;
    trackDetail.replaceChildren(errorBox("Could not open this track", err));
  } finally {
    if (request.current()) done();
  }
}

function route() {
  const match = location.hash.match(/^#\/track\/([^/?#]+)$/);
  if (match) {
    if (!home.hidden) homeScroll = window.scrollY;
    home.hidden = true;
    trackView.hidden = false;
    window.scrollTo(0, 0);
    let id;
    try {
      id = decodeURIComponent(match[1]);
    } catch {
      trackDetail.replaceChildren(errorBox("Could not open this track", new Error("The link's track id is garbled.")));
      return;
    }
    showTrack(id);
  } else {
    nextTrack();  // abandon a track still loading
    trackView.hidden = true;
    home.hidden = false;
    document.title = HOME_TITLE;
    window.scrollTo(0, homeScroll);
  }
}

window.addEventListener("hashchange", route);
route();
