// History: every picture, newest first, loading more as you scroll; filters; a picture opened
// with all its settings; favourites; upscaling; deleting one or many at once.

import { api } from "./api.js";
import { $, el, paramsList, toast } from "./ui.js";
import { onEvent } from "./main.js";
import { applySettings } from "./generate.js";

const state = { cursor: null, loading: false, done: false, selecting: false, stale: true };
const upscales = new Set(); // the upscale jobs started here, followed until they end
let upscalers = null; // GET /v1/upscalers, read once
let observer = null;

function filters() {
  return {
    model: $("#history-model").value,
    q: $("#history-text").value.trim(),
    favourite: $("#history-favourites").checked ? true : undefined,
  };
}

async function reload() {
  state.cursor = null;
  state.done = false;
  $("#history-grid").replaceChildren();
  $("#history-end").textContent = "";
  await more();
}

async function more() {
  if (state.loading || state.done) return;
  state.loading = true;
  try {
    const page = await api("/v1/images", { query: { ...filters(), limit: 40, cursor: state.cursor } });
    $("#retention").textContent = page.retention.description;
    $("#history-grid").append(...page.images.map(tile));
    state.cursor = page.next_cursor;
    state.done = !page.next_cursor;
    if (state.done) {
      $("#history-end").textContent = page.total
        ? `${page.total} picture${page.total === 1 ? "" : "s"}.`
        : "No pictures yet" + (filters().q || filters().model || filters().favourite ? " match these filters." : ": make one on the Generate page.");
    }
  } catch (error) {
    $("#history-error").textContent = error.message;
  } finally {
    state.loading = false;
  }
}

function tile(image) {
  const pick = el("input", { type: "checkbox", class: "pick", "aria-label": `Select the picture of ${image.prompt.slice(0, 60)}`, hidden: !state.selecting, value: image.id });
  const item = el("li", { "data-image": image.id },
    el("button", { type: "button", class: "thumb", "aria-label": `Open: ${image.prompt.slice(0, 80)} (seed ${image.seed})`, onclick: () => (state.selecting ? (pick.checked = !pick.checked) : open(image, item)) },
      el("img", { src: image.thumbnail_url, alt: "", loading: "lazy", width: 256, height: 256 })),
    pick,
    image.favourite ? el("span", { class: "fav", "aria-label": "favourite", text: "★" }) : null);
  return item;
}

function open(image, item) {
  const dialog = $("#image-dialog");
  $("#dialog-image").src = image.url;
  $("#dialog-image").alt = image.prompt;
  const about = { Model: image.model, Made: new Date(image.created_at).toLocaleString() };
  if (image.source_image_id) about.Upscaled = `${image.width}x${image.height}, from an earlier picture`;
  $("#dialog-details").replaceChildren(paramsList(image.settings, about));
  const favourite = el("button", { type: "button", text: image.favourite ? "★ Favourite" : "☆ Favourite", "aria-pressed": String(image.favourite) });
  favourite.addEventListener("click", async () => {
    try {
      const updated = await api(`/v1/images/${image.id}`, { method: "PATCH", json: { favourite: !image.favourite } });
      image.favourite = updated.favourite;
      favourite.textContent = image.favourite ? "★ Favourite" : "☆ Favourite";
      favourite.setAttribute("aria-pressed", String(image.favourite));
      item.replaceWith((item = tile(image)));
    } catch (error) { toast(error.message); }
  });
  $("#dialog-actions").replaceChildren(
    el("a", { href: image.url, download: `sfumato-${image.seed}.${image.format}`, class: "button-like", text: "Download" }),
    el("button", { type: "button", text: "Reuse settings", onclick: () => { dialog.close(); applySettings(image.settings, image.model); location.hash = "#generate"; } }),
    favourite,
    upscaleControl(image),
    el("button", { type: "button", class: "danger", text: "Delete", onclick: async () => {
      try {
        await api(`/v1/images/${image.id}`, { method: "DELETE" });
        item.remove();
        dialog.close();
        toast("Deleted.");
      } catch (error) { toast(error.message); }
    } }));
  dialog.showModal();
}

