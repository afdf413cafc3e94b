// The Generate page: prompt, model, advanced settings, a picture to start from, progress and
// results. Every empty field means the model's recommended value, shown as its placeholder.

import { api } from "./api.js";
import { $, clearErrors, el, FAMILY_LABELS, paramsList, showError, toast } from "./ui.js";
import { onEvent } from "./main.js";
import * as mask from "./mask.js";
import * as keywords from "./keywords.js";
import * as tokens from "./tokens.js";

const state = {
  models: [], // every version of every model
  loras: [],
  samplers: [],
  preferences: { families: {} },
  jobs: new Map(), // id -> job, for the jobs this page started
  picture: null, // {file, upload}
  lastSeed: null,
};

// ---- models

function lineages() {
  const groups = new Map();
  for (const model of state.models) {
    if (model.broken) continue;
    if (!groups.has(model.lineage)) groups.set(model.lineage, []);
    groups.get(model.lineage).push(model); // the API lists each lineage newest first
  }
  return groups;
}

export function currentModel() {
  const name = $("#model-version").value;
  return state.models.find((m) => m.name === name) || null;
}

function fillModelPicker(query = "") {
  const picker = $("#model");
  const previous = picker.value;
  picker.replaceChildren();
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  const groups = new Map();
  for (const [lineage, versions] of lineages()) {
    const newest = versions[0];
    const haystack = [lineage, newest.name, newest.category, newest.family, newest.description,
      ...Object.keys(newest.keywords || {})].join(" ").toLowerCase();
    if (!words.every((w) => haystack.includes(w))) continue;
    const group = `${FAMILY_LABELS[newest.family] || newest.family} · ${newest.category || "other"}`;
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group).push(el("option", { value: lineage, text: versions.length > 1 ? `${lineage} (${newest.version})` : newest.name }));
  }
  for (const [label, options] of groups) picker.append(el("optgroup", { label }, options));
  if (!picker.options.length) picker.append(el("option", { value: "", text: "No model matches" }));
  if ([...picker.options].some((o) => o.value === previous)) picker.value = previous;
  fillVersions();
}

function fillVersions() {
  const versions = lineages().get($("#model").value) || [];
  const select = $("#model-version");
  select.replaceChildren(...versions.map((m, i) =>
    el("option", { value: m.name, text: (m.version ? `version ${m.version}` : m.name) + (i === 0 ? " (newest)" : "") })));
  select.disabled = versions.length < 2;
  modelChanged();
}

export function selectModel(name) {
  const model = state.models.find((m) => m.name === name || m.lineage === name);
  if (!model) return false;
  $("#model-search").value = "";
  fillModelPicker();
  $("#model").value = model.lineage;
  fillVersions();
  $("#model-version").value = model.name;
  modelChanged();
  return true;
}

// What an empty field means for the chosen model: the user's preference for its family,
// else the model's own recommended value.
function recommended() {
  const model = currentModel();
  const defaults = model?.defaults || {};
  const saved = state.preferences.families?.[model?.family] || {};
  const pick = (name) => (saved[name] ?? defaults[name]);
  return {
    width: pick("width"), height: pick("height"), steps: pick("steps"), guidance: pick("guidance"),
    sampler: pick("sampler"), negative_prompt: pick("negative_prompt") ?? "",
  };
}

function modelChanged() {
  const model = currentModel();
  const value = recommended();
  $("#model-note").textContent = model
    ? `${FAMILY_LABELS[model.family] || model.family}${model.category ? " · " + model.category : ""}. ${model.description.split("\n")[0].slice(0, 160)}`
    : "";
  $("#negative").placeholder = value.negative_prompt ? `Recommended: ${value.negative_prompt}` : "Nothing to avoid (recommended for this model)";
  $("#steps").placeholder = `${value.steps ?? ""} (recommended)`;
  $("#guidance").placeholder = `${value.guidance ?? ""} (recommended)`;
  const samplerName = state.samplers.find((s) => s.id === value.sampler)?.name || value.sampler || "";
  $("#sampler").options[0].text = `Recommended (${samplerName})`;
  fillSizes(value.width, value.height);
  fillLoraPicker();
  keywords.modelChanged(model?.name);
  tokens.refresh();
  estimateSoon();
}

