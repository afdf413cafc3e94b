// Workflows: a ComfyUI API graph (a JSON file, or a picture that carries one) saved under a
// name with the inputs a run may set; the saved ones listed, each run from a small form, its
// job followed on the event stream like any other.

import { api } from "./api.js";
import { $, clearErrors, el, showError } from "./ui.js";
import { onEvent, session } from "./main.js";

const state = { graph: null, valueInputs: {}, runs: new Map() };

// ---- adding one

async function readFile(file) {
  $("#workflow-read-error").textContent = "";
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const read = await api("/v1/workflows/graph", { method: "POST", form });
    state.graph = read.graph;
    state.valueInputs = read.value_inputs;
    const stem = file.name.replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9_.-]+/g, "-").replace(/^[^A-Za-z0-9]+/, "");
    $("#workflow-name").value = stem.slice(0, 64) || "workflow";
    renderNodes();
    $("#workflow-details").hidden = false;
    $("#workflow-name").focus();
  } catch (error) {
    $("#workflow-read-error").textContent = error.message;
  }
}

function byNumber(a, b) {
  return (Number(a) - Number(b)) || a.localeCompare(b);
}

function brief(value) {
  const text = typeof value === "string" ? JSON.stringify(value) : String(value);
  return text.length > 60 ? text.slice(0, 59) + "…" : text;
}

// What a first-time user most likely wants asked: the text of the prompt a sampler reads as
// positive, and the seed.
function suggested() {
  const picks = {};
  for (const [id, node] of Object.entries(state.graph)) {
    if (!["KSampler", "KSamplerAdvanced"].includes(node.class_type)) continue;
    const positive = node.inputs?.positive;
    if (Array.isArray(positive) && state.graph[positive[0]]?.class_type === "CLIPTextEncode") {
      picks[`${positive[0]}.text`] = "prompt";
    }
    picks[`${id}.${node.class_type === "KSampler" ? "seed" : "noise_seed"}`] = "seed";
    break;
  }
  return picks;
}

function renderNodes() {
  const picks = suggested();
  const used = new Set(Object.values(picks));
  const nodes = Object.keys(state.valueInputs).sort(byNumber).filter((id) => state.valueInputs[id].length);
  $("#workflow-nodes").replaceChildren(...nodes.map((id) => {
    const node = state.graph[id];
    const title = node._meta?.title && node._meta.title !== node.class_type ? ` “${node._meta.title}”` : "";
    return el("div", { class: "wf-node", "data-node": id },
      el("h3", { text: `Node ${id}: ${node.class_type}${title}` }),
      state.valueInputs[id].map((input) => {
        const key = `${id}.${input}`;
        let name = picks[key];
        if (!name) {
          name = used.has(input) ? `${input}_${id}` : input;
          used.add(name);
        }
        const value = node.inputs?.[input];
        return el("div", { class: "wf-input" },
          el("input", { type: "checkbox", "data-input": key, checked: key in picks, "aria-label": `Ask for ${input} of node ${id}` }),
          el("span", {}, el("strong", { text: input }), " ", el("span", { class: "value", text: value === undefined ? "(default)" : brief(value) })),
          el("input", { type: "text", value: name, maxlength: 64, "data-name-for": key, "aria-label": `Name of ${input} of node ${id} in the form` }));
      }));
  }));
}

function exposed() {
  const inputs = {};
  for (const box of document.querySelectorAll("#workflow-nodes [data-input]")) {
    if (!box.checked) continue;
    const [node, ...rest] = box.dataset.input.split(".");
    const name = document.querySelector(`[data-name-for="${CSS.escape(box.dataset.input)}"]`).value.trim();
    inputs[name] = [node, rest.join(".")];
  }
  return inputs;
}

function nodeErrors(data) {
  const items = [];
  for (const [id, entry] of Object.entries(data?.node_errors || {})) {
    for (const error of entry.errors || []) {
      const input = error.extra_info?.input_name;
      items.push(el("li", { text: `Node ${id} (${entry.class_type})${input ? `, ${input}` : ""}: ${error.message}${error.details ? ` (${error.details})` : ""}` }));
    }
  }
  return items;
}

async function save(event) {
  event.preventDefault();
  const form = event.target;
  clearErrors(form);
  $("#workflow-node-errors").replaceChildren();
  const body = {
    name: $("#workflow-name").value.trim(),
    description: $("#workflow-description").value.trim(),
    graph: state.graph,
    inputs: exposed(),
  };
  try {
    await api("/v1/workflows", { method: "POST", json: body });
    reset();
    await refresh();
  } catch (error) {
    const field = /name/i.test(error.message) && !error.data?.node_errors ? "name" : null;
    showError(error, form, form.querySelector("[data-error]"), field);
    $("#workflow-node-errors").replaceChildren(...nodeErrors(error.data));
  }
}

function reset() {
  state.graph = null;
  $("#workflow-new").reset();
  $("#workflow-details").hidden = true;
  $("#workflow-nodes").replaceChildren();
  $("#workflow-node-errors").replaceChildren();
  clearErrors($("#workflow-new"));
}

// ---- the saved ones

function path(workflow, tail = "") {
  const owner = workflow.mine ? "" : `?owner=${encodeURIComponent(workflow.owner)}`;
  return `/v1/workflows/${encodeURIComponent(workflow.name)}${tail}${owner}`;
}

function field(workflow, name) {
  const value = workflow.defaults[name];
  const id = `wf-${workflow.id}-${name}`;
  let control;
  if (typeof value === "number") {
    control = el("input", { id, name, type: "number", step: "any", placeholder: String(value) });
  } else if (typeof value === "string" && (value.length > 40 || /text|prompt/i.test(name))) {
    control = el("textarea", { id, name, rows: 2, placeholder: value });
  } else {
    control = el("input", { id, name, type: "text", placeholder: value === undefined || value === null ? "" : String(value) });
  }
  return [el("label", { for: id, text: name }), control];
}

