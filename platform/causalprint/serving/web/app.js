// The causalprint web page: upload one image to /v1/attribute?explain=true and show the answer.
"use strict";
const $ = (id) => document.getElementById(id);
const keyInput = $("key");
keyInput.value = localStorage.getItem("causalprint-key") || "";
keyInput.addEventListener("change", () => localStorage.setItem("causalprint-key", keyInput.value.trim()));

function text(el, value) { el.textContent = value; return el; }

function showError(message) {
  text($("error"), message);
  $("result").hidden = true;
}

function bars(probabilities, top) {
  const box = $("bars");
  box.replaceChildren();
  Object.entries(probabilities).sort((a, b) => b[1] - a[1]).forEach(([name, p]) => {
    const row = document.createElement("div");
    row.className = "bar" + (name === top ? " top" : "");
    row.dataset.source = name;
    const label = text(document.createElement("span"), name);
    const track = document.createElement("div");
    track.className = "track";
    const fill = document.createElement("div");
    fill.className = "fill";
    fill.style.width = (100 * p).toFixed(1) + "%";
    track.appendChild(fill);
    const value = text(document.createElement("span"), (100 * p).toFixed(1) + " %");
    value.className = "p";
    row.append(label, track, value);
    box.appendChild(row);
  });
}

function show(result, file) {
  text($("error"), "");
  const decision = $("decision");
  decision.replaceChildren(text(document.createElement("span"), result.source));
  decision.dataset.source = result.source;
  const flag = text(document.createElement("span"), result.unknown ? "unknown source" : "known source");
  flag.className = "flag " + (result.unknown ? "unknown" : "known");
  flag.id = "unknown-flag";
  flag.dataset.unknown = String(result.unknown);
  decision.appendChild(flag);
  text($("details"), `family ${result.family || "–"} · architecture ${result.architecture || "–"} · ` +
       `confidence ${(100 * result.confidence).toFixed(1)} % · model ${result.model.uri} · ` +
       `${result.image.intake} · ${result.elapsed_ms.toFixed(1)} ms`);
  $("preview").src = URL.createObjectURL(file);
  $("heatmap").src = result.residual_png ? "data:image/png;base64," + result.residual_png : "";
  bars(result.probabilities, result.source);
  $("result").hidden = false;
}

async function attribute(file) {
  text($("status"), `attributing ${file.name} …`);
  const body = new FormData();
  body.append("file", file, file.name);
  const headers = {};
  if (keyInput.value.trim()) headers["X-API-Key"] = keyInput.value.trim();
  try {
    const response = await fetch("/v1/attribute?explain=true", { method: "POST", body, headers });
    const payload = await response.json();
    text($("status"), "");
    if (!response.ok) return showError(`${response.status} ${payload.error.kind}: ${payload.error.reason}`);
    show(payload, file);
  } catch (err) {
    text($("status"), "");
    showError(`the service did not answer: ${err}`);
  }
}

const drop = $("drop");
const input = $("file");
drop.addEventListener("click", () => input.click());
drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") input.click(); });
input.addEventListener("change", () => { if (input.files.length) attribute(input.files[0]); });
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files.length) attribute(e.dataTransfer.files[0]);
});
