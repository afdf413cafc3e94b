// Account: log out, your limits, preferences per family, API keys.

import { api } from "./api.js";
import { $, clearErrors, el, FAMILY_LABELS, QUOTAS, showError, toast } from "./ui.js";
import { loggedOut, session } from "./main.js";
import { setPreferences } from "./generate.js";

const FIELDS = [
  ["negative_prompt", "Negative prompt", "textarea"],
  ["steps", "Steps", "number"],
  ["guidance", "Guidance", "number"],
  ["sampler", "Sampler", "sampler"],
  ["width", "Width", "number"],
  ["height", "Height", "number"],
];
let samplers = [];

function familyFieldset(family, saved) {
  const box = el("div", { class: "stack" });
  const section = el("details", { "data-family": family, open: Boolean(saved && Object.keys(saved).length) },
    el("summary", { text: FAMILY_LABELS[family] }), box);
  for (const [name, label, kind] of FIELDS) {
    const id = `pref-${family}-${name}`;
    let input;
    if (kind === "textarea") input = el("textarea", { id, rows: 2 });
    else if (kind === "sampler") {
      input = el("select", { id }, el("option", { value: "", text: "The model's recommended one" }),
        ...samplers.map((s) => el("option", { value: s.id, text: s.name })));
    } else input = el("input", { id, type: "number", step: name === "guidance" ? "0.5" : "1", placeholder: "the model's" });
    input.dataset.field = name;
    input.value = saved?.[name] ?? "";
    box.append(el("label", { for: id, text: label }), input);
  }
  return section;
}

async function loadPreferences() {
  const [preferences, models, sampled] = await Promise.all([
    api("/v1/me/preferences"), api("/v1/models"), api("/v1/samplers"),
  ]);
  samplers = sampled.samplers;
  $("#pref-model").replaceChildren(el("option", { value: "", text: "The server's default" }),
    ...models.models.map((m) => el("option", { value: m.lineage, text: m.lineage })));
  $("#pref-model").value = preferences.default_model || "";
  $("#pref-families").replaceChildren(...Object.keys(FAMILY_LABELS).map((f) => familyFieldset(f, preferences.families?.[f])));
}

async function savePreferences(event) {
  event.preventDefault();
  const form = event.target;
  clearErrors(form);
  const families = {};
  for (const box of form.querySelectorAll("[data-family]")) {
    const values = {};
    for (const input of box.querySelectorAll("[data-field]")) {
      if (input.value === "") continue;
      values[input.dataset.field] = input.type === "number" ? Number(input.value) : input.value;
    }
    if (Object.keys(values).length) families[box.dataset.family] = values;
  }
  try {
    const saved = await api("/v1/me/preferences", { method: "PUT", json: { default_model: $("#pref-model").value || null, families } });
    setPreferences(saved);
    $("#pref-saved").textContent = "Saved.";
    setTimeout(() => ($("#pref-saved").textContent = ""), 3000);
  } catch (error) {
    showError(error, null, form.querySelector("[data-error]"));
  }
}

async function loadKeys() {
  const { keys } = await api("/v1/keys");
  $("#keys").replaceChildren(...keys.map((key) => el("li", { "data-key": key.id },
    el("span", {}, el("strong", { text: key.name }), ` ${key.prefix}… · made ${new Date(key.created_at).toLocaleDateString()}`,
      key.last_used_at ? ` · last used ${new Date(key.last_used_at).toLocaleDateString()}` : " · never used"),
    key.revoked ? el("span", { class: "muted", text: "revoked" })
      : el("button", { type: "button", class: "danger", text: "Revoke", "aria-label": `Revoke ${key.name}`, onclick: () => revoke(key) }))));
  if (!keys.length) $("#keys").append(el("li", { class: "muted", text: "No keys yet." }));
}

async function revoke(key) {
  try {
    await api(`/v1/keys/${key.id}`, { method: "DELETE" });
    toast(`${key.name} revoked: it no longer works.`);
    await loadKeys();
  } catch (error) { toast(error.message); }
}

async function createKey(event) {
  event.preventDefault();
  $("#key-error").textContent = "";
  try {
    const made = await api("/v1/keys", { method: "POST", json: { name: $("#key-name").value.trim() || "my key" } });
    $("#new-key-value").textContent = made.key;
    $("#new-key").hidden = false;
    $("#key-name").value = "";
    $("#curl-example").textContent = curl(made.key);
    await loadKeys();
  } catch (error) {
    $("#key-error").textContent = error.message;
  }
}

function curl(key = "YOUR_KEY") {
  return `curl ${location.origin}/v1/generations \\\n  -H "Authorization: Bearer ${key}" \\\n  -H "Content-Type: application/json" \\\n  -d '{"prompt": "a lighthouse at dusk"}'\n\n# Dezgo clients: change the base URL to ${location.origin}\ncurl ${location.origin}/text2image -H "X-Dezgo-Key: ${key}" -F prompt="a lighthouse" -o picture.png`;
}

// The limits the admin set on this account, each beside what is used of it; an unlimited one is
// not listed (none at all: the card says so).
function renderQuotas(quotas) {
  $("#quotas").hidden = !quotas;
  if (!quotas) return;  // a server without quotas
  const items = [];
  for (const [name, label, unit, usageName] of QUOTAS) {
    const limit = quotas.limits?.[name];
    if (limit === null || limit === undefined) continue;
    const used = usageName ? quotas.usage?.[usageName] : undefined;
    if (used === undefined || used === null) {
      items.push(el("li", { "data-quota": name }, el("span", { text: label }), el("span", { text: `at most ${limit} ${unit}` })));
      continue;
    }
    const full = used >= limit;
    items.push(el("li", { "data-quota": name, class: full ? "full" : null },
      el("span", { text: label }),
      el("span", { class: "quota-use" },
        el("meter", { min: 0, max: Math.max(limit, 1), value: Math.min(used, limit), low: limit * 0.8, high: limit * 0.95, optimum: 0, "aria-label": `${label}: ${used} of ${limit} ${unit}` }),
        el("span", { text: `${formatNumber(used)} of ${formatNumber(limit)} ${unit}` }))));
  }
  $("#quota-list").replaceChildren(...(items.length ? items : [el("li", { class: "muted", text: "No limits on your account." })]));
}

function formatNumber(value) {
  return Number.isInteger(value) ? value.toLocaleString() : value.toLocaleString(undefined, { maximumFractionDigits: 1 });
}

// Usage changes as the user works: read again each time the page shows.
export async function shown() {
  try {
    renderQuotas((await api("/v1/me")).quotas);
  } catch { /* the page still works without it */ }
}

let wired = false;
export async function init() {
  $("#account-name").textContent = session.user.username + (session.personal ? " (personal mode)" : "");
  $("#logout").hidden = session.personal;
  $("#curl-example").textContent = curl();
  await Promise.all([loadPreferences(), loadKeys()]);
  if (wired) return;
  wired = true;
  $("#preferences").addEventListener("submit", savePreferences);
  $("#key-form").addEventListener("submit", createKey);
  $("#key-copy").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText($("#new-key-value").textContent);
      toast("Copied.");
    } catch {
      const range = document.createRange();
      range.selectNodeContents($("#new-key-value"));
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      toast("Selected: press Ctrl+C to copy.");
    }
  });
  $("#logout").addEventListener("click", async () => {
    await api("/v1/auth/logout", { method: "POST" }).catch(() => {});
    $("#new-key").hidden = true;
    loggedOut();
  });
}