function fillSizes(width, height) {
  const select = $("#size");
  const area = (width || 512) * (height || 512);
  const snap = (v) => Math.max(64, Math.round(v / 64) * 64);
  const shape = (w, h) => [snap(Math.sqrt((area * w) / h)), snap(Math.sqrt((area * h) / w))];
  const presets = [
    ["", `Recommended (${width}×${height})`],
    [shape(2, 3).join("x"), `Portrait ${shape(2, 3).join("×")}`],
    [shape(3, 2).join("x"), `Landscape ${shape(3, 2).join("×")}`],
    [shape(1, 1).join("x"), `Square ${shape(1, 1).join("×")}`],
    ["custom", "Custom (width and height below)"],
  ];
  const previous = select.value;
  select.replaceChildren(...presets.map(([value, text]) => el("option", { value, text })));
  select.value = [...select.options].some((o) => o.value === previous) ? previous : "";
  $("#width").placeholder = width;
  $("#height").placeholder = height;
  sizeChosen();
}

function sizeChosen() {
  const value = $("#size").value;
  if (value === "custom") return;
  const [w, h] = value ? value.split("x") : ["", ""];
  $("#width").value = w;
  $("#height").value = h;
}

// ---- LoRAs

function fillLoraPicker() {
  const model = currentModel();
  const architecture = model?.family === "sd15" ? "sd15" : "sdxl";
  const fitting = state.loras.filter((l) => !l.broken && (!l.family || (l.family === "sd15") === (architecture === "sd15")));
  $("#lora-pick").replaceChildren(...fitting.map((l) => el("option", { value: l.name, text: l.name })));
  $("#lora-add").disabled = !fitting.length;
  $("#lora-note").textContent = fitting.length ? "" : "No LoRA for this model's family is installed.";
}

function addLora(name, weight = 1) {
  const id = `lora-${Math.random().toString(36).slice(2, 8)}`;
  const output = el("output", { for: id, text: weight });
  const slider = el("input", { id, type: "range", min: -2, max: 2, step: 0.05, value: weight,
    "data-lora": name, oninput: () => (output.textContent = slider.value) });
  const row = el("div", { class: "lora-row" },
    el("label", { for: id }, `${name}: `, output),
    el("button", { type: "button", onclick: () => row.remove(), "aria-label": `Remove ${name}`, text: "Remove" }),
    slider);
  $("#lora-rows").append(row);
  keywords.loraAdded(name, row);
}

// ---- the picture to start from

async function takePicture(file) {
  const box = $("#picture-box");
  clearErrors(box);
  if (!file || !file.type.startsWith("image/")) {
    showError(new Error("That is not a picture: drop a PNG, JPEG or WebP file."), box, null, "init_image");
    return;
  }
  const form = new FormData();
  form.append("file", file);
  try {
    const upload = await api("/v1/uploads", { method: "POST", form });
    state.picture = { file, upload };
    const preview = $("#picture-preview");
    preview.src = URL.createObjectURL(file);
    await preview.decode().catch(() => {});
    mask.attach($("#mask-canvas"), upload.width, upload.height);
    $("#picture-tools").hidden = false;
    $("#picture-note").textContent = `${file.name || "Pasted picture"}: ${upload.width}×${upload.height}.`;
    estimateSoon();
  } catch (error) {
    showError(error, box);
  }
}

function removePicture() {
  state.picture = null;
  $("#picture-tools").hidden = true;
  $("#picture-file").value = "";
  mask.clear();
  estimateSoon();
}

async function readSettings() {
  const note = $("#picture-note");
  if (!state.picture) return;
  const form = new FormData();
  form.append("file", state.picture.file);
  try {
    const info = await api("/v1/image-info", { method: "POST", form });
    applySettings({
      prompt: info.prompt, negative_prompt: info.negative_prompt, seed: info.seed,
      steps: info.steps, guidance: info.guidance, sampler: info.sampler,
      width: info.width, height: info.height,
    });
    const found = info.model && selectModel(info.model);
    note.textContent = `Settings read from the picture (made with ${info.tool}): seed ${info.seed ?? "unknown"}.`
      + (info.model && !found ? ` Its model, ${info.model}, is not installed here.` : "");
  } catch (error) {
    note.textContent = error.message;
  }
}

