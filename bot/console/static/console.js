"use strict";
// Parts of a page marked data-live="topic ..." are re-fetched from data-src when one of their topics
// changes (Server-Sent Events from /console/events). Fragments are rendered and escaped on the server.
const parts = [...document.querySelectorAll("[data-live]")];

async function refresh(part) {
  const response = await fetch(part.dataset.src, {credentials: "same-origin"});
  if (!response.ok) return;
  part.innerHTML = await response.text();
  if (part.classList.contains("messages")) part.scrollTop = part.scrollHeight;
}

if (parts.length) {
  const source = new EventSource("/console/events");
  // Whatever changed while the stream was (re)connecting is fetched once it is open.
  source.addEventListener("open", () => parts.forEach(refresh));
  source.addEventListener("message", event => {
    for (const part of parts) if (part.dataset.live.split(" ").includes(event.data)) refresh(part);
  });
}
document.querySelectorAll(".messages").forEach(m => { m.scrollTop = m.scrollHeight; });

// Canned phrases: each <select data-canned> gets its options from data-src; choosing one puts the
// phrase into its form's reply box (added after what is there) for the counselor to edit and send.
for (const select of document.querySelectorAll("select[data-canned]")) {
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
