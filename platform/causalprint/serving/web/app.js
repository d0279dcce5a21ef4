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

let lastFile = null;

async function post(url, file) {
  const body = new FormData();
  body.append("file", file, file.name);
  const headers = {};
  if (keyInput.value.trim()) headers["X-API-Key"] = keyInput.value.trim();
  const response = await fetch(url, { method: "POST", body, headers });
  return [response, await response.json()];
}

async function anonymize() {
  if (!lastFile) return;
  text($("status"), "anonymizing … (seconds)");
  $("anon-result").hidden = true;
  try {
    const [response, payload] = await post(`/v1/anonymize?target=${$("target").value}`, lastFile);
    text($("status"), "");
    if (!response.ok) return text($("error"), `${response.status} ${payload.error.kind}: ${payload.error.reason}`);
    text($("error"), "");
    const r = payload.report;
    $("anon-image").src = "data:image/png;base64," + payload.png;
    text($("anon-before"), r.before.predicted);
    text($("anon-after"), r.after.predicted);
    $("anon-after").dataset.source = r.after.predicted;
    text($("anon-before-conf"), (100 * r.before.confidence).toFixed(1) + " %");
    text($("anon-after-conf"), (100 * r.after.confidence).toFixed(1) + " %");
    text($("anon-quality"), `${r.succeeded ? "removed" : "not removed"} · PSNR ${r.psnr === null ? "∞" :
         r.psnr.toFixed(1)} dB · SSIM ${r.ssim.toFixed(3)} · largest change ${r.max_change} levels · ` +
         `${r.steps} steps · ${r.seconds.toFixed(1)} s`);
    $("anon-result").hidden = false;
  } catch (err) {
    text($("status"), "");
    text($("error"), `the service did not answer: ${err}`);
  }
}
$("anonymize").addEventListener("click", anonymize);

async function attribute(file) {
  text($("status"), `attributing ${file.name} …`);
  $("anon-box").hidden = true;
  try {
    const [response, payload] = await post("/v1/attribute?explain=true", file);
    text($("status"), "");
    if (!response.ok) return showError(`${response.status} ${payload.error.kind}: ${payload.error.reason}`);
    show(payload, file);
    lastFile = file;
    $("anon-result").hidden = true;
    $("anon-box").hidden = false;
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
