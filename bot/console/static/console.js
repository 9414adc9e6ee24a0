"use strict";
// The console's one script (no inline scripts: the CSP forbids them). Every part works without it;
// with it, pages stay live, chats switch in place, and what needs attention is announced.

// --- Live parts ---------------------------------------------------------------------------------
// Parts marked data-live="topic ..." are re-fetched from data-src when one of their topics changes
// (Server-Sent Events from /console/events carry topic names only). Fragments are escaped on the server.
const topicListeners = [];

async function refresh(part) {
  const response = await fetch(part.dataset.src, {credentials: "same-origin"});
  if (!response.ok) return;
  const stuck = part.scrollHeight - part.scrollTop - part.clientHeight < 40;
  part.innerHTML = await response.text();
  if (part.classList.contains("messages") && stuck) part.scrollTop = part.scrollHeight;
  setUp(part);
  if (part.matches("nav.chats")) markChosen();
}

function onTopic(listener) { topicListeners.push(listener); }

const hasStaff = document.querySelector("form[action='/console/logout']") !== null;
if (hasStaff) {
  const source = new EventSource("/console/events");
  // Whatever changed while the stream was (re)connecting is fetched once it is open.
  source.addEventListener("open", () => {
    document.querySelectorAll("[data-live]").forEach(refresh);
    topicListeners.forEach(listener => listener(null));
  });
  source.addEventListener("message", event => {
    // "*": the server missed changes for a while (its database connection was lost); fetch everything,
    // as when the stream (re)opens.
    const everything = event.data === "*";
    for (const part of document.querySelectorAll("[data-live]")) {
      if (everything || part.dataset.live.split(" ").includes(event.data)) refresh(part);
    }
    topicListeners.forEach(listener => listener(everything ? null : event.data));
  });
}

// --- What a fragment needs once it is on the page ----------------------------------------------
function setUp(root) {
  root.querySelectorAll(".messages").forEach(m => { m.scrollTop = m.scrollHeight; });
  // Canned phrases: options fetched from data-src; a choice goes into the form's reply box.
  for (const select of root.querySelectorAll("select[data-canned]:not([data-ready])")) {
    select.dataset.ready = "yes";
    fetch(select.dataset.src, {credentials: "same-origin"})
      .then(response => response.ok ? response.text() : "")
      .then(options => select.insertAdjacentHTML("beforeend", options));
    select.addEventListener("change", () => {
      const box = select.form.elements.namedItem("text");
      if (!select.value || !box) return;
      box.value = box.value.trim() ? `${box.value.trimEnd()}\n${select.value}` : select.value;
      select.value = "";
      box.focus();
    });
  }
}
setUp(document);

// --- Writing in a chat -------------------------------------------------------------------------
// Ctrl+Enter (⌘+Enter) sends. Replies and notes go out without leaving the page, so the drafts of
// the other chats (kept only in this page's memory) stay where they are.
document.addEventListener("keydown", event => {
  const box = event.target;
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && box.matches?.("form.compose textarea")) {
    event.preventDefault();
    box.form.requestSubmit();
  }
});

document.addEventListener("submit", async event => {
  const form = event.target;
  if (!form.matches("form.compose")) return;
  event.preventDefault();
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const response = await fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin", redirect: "manual"});
    if (response.type === "opaqueredirect" || response.ok) {
      form.elements.namedItem("text").value = "";
      const messages = form.closest(".conversation")?.querySelector(".messages");
      if (messages) await refresh(messages);
      showProblem(form, "");
    } else {
      showProblem(form, await response.text());
    }
  } catch {
    showProblem(form, "送れませんでした。通信を確かめて、もう一度送ってください。");
  } finally {
    button.disabled = false;
  }
});

function showProblem(form, text) {
  let box = form.querySelector(".error");
  if (!text) { box?.remove(); return; }
  if (!box) {
    box = document.createElement("p");
    box.className = "error";
    box.setAttribute("role", "alert");
    form.prepend(box);
  }
  box.textContent = text;
}

// --- Several chats: tabs ---------------------------------------------------------------------------
// The chats column lists the chats held (tabs) and the people waiting. A pane is fetched when its tab is
// first chosen and then stays in the page, hidden, with its draft; taking a chat here opens a new tab
// without leaving the page, so no draft is lost.
const chats = document.querySelector("nav.chats");
const tabs = () => [...document.querySelectorAll(".chats [role=tab]")];
const shownPane = () => document.querySelector(".pane:not([hidden])");

