// Models: browse by family and category, a card each, "use this model".

import { api } from "./api.js";
import { $, el, FAMILY_LABELS } from "./ui.js";
import { selectModel } from "./generate.js";

let models = [];
// words every prompt has: not what makes a model's keywords worth knowing
const COMMON = new Set(["a", "an", "the", "on", "in", "of", "and", "with", "at", "to", "by", "for", "picture", "image", "photo"]);

function render() {
  const family = $("#models-family").value;
  const category = $("#models-category").value;
  const words = $("#models-search").value.toLowerCase().split(/\s+/).filter(Boolean);
  const shown = models.filter((m) => (!family || m.family === family) && (!category || m.category === category)
    && words.every((w) => [m.name, m.lineage, m.description, m.category, ...Object.keys(m.keywords || {})].join(" ").toLowerCase().includes(w)));
  $("#model-cards").replaceChildren(...shown.map(card));
  if (!shown.length) $("#model-cards").append(el("li", { text: "No model matches." }));
}

function card(model) {
  const d = model.defaults || {};
  const keywords = Object.keys(model.keywords || {}).filter((w) => !COMMON.has(w.toLowerCase())).slice(0, 12);
  return el("li", { "aria-label": model.name },
    el("h2", { text: model.lineage + (model.version ? ` ${model.version}` : "") }),
    el("p", {}, el("span", { class: "tag", text: FAMILY_LABELS[model.family] || model.family }),
      model.category ? el("span", { class: "tag", text: model.category }) : null),
    el("p", { class: "small", text: model.description.split("\n\n")[0].replace(/\n/g, " ").slice(0, 320) }),
    el("p", { class: "small muted", text: `Recommended: ${d.width}×${d.height}, ${d.steps} steps, guidance ${d.guidance}, ${d.sampler}` }),
    model.versions.length > 1 ? el("p", { class: "small", text: `Versions: ${model.versions.join(", ")}` }) : null,
    keywords.length ? el("p", { class: "keywords", text: `Keywords: ${keywords.join(", ")}` }) : null,
    el("button", { type: "button", class: "primary", text: "Use this model", onclick: () => { selectModel(model.name); location.hash = "#generate"; } }));
}

export async function init() {
  models = (await api("/v1/models")).models.filter((m) => !m.broken);
  const families = [...new Set(models.map((m) => m.family))];
  const categories = [...new Set(models.map((m) => m.category).filter(Boolean))].sort();
  $("#models-family").replaceChildren(el("option", { value: "", text: "All families" }),
    ...families.map((f) => el("option", { value: f, text: FAMILY_LABELS[f] || f })));
  $("#models-category").replaceChildren(el("option", { value: "", text: "All categories" }),
    ...categories.map((c) => el("option", { value: c, text: c })));
  for (const id of ["#models-family", "#models-category"]) $(id).onchange = render;
  $("#models-search").oninput = render;
  $("#models-filters").onsubmit = (e) => e.preventDefault();
  render();
}