// Fill the form (a picture's settings, or a history entry's).
export function applySettings(settings, modelName) {
  if (modelName) selectModel(modelName);
  if (settings.prompt !== undefined) $("#prompt").value = settings.prompt || "";
  if (settings.negative_prompt !== undefined) $("#negative").value = settings.negative_prompt || "";
  for (const name of ["steps", "guidance"]) if (settings[name] != null) $(`#${name}`).value = settings[name];
  if (settings.width && settings.height) {
    $("#size").value = "custom";
    $("#width").value = settings.width;
    $("#height").value = settings.height;
  }
  if (settings.sampler) {
    const wanted = settings.sampler.toLowerCase().replace(/[^a-z0-9]/g, "");
    const match = state.samplers.find((s) => [s.id, s.name, ...s.aliases].some((n) => n.toLowerCase().replace(/[^a-z0-9]/g, "") === wanted));
    $("#sampler").value = match ? match.id : "";
  }
  if (settings.seed != null) {
    $("#seed").value = settings.seed;
    $("#seed-lock").checked = true;
  }
  if (settings.batch_size) $("#batch").value = settings.batch_size;
  chooseOption("#guidance-cutoff", settings.guidance_cutoff < 1 ? settings.guidance_cutoff : "");
  chooseOption("#deep-cache", settings.deep_cache > 1 ? settings.deep_cache : "");
  applyHires(settings);
  $("#lora-rows").replaceChildren();
  for (const [name, weight] of settings.loras || []) addLora(name, weight);
  tokens.refresh();
  estimateSoon();
  $("#advanced").open = true;
}

// The hires fix of a picture's settings (A1111's names), or off.
function applyHires(settings) {
  const on = Boolean(settings.hr_upscaler);
  $("#hr-scale").value = on ? settings.hr_scale ?? "" : "";
  if (on) chooseOption("#hr-upscaler", settings.hr_upscaler);
  $("#hr-denoise").value = on ? settings.denoising_strength ?? "" : "";
  $("#hr-steps").value = on && settings.hr_second_pass_steps ? settings.hr_second_pass_steps : "";
}

// A value of a select, added to its options when the API gave one the page does not list.
function chooseOption(id, value) {
  if (value === undefined) return;
  const select = $(id);
  const text = String(value);
  if (![...select.options].some((o) => o.value === text)) select.add(new Option(text, text));
  select.value = text;
}

// ---- generating

function requestBody() {
  const number = (id) => ($(id).value === "" ? undefined : Number($(id).value));
  const body = {
    prompt: $("#prompt").value.trim(),
    model: $("#model-version").value || undefined,
    negative_prompt: $("#negative").value.trim() || undefined,
    width: number("#width"), height: number("#height"), steps: number("#steps"),
    guidance: number("#guidance"), sampler: $("#sampler").value || undefined,
    seed: number("#seed"), batch_size: number("#batch") || 1,
    guidance_cutoff: number("#guidance-cutoff"), deep_cache: number("#deep-cache"),
    loras: [...document.querySelectorAll("[data-lora]")].map((s) => ({ name: s.dataset.lora, weight: Number(s.value) })),
  };
  if ($("#hr-scale").value !== "") {  // the hires fix: on when a factor is given
    Object.assign(body, {
      hr_scale: number("#hr-scale"), hr_upscaler: $("#hr-upscaler").value,
      denoising_strength: number("#hr-denoise"), hr_second_pass_steps: number("#hr-steps"),
    });
  }
  if (state.picture) {  // image-to-image: no hires fix; its strength's share of the steps
    for (const name of ["hr_scale", "hr_upscaler", "denoising_strength", "hr_second_pass_steps"]) delete body[name];
    body.init_image = state.picture.upload.id;
    body.strength = Number($("#strength").value);
  }
  return body;
}