async function choose(tab) {
  let pane = document.getElementById(tab.getAttribute("aria-controls"));
  if (!pane) {
    pane = Object.assign(document.createElement("section"), {className: "pane", id: tab.getAttribute("aria-controls"), hidden: true});
    pane.setAttribute("role", "tabpanel");
    pane.setAttribute("aria-labelledby", tab.id);
    pane.dataset.consultation = tab.dataset.consultation;
    document.querySelector(".workspace").append(pane);
  }
  if (!pane.children.length) {
    const response = await fetch(tab.dataset.src, {credentials: "same-origin"});
    if (!response.ok) return;
    pane.innerHTML = await response.text();
    setUp(pane);
    pane.querySelectorAll("[data-live]:not(.messages)").forEach(refresh);
  }
  document.querySelectorAll(".pane").forEach(other => { other.hidden = other !== pane; });
  markChosen();
  history.replaceState(null, "", `/console/c/${tab.dataset.consultation}`);
  chats.dataset.src = `/console/chats/live?open=${tab.dataset.consultation}`;
  document.title = document.title.replace(/相談 #\d+/, `相談 #${tab.dataset.consultation}`);
  pane.querySelectorAll(".messages").forEach(m => { m.scrollTop = m.scrollHeight; });
}

// The tab of the pane on show is the chosen one (also after the column is re-fetched).
function markChosen() {
  const shown = shownPane()?.dataset.consultation;
  for (const tab of tabs()) {
    const chosen = tab.dataset.consultation === shown;
    tab.setAttribute("aria-selected", chosen ? "true" : "false");
    tab.tabIndex = chosen ? 0 : -1;
  }
  showCounts();
}

if (chats) {
  chats.addEventListener("click", event => {
    const tab = event.target.closest("[role=tab]");
    if (tab) choose(tab);
  });
  chats.addEventListener("keydown", event => {
    const step = {ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1}[event.key];
    const all = tabs();
    const index = all.indexOf(event.target);
    if (!step || index < 0) return;
    event.preventDefault();
    const next = all[(index + step + all.length) % all.length];
    next.focus();
    choose(next);
  });
  chats.addEventListener("submit", async event => {
    const form = event.target;
    if (!form.matches("form.take")) return;
    event.preventDefault();
    const id = form.closest("[data-consultation]").dataset.consultation;
    const response = await fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin", redirect: "manual"});
    if (response.type !== "opaqueredirect") {
      showProblem(form, "対応できませんでした（ほかの相談員が先に対応したか、同時に対応できる数を超えています）。");
      return;
    }
    await refresh(chats);
    const tab = document.getElementById(`tab-${id}`);
    if (tab) { await choose(tab); tab.focus(); }
  });
}

// --- The flags page: one key per decision ------------------------------------------------------
// j/k move between cards; c confirms; 1–4 relabel (低・中・高・緊急); d starts a dismissal (a reason is
// required: it is typed, then Enter sends it). Keys typed into a field are left alone.
const flagCards = [...document.querySelectorAll("[data-shortcuts] .flag")];
let currentFlag = 0;

function focusFlag(index) {
  if (!flagCards.length) return;
  currentFlag = Math.max(0, Math.min(flagCards.length - 1, index));
  flagCards.forEach((card, i) => card.classList.toggle("current", i === currentFlag));
  flagCards[currentFlag].focus();
}

if (flagCards.length) {
  flagCards.forEach((card, i) => card.addEventListener("focusin", () => {
    currentFlag = i;
    flagCards.forEach((other, j) => other.classList.toggle("current", j === i));
  }));
  document.addEventListener("keydown", event => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.matches("input, textarea, select")) {
      const form = event.target.form;
      if (event.key === "Enter" && form?.dataset.dismissing && event.target.name === "reason") {
        event.preventDefault();
        form.querySelector("button[value=dismiss]").click();
      }
      return;
    }
    const card = flagCards[currentFlag];
    const form = card.querySelector("form.review");
    const levels = ["low", "medium", "high", "imminent"];
    if (event.key === "j") focusFlag(currentFlag + 1);
    else if (event.key === "k") focusFlag(currentFlag - 1);
    else if (event.key === "c") form.querySelector("button[value=confirm]").click();
    else if (["1", "2", "3", "4"].includes(event.key)) {
      form.elements.namedItem("level").value = levels[Number(event.key) - 1];
      form.querySelector("button[value=relabel]").click();
    } else if (event.key === "d") {
      form.dataset.dismissing = "yes";
      form.elements.namedItem("reason").focus();
    } else return;
    event.preventDefault();
  });
  focusFlag(0);
}

// --- Attention: a sound, a desktop notification and the count in the tab title --------------------
// /console/attention says what needs this staff member now (level, category, wait: never what a person
// wrote) and how they want to be told. Each item is announced once per browser tab session.
let lastItems = [];

