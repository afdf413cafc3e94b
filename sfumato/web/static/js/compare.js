// Compare: the same prompt and seed side by side over up to three axes (a comparison grid),
// or a prompt matrix. Before it starts, the server says how many pictures it will make and
// about how long that takes here; then it runs as one job, followed on the event stream.

import { api } from "./api.js";
import { $, el, showError } from "./ui.js";
import { onEvent } from "./main.js";

const AXES = ["x", "y", "z"];
let current = null; // the grid job the page follows
let planning = 0;

function body() {
  const value = (id) => $(id).value.trim();
  const fields = { prompt: value("#compare-prompt"), matrix: $("#compare-matrix").checked };
  if (value("#compare-model")) fields.model = value("#compare-model");
  if (value("#compare-seed")) fields.seed = Number(value("#compare-seed"));
  if (value("#compare-steps")) fields.steps = Number(value("#compare-steps"));
  for (const axis of AXES) {
    const name = $(`#compare-${axis}-name`).value;
    const values = value(`#compare-${axis}-values`);
    if (name && values && !(fields.matrix && axis !== "z")) fields[axis] = `${name}=${values}`;
  }
  return fields;
}

// what the grid would make, asked again (debounced) whenever the form changes
async function plan() {
  const asked = ++planning;
  const summary = $("#compare-summary");
  const fields = body();
  $("#compare-error").textContent = "";
  if (!fields.prompt) {
    summary.textContent = "Type a prompt, then choose what changes across and down.";
    $("#compare-start").disabled = true;
    return;
  }
  try {
    const planned = await api("/v1/grids/plan", { method: "POST", json: fields });
    if (asked !== planning) return;
    const time = planned.estimate_s === null ? "the time is known after a first picture"
      : `about ${planned.estimate_s < 90 ? `${Math.max(1, Math.round(planned.estimate_s))} s`
        : `${Math.round(planned.estimate_s / 60)} min`}`;
    summary.textContent = `${planned.cells} pictures and the grid · ${time} · seed ${planned.seed}`;
    $("#compare-start").disabled = false;
  } catch (error) {
    if (asked !== planning) return;
    summary.textContent = "";
    $("#compare-error").textContent = error.message;
    $("#compare-start").disabled = true;
  }
}

let timer = null;
function replan() {
  clearTimeout(timer);
  timer = setTimeout(plan, 300);
}

async function start(event) {
  event.preventDefault();
  const button = $("#compare-start");
  button.disabled = true;
  try {
    const job = await api("/v1/grids", { method: "POST", json: body() });
    current = job.id;
    $("#compare-result").replaceChildren(el("p", { class: "muted", text: "Queued…" }));
  } catch (error) {
    showError(error, $("#compare-form"), $("#compare-error"));
  } finally {
    button.disabled = false;
  }
}

function follow(type, data) {
  if (!current) return;
  if (type === "progress" && data.job_id === current) {
    const percent = Math.round((100 * data.step) / data.total);
    $("#compare-result").replaceChildren(
      el("p", { class: "muted", text: `Making the cells… ${percent} %` }),
      el("progress", { max: data.total, value: data.step, "aria-label": "Grid progress" }));
  }
  if (type === "job" && data.id === current && ["succeeded", "failed", "cancelled"].includes(data.status)) {
    current = null;
    const pictures = data.images || [];
    if (data.status !== "succeeded") {
      $("#compare-result").replaceChildren(el("p", { class: "error", role: "alert",
        text: data.error?.message || `The grid was ${data.status}; its finished cells are in the history.` }));
      return;
    }
    const grid = pictures[pictures.length - 1];
    $("#compare-result").replaceChildren(
      el("img", { src: grid.url, alt: `Comparison grid of ${pictures.length - 1} pictures`, id: "compare-grid" }),
      el("p", { class: "small muted", text: "Each cell is in your history with its own settings." }));
  }
}

export async function init() {
  const models = (await api("/v1/models")).models.filter((m) => !m.broken);
  $("#compare-model").replaceChildren(el("option", { value: "", text: "Default model" }),
    ...models.map((m) => el("option", { value: m.name, text: m.name })));
  $("#compare-form").addEventListener("input", replan);
  $("#compare-form").addEventListener("change", replan);
  $("#compare-form").addEventListener("submit", start);
  onEvent(follow);
}

export function shown() {
  plan();
}