// ---- how long it will take, said before it starts (POST /v1/estimates): asked again half a
// second after the settings stop changing, never twice for the same settings, and an answer
// overtaken by a newer question is dropped

let estimateTimer = null;
let estimateAsked = "";
let estimating = 0;

export function duration(seconds) {
  return seconds < 90 ? `${Math.max(1, Math.round(seconds))} s` : `${Math.round(seconds / 60)} min`;
}

function estimateSoon(again = false) {
  if (again) estimateAsked = ""; // a job finished: the server knows more, or the queue moved
  clearTimeout(estimateTimer);
  estimateTimer = setTimeout(showEstimate, 500);
}

async function showEstimate() {
  // the time does not depend on the words or the seed: typing the prompt asks nothing
  const body = { ...requestBody(), prompt: "a picture", negative_prompt: undefined, seed: undefined };
  const asked = JSON.stringify(body);
  if (asked === estimateAsked) return;
  estimateAsked = asked;
  const number = ++estimating;
  const line = $("#generate-estimate");
  try {
    const found = await api("/v1/estimates", { method: "POST", json: body });
    if (number !== estimating) return;
    line.textContent = found.seconds === null
      ? "Time: not known yet (this server learns its speed from its first picture)."
      : `About ${duration(found.seconds)}` + (found.jobs_ahead
        ? `, after ${found.jobs_ahead === 1 ? "1 job" : `${found.jobs_ahead} jobs`} ahead (about ${duration(found.ahead_s)}).`
        : ".");
    line.title = found.seconds === null ? "" : `Likely ${duration(found.low)} to ${duration(found.high)}, learned from ${found.based_on} finished job(s) (${found.basis}).`;
  } catch {
    if (number !== estimating) return;
    line.textContent = ""; // a mistake in the settings is said when Generate is pressed
    line.title = "";
  }
}

async function submit(event) {
  event?.preventDefault();
  const form = $("#generate-form");
  clearErrors(form);
  $("#generate-error").textContent = "";
  const body = requestBody();
  if (!body.prompt) {
    showError(new Error("Write a prompt first: what should the picture show?"), form, null, "prompt");
    $("#prompt").focus();
    return;
  }
  const button = $("#generate-button");
  button.disabled = true;
  try {
    if (state.picture) {
      const painted = await mask.toBlob();
      if (painted) {
        const upload = new FormData();
        upload.append("file", painted, "mask.png");
        body.mask_image = (await api("/v1/uploads", { method: "POST", form: upload })).id;
      }
    }
    const job = await api("/v1/generations", { method: "POST", json: body });
    track(job);
  } catch (error) {
    showError(error, form, $("#generate-error"));
  } finally {
    button.disabled = false;
  }
}

let current = null; // the job the progress panel follows

function track(job) {
  current = job.id;
  state.jobs.set(job.id, job);
  state.lastSeed = job.settings.seed;
  if (!$("#seed-lock").checked) {
    $("#seed").value = "";
    $("#seed").placeholder = `random (last: ${job.settings.seed})`;
  }
  const stage = $("#stage");
  stage.style.aspectRatio = `${job.settings.width} / ${job.settings.height}`;
  stage.querySelectorAll("img.final").forEach((n) => n.remove());
  $("#stage-empty").hidden = true;
  $("#live-preview").hidden = true;
  $("#live-preview").removeAttribute("src");
  $("#progress").hidden = false;
  updateProgress(job);
  pollWhileQueued(job.id);
}