// Each tab shows how many of the person's messages are still unanswered.
function showCounts() {
  for (const count of document.querySelectorAll("[data-unanswered]")) {
    const tab = count.closest("[data-consultation]");
    const item = lastItems.find(i => String(i.consultation) === tab.dataset.consultation);
    count.hidden = !item;
    count.textContent = item ? String(item.unanswered) : "";
    count.setAttribute("aria-label", item ? `未返信 ${item.unanswered}件` : "");
  }
}
const announced = new Set(JSON.parse(sessionStorage.getItem("tsunagi-announced") || "[]"));
let audio = null;

function chime() {
  // A soft two-tone chime made on the spot (no sound file to fetch).
  audio ??= new AudioContext();
  for (const [at, pitch] of [[0, 660], [0.18, 880]]) {
    const tone = audio.createOscillator();
    const volume = audio.createGain();
    tone.frequency.value = pitch;
    volume.gain.setValueAtTime(0.0001, audio.currentTime + at);
    volume.gain.exponentialRampToValueAtTime(0.2, audio.currentTime + at + 0.02);
    volume.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + at + 0.4);
    tone.connect(volume).connect(audio.destination);
    tone.start(audio.currentTime + at);
    tone.stop(audio.currentTime + at + 0.45);
  }
}

function notify(item) {
  const shown = new Notification(item.title, {body: item.body, tag: item.key});
  shown.addEventListener("click", () => {
    window.focus();
    const tab = item.consultation && document.getElementById(`tab-${item.consultation}`);
    if (tab) tab.click(); else location.assign(item.link);
  });
}

async function checkAttention() {
  const response = await fetch("/console/attention", {credentials: "same-origin"});
  if (!response.ok) return;
  const now = await response.json();
  const base = document.title.replace(/^\(\d+\) /, "");
  document.title = now.title && now.items.length ? `(${now.items.length}) ${base}` : base;
  lastItems = now.items;
  showCounts();
  const fresh = now.items.filter(item => !announced.has(item.key));
  if (!fresh.length) return;
  fresh.forEach(item => announced.add(item.key));
  sessionStorage.setItem("tsunagi-announced", JSON.stringify([...announced].slice(-500)));
  if (now.sound) { try { chime(); } catch { /* no audio device: the other signals remain */ } }
  if (now.desktop && "Notification" in window && Notification.permission === "granted") fresh.forEach(notify);
  askForNotifications(now);
}

// The permission is asked once, with the reason shown first, and only by the staff member's own click.
function askForNotifications(now) {
  const box = document.querySelector("[data-notify-ask]");
  if (!box || !now.desktop || !("Notification" in window) || Notification.permission !== "default" || localStorage.getItem("tsunagi-notify-asked")) return;
  box.hidden = false;
}

document.querySelector("[data-notify-allow]")?.addEventListener("click", async event => {
  localStorage.setItem("tsunagi-notify-asked", "yes");
  event.target.closest("[data-notify-ask]").hidden = true;
  await Notification.requestPermission();
});
document.querySelector("[data-notify-later]")?.addEventListener("click", event => {
  localStorage.setItem("tsunagi-notify-asked", "yes");
  event.target.closest("[data-notify-ask]").hidden = true;
});
document.querySelector("[data-try-sound]")?.addEventListener("click", chime);
// Browsers keep sound off until the page has been used: the first click or key makes the chime audible.
for (const gesture of ["pointerdown", "keydown"]) {
  document.addEventListener(gesture, () => { audio ??= new AudioContext(); audio.resume(); }, {once: true});
}

let pending = null;
if (hasStaff) {
  onTopic(topic => {
    if (topic !== null && topic !== "queue" && topic !== "alerts" && !topic.startsWith("consultation:")) return;
    clearTimeout(pending);
    pending = setTimeout(checkAttention, 150);  // several topics at once make one request
  });
  fetch("/console/attention", {credentials: "same-origin"}).then(r => r.ok ? r.json() : null).then(now => now && askForNotifications(now));
}

// --- The person's earlier consultations: fetched (and audited) only when opened -----------------
document.addEventListener("toggle", async event => {
  const box = event.target;
  if (!box.matches?.("details.history") || !box.open || box.dataset.loaded) return;
  box.dataset.loaded = "yes";
  const response = await fetch(box.dataset.src, {credentials: "same-origin"});
  box.querySelector("[data-history-body]").innerHTML = response.ok ? await response.text() : "<p class=\"error\">読み込めませんでした。</p>";
}, true);

// A person's image stays hidden behind a blurred button until the counselor chooses to see it; only
// then is it fetched (an audited request), and it replaces the button.
document.addEventListener("click", event => {
  const button = event.target.closest("[data-reveal]");
  if (!button) return;
  const image = document.createElement("img");
  image.src = button.dataset.reveal;
  image.alt = "相談者が送った画像";
  image.className = "revealed";
  button.replaceWith(image);
});