function card(workflow) {
  // texts (the prompt) first: what a run most often changes
  const texts = (name) => typeof workflow.defaults[name] === "string";
  const names = Object.keys(workflow.inputs).sort((a, b) => texts(b) - texts(a));
  const status = el("p", { class: "small", role: "status", "data-status": "" });
  const thumbs = el("div", { class: "thumbs" });
  const error = el("p", { class: "error", role: "alert", "data-error": "" });
  const form = el("form", { class: "wf-run stack", novalidate: true, onsubmit: (e) => run(e, workflow, status, thumbs, error) },
    names.length ? names.map((name) => field(workflow, name)) : el("p", { class: "muted small", text: "It asks for nothing: it runs as saved." }),
    el("div", { class: "row wrap" },
      el("button", { type: "submit", class: "primary", text: "Run", "aria-label": `Run ${workflow.name}` }),
      (workflow.mine || (session.user.is_admin && workflow.published))
        ? el("button", { type: "button", class: "danger", text: "Delete", "aria-label": `Delete ${workflow.name}`, onclick: () => remove(workflow, error) })
        : null,
      session.user.is_admin
        ? el("button", { type: "button", text: workflow.published ? "Unpublish" : "Publish", "aria-label": `${workflow.published ? "Unpublish" : "Publish"} ${workflow.name}`, onclick: () => publish(workflow, error) })
        : null),
    error, status, thumbs);
  return el("li", { "aria-label": workflow.name, "data-workflow": workflow.name },
    el("h2", { text: workflow.name }),
    el("p", {},
      workflow.published ? el("span", { class: "tag", text: "published" }) : null,
      workflow.mine ? null : el("span", { class: "tag", text: `by ${workflow.owner}` }),
      el("span", { class: "tag", text: `${workflow.nodes} nodes` })),
    workflow.description ? el("p", { class: "small", text: workflow.description }) : null,
    form);
}

function values(form, workflow) {
  const given = {};
  for (const name of Object.keys(workflow.inputs)) {
    const control = form.elements.namedItem(name);
    const raw = control?.value ?? "";
    if (raw === "") continue; // the value saved in the graph
    given[name] = control.type === "number" ? Number(raw) : raw;
  }
  return given;
}

async function run(event, workflow, status, thumbs, error) {
  event.preventDefault();
  error.textContent = "";
  thumbs.replaceChildren();
  try {
    const job = await api(path(workflow, "/runs"), { method: "POST", json: { inputs: values(event.target, workflow) } });
    state.runs.set(job.id, { status, thumbs, error });
    update(job);
    // a short job may have ended before its answer came: its events went by untracked
    update(await api(`/v1/generations/${job.id}`));
  } catch (failure) {
    error.textContent = failure.message;
    const items = nodeErrors(failure.data);
    if (items.length) error.textContent += " " + items.map((i) => i.textContent).join(" ");
  }
}

function update(job) {
  const run = state.runs.get(job.id);
  if (!run) return;
  if (job.status === "queued") {
    run.status.textContent = job.queue_position ? `Queued: number ${job.queue_position} in line.` : "Queued.";
  } else if (job.status === "running") {
    const p = job.progress;
    run.status.textContent = p ? `Running: step ${p.step} of ${p.total}.` : "Running.";
  } else if (job.status === "succeeded") {
    run.status.replaceChildren(`Done: ${job.images.length} picture${job.images.length === 1 ? "" : "s"}, in `,
      el("a", { href: "#history", text: "your history" }), ".");
    run.thumbs.replaceChildren(...job.images.map((image) =>
      el("a", { href: image.url, target: "_blank", rel: "noopener" },
        el("img", { src: image.thumbnail_url, alt: `Picture ${image.id.slice(0, 8)}`, width: 96, height: 96 }))));
    state.runs.delete(job.id);
  } else {
    run.status.textContent = job.status === "cancelled" ? "Cancelled." : "";
    run.error.textContent = job.error?.message || "";
    state.runs.delete(job.id);
  }
}

async function remove(workflow, error) {
  if (!confirm(`Delete the workflow ${workflow.name}?`)) return;
  try {
    await api(path(workflow), { method: "DELETE" });
    await refresh();
  } catch (failure) {
    error.textContent = failure.message;
  }
}

async function publish(workflow, error) {
  try {
    await api(path(workflow, workflow.published ? "/unpublish" : "/publish"), { method: "POST" });
    await refresh();
  } catch (failure) {
    error.textContent = failure.message;
  }
}

async function refresh() {
  try {
    const { workflows } = await api("/v1/workflows");
    $("#workflows-error").textContent = "";
    $("#workflow-list").replaceChildren(...workflows.map(card));
    if (!workflows.length) $("#workflow-list").append(el("li", { text: "No workflow yet: add one above." }));
  } catch (error) {
    $("#workflows-error").textContent = error.message;
  }
}

export function init() {
  const zone = $("#workflow-drop");
  $("#workflow-file").addEventListener("change", (e) => e.target.files[0] && readFile(e.target.files[0]));
  zone.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("#workflow-file").click(); }
  });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const file = [...(e.dataTransfer?.files || [])][0];
    if (file) readFile(file);
  });
  $("#workflow-new").addEventListener("submit", save);
  $("#workflow-cancel").addEventListener("click", reset);
  onEvent((type, data) => {
    if (type === "job") update(data);
    else if (type === "progress" && state.runs.has(data.job_id)) {
      state.runs.get(data.job_id).status.textContent = `Running: step ${data.step} of ${data.total}.`;
    }
  });
}

export function shown() {
  return refresh();
}