async function pollWhileQueued(id) {
  while (current === id) {
    const job = state.jobs.get(id);
    if (!job || job.status !== "queued") return;
    try {
      updateJob(await api(`/v1/generations/${id}`));
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function updateProgress(job, progress) {
  if (job.id !== current) return;
  const text = $("#progress-text");
  const bar = $("#progress-bar");
  if (job.status === "queued") {
    const place = job.queue_position
      ? `Waiting in the queue: ${job.queue_position === 1 ? "next" : `position ${job.queue_position}`}`
      : "Waiting in the queue";
    const starts = job.eta
      ? (job.eta.starts_in_s < 1 ? " · starts now" : ` · starts in about ${duration(job.eta.starts_in_s)}`)
      : "";
    const takes = job.estimate ? `, then about ${duration(job.estimate.seconds)}` : "";
    text.textContent = `${place}${starts}${takes}.`;
    bar.removeAttribute("value");
  } else if (job.status === "running") {
    const p = progress || job.progress || {};
    const total = p.total || job.settings.steps;
    const eta = p.eta_s != null ? ` · about ${Math.max(1, Math.round(p.eta_s))} s left` : "";
    text.textContent = `Step ${p.step || 0} of ${total}${eta}`;
    bar.max = total;
    bar.value = p.step || 0;
    bar.textContent = `${Math.round(((p.step || 0) / total) * 100)} %`;
    if (p.preview) {
      const live = $("#live-preview");
      live.src = p.preview;
      live.hidden = false;
    }
  }
}

const RANK = { queued: 0, running: 1, succeeded: 2, failed: 2, cancelled: 2 };

function updateJob(job) {
  const known = state.jobs.get(job.id);
  if (!known || RANK[job.status] < RANK[known.status]) return; // not ours, or older news
  state.jobs.set(job.id, job);
  updateProgress(job);
  if (job.status !== known.status) estimateSoon(true); // the queue moved, or a job taught more
  if (["succeeded", "failed", "cancelled"].includes(job.status) && job.id === current) {
    $("#progress").hidden = true;
    $("#live-preview").hidden = true;
    if (job.status === "failed") $("#generate-error").textContent = job.error?.message || "The generation failed.";
    if (job.status === "cancelled") toast("Cancelled.");
    if (job.status === "succeeded") showResults(job);
  }
}

function showResults(job) {
  if (job.images.length) showOnStage(job.images[0]);
  const cards = job.images.map((image) => resultCard(image));
  $("#results").prepend(...cards);
}

function resultCard(image) {
  const favourite = el("button", { type: "button", "aria-pressed": String(image.favourite) });
  const setFavourite = (on) => {
    image.favourite = on;
    favourite.textContent = on ? "★ Favourite" : "☆ Favourite";
    favourite.setAttribute("aria-pressed", String(on));
  };
  setFavourite(image.favourite);
  favourite.addEventListener("click", async () => {
    try {
      const updated = await api(`/v1/images/${image.id}`, { method: "PATCH", json: { favourite: !image.favourite } });
      setFavourite(updated.favourite);
    } catch (error) { toast(error.message); }
  });
  const card = el("article", { class: "result", "data-image": image.id, "aria-label": `Picture, seed ${image.seed}` },
    el("button", { type: "button", class: "thumb", "aria-label": `Show this picture (seed ${image.seed}) large`, onclick: () => showOnStage(image) },
      el("img", { src: image.thumbnail_url, alt: "", width: image.width, height: image.height, loading: "lazy" })),
    el("div", { class: "stack" },
    paramsList(image.settings, { Model: image.model }),
    el("div", { class: "row wrap" },
      el("a", { href: image.url, download: `sfumato-${image.seed}.${image.format}`, class: "button-like", text: "Download" }),
      el("button", { type: "button", text: "Reuse settings", onclick: () => { applySettings(image.settings, image.model); window.scrollTo(0, 0); toast("Settings filled in."); } }),
      el("button", { type: "button", text: "Same seed, new prompt", onclick: () => sameSeed(image) }),
      favourite,
      el("button", { type: "button", class: "danger", text: "Delete", onclick: async () => {
        try {
          await api(`/v1/images/${image.id}`, { method: "DELETE" });
          card.remove();
          document.querySelectorAll(`#stage img.final[src="${image.url}"]`).forEach((n) => n.remove());
          toast("Deleted.");
        } catch (error) { toast(error.message); }
      } }))));
  return card;
}

function showOnStage(image) {
  const stage = $("#stage");
  stage.style.aspectRatio = `${image.width} / ${image.height}`;
  stage.querySelectorAll("img.final").forEach((n) => n.remove());
  stage.append(el("img", { class: "final", src: image.url, alt: image.prompt, width: image.width, height: image.height }));
}

function sameSeed(image) {
  applySettings({ ...image.settings, prompt: "" }, image.model);
  $("#prompt").focus();
  toast(`Seed ${image.seed} kept: write a new prompt.`);
}

// ---- wiring

export async function init() {
  const [models, loras, samplers, preferences, upscalers] = await Promise.all([
    api("/v1/models", { query: { all_versions: true } }),
    api("/v1/models", { query: { all_versions: true, kind: "loras" } }),
    api("/v1/samplers"),
    api("/v1/me/preferences"),
    api("/v1/upscalers"),
  ]);
  // the hires fix may enlarge with an upscaler model too (after A1111's own, in the page)
  $("#hr-upscaler").querySelectorAll("option[data-model]").forEach((o) => o.remove());
  $("#hr-upscaler").append(...upscalers.upscalers.filter((u) => u.kind === "model" && !u.broken)
    .map((u) => el("option", { value: u.name, text: `${u.name} (${u.scale}x)`, "data-model": "" })));
  state.models = models.models;
  state.loras = loras.models;
  state.samplers = samplers.samplers;
  state.preferences = preferences;
  $("#sampler").replaceChildren(el("option", { value: "", text: "Recommended" }),
    ...state.samplers.map((s) => el("option", { value: s.id, text: s.name })));
  fillModelPicker();
  if (!(preferences.default_model && selectModel(preferences.default_model))) modelChanged();
  if (!wired) wire();
}

export function setPreferences(preferences) {
  state.preferences = preferences;
  modelChanged();
}

export function shown() {
  $("#prompt").focus();
}

let wired = false;
function wire() {
  wired = true;
  tokens.watchPrompts(() => $("#model-version").value);
  keywords.watchKeywords();
  const form = $("#generate-form");
  form.addEventListener("submit", submit);
  form.addEventListener("input", () => estimateSoon());
  form.addEventListener("change", () => estimateSoon());
  form.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) submit(event);
  });
  $("#model-search").addEventListener("input", (e) => fillModelPicker(e.target.value));
  $("#model").addEventListener("change", fillVersions);
  $("#model-version").addEventListener("change", modelChanged);
  $("#size").addEventListener("change", sizeChosen);
  for (const id of ["#width", "#height"]) $(id).addEventListener("input", () => ($("#size").value = "custom"));
  $("#seed-reroll").addEventListener("click", () => {
    $("#seed").value = Math.floor(Math.random() * 2 ** 32);
    $("#seed-lock").checked = true;
  });
  $("#lora-add").addEventListener("click", () => $("#lora-pick").value && addLora($("#lora-pick").value));
  $("#strength").addEventListener("input", (e) => ($("#strength-out").textContent = e.target.value));
  $("#picture-file").addEventListener("change", (e) => takePicture(e.target.files[0]));
  $("#picture-remove").addEventListener("click", removePicture);
  $("#read-settings").addEventListener("click", readSettings);
  $("#paint-mode").addEventListener("change", (e) => mask.setMode(e.target.value));
  $("#brush-size").addEventListener("input", (e) => mask.setBrush(Number(e.target.value)));
  $("#mask-clear").addEventListener("click", () => mask.clear());
  $("#cancel-button").addEventListener("click", async () => {
    if (current) await api(`/v1/generations/${current}/cancel`, { method: "POST" }).catch((e) => toast(e.message));
  });
  const zone = $("#drop-zone");
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("#picture-file").click(); } });
  // a picture dropped anywhere on the Generate page is taken, not opened by the browser
  const page = $("#page-generate");
  page.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  page.addEventListener("dragleave", () => zone.classList.remove("over"));
  page.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const file = [...(e.dataTransfer?.files || [])][0];
    if (file) takePicture(file);
  });
  document.addEventListener("paste", (e) => {
    if (page.hidden) return;
    const file = [...(e.clipboardData?.files || [])].find((f) => f.type.startsWith("image/"));
    if (file) { e.preventDefault(); takePicture(file); }
  });
  onEvent((type, data) => {
    if (type === "job") updateJob(data);
    else if (type === "progress" && state.jobs.has(data.job_id)) {
      const job = state.jobs.get(data.job_id);
      job.status = "running";
      updateProgress(job, data);
    }
  });
}