// "Upscale": the picture made larger by a factor with an upscaler; the result is a new picture
// of the history, opened when it is ready
function upscaleControl(image) {
  const factor = el("select", { "aria-label": "Upscale by" },
    ...[2, 3, 4].map((n) => el("option", { value: n, text: `${n}x` })));
  const upscaler = el("select", { "aria-label": "Upscaler" },
    ...(upscalers || [{ name: "Lanczos" }]).map((u) => el("option", { value: u.name, text: u.scale ? `${u.name} (${u.scale}x)` : u.name })));
  const button = el("button", { type: "button", text: "Upscale", onclick: async () => {
    button.disabled = true;
    try {
      const job = await api("/v1/upscales", { method: "POST", json: { image_id: image.id, scale: Number(factor.value), upscaler: upscaler.value } });
      upscales.add(job.id);
      toast(`Upscaling to ${image.width * factor.value}x${image.height * factor.value}: it opens when ready.`);
    } catch (error) {
      toast(error.message);
    } finally {
      button.disabled = false;
    }
  } });
  return el("span", { class: "row upscale" }, factor, upscaler, button);
}

async function upscaleEnded(job) {
  upscales.delete(job.id);
  if (job.status !== "succeeded") {
    toast(job.error?.message || "The upscale was cancelled.");
    return;
  }
  await reload();
  const made = job.images[0];
  const item = document.querySelector(`#history-grid [data-image="${made.id}"]`);
  const dialog = $("#image-dialog");
  if (dialog.open) dialog.close();
  open(made, item || el("li"));
}

function toggleSelecting() {
  state.selecting = !state.selecting;
  $("#history-select").textContent = state.selecting ? "Done selecting" : "Select";
  $("#history-delete").hidden = !state.selecting;
  document.querySelectorAll("#history-grid .pick").forEach((box) => {
    box.hidden = !state.selecting;
    box.checked = false;
  });
}

async function deleteSelected() {
  const boxes = [...document.querySelectorAll("#history-grid .pick:checked")];
  if (!boxes.length) {
    toast("Select the pictures to delete first.");
    return;
  }
  try {
    const answer = await api("/v1/images/delete", { method: "POST", json: { ids: boxes.map((b) => b.value) } });
    boxes.forEach((box) => box.closest("li").remove());
    toast(`Deleted ${answer.deleted} picture${answer.deleted === 1 ? "" : "s"}.`);
  } catch (error) {
    $("#history-error").textContent = error.message;
  }
}

export async function init() {
  const models = await api("/v1/models");
  upscalers = (await api("/v1/upscalers")).upscalers.filter((u) => !u.broken);
  $("#history-model").replaceChildren(el("option", { value: "", text: "All models" }),
    ...models.models.map((m) => el("option", { value: m.name, text: m.name })));
  if (observer) return;
  let typing;
  $("#history-text").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(reload, 300); });
  $("#history-model").addEventListener("change", reload);
  $("#history-favourites").addEventListener("change", reload);
  $("#history-filters").addEventListener("submit", (e) => { e.preventDefault(); reload(); });
  $("#history-select").addEventListener("click", toggleSelecting);
  $("#history-delete").addEventListener("click", deleteSelected);
  $("#dialog-close").addEventListener("click", () => $("#image-dialog").close());
  observer = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && more());
  observer.observe($("#history-end"));
  onEvent((type, data) => {
    if (type !== "job") return;
    if (data.status === "succeeded") state.stale = true;
    if (upscales.has(data.id) && ["succeeded", "failed", "cancelled"].includes(data.status)) upscaleEnded(data);
  });
}

export function shown() {
  if (state.stale) {
    state.stale = false;
    reload();
  }
}
