// Admin: the users (disable, roles, passwords, quotas), the site's settings, the audit log and
// everyone's queue. Only admins see it; the server refuses everyone else whatever the page does.

import { api } from "./api.js";
import { $, clearErrors, el, QUOTAS, toast, when } from "./ui.js";
import { loggedOut, session } from "./main.js";

const TABS = { users: loadUsers, settings: loadSettings, audit: reloadAudit, queue: loadQueue };
const QUEUE_REFRESH_MS = 3000;
// offered in the audit log's filter, which also takes an action's beginning ("user.", "login")
const AUDIT_ACTIONS = ["login", "login.succeeded", "login.failed", "login.locked", "signup", "logout", "key.created",
  "key.revoked", "password.changed", "password.reset", "settings.changed", "user.", "user.disabled", "user.enabled",
  "user.admin_granted", "user.admin_revoked", "user.quotas_changed", "user.renamed", "history.deleted"];
const state = { tab: "users", site: null, models: [], audit: { cursor: null, loading: false, version: 0 }, queueTimer: null, queueBusy: false };

// ---- one dialog for every question: a confirmation, a password, a user's quotas

// Opens the dialog; ``submit(form)`` runs on OK (the API call), and the dialog stays open with
// the server's sentence if it fails. Resolves true once it succeeded, false when cancelled.
function ask({ title, body = [], ok = "OK", danger = false, submit }) {
  const dialog = $("#admin-dialog");
  const form = $("#admin-dialog-form");
  const button = $("#admin-dialog-ok");
  if (dialog.open) return Promise.resolve(false);  // one question at a time (a double click)
  clearErrors(form);
  $("#admin-dialog-title").textContent = title;
  $("#admin-dialog-body").replaceChildren(...body);
  button.textContent = ok;
  button.className = danger ? "danger" : "primary";
  return new Promise((resolve) => {
    let done = false;
    form.onsubmit = async (event) => {
      event.preventDefault();
      clearErrors(form);
      button.disabled = true;
      try {
        await submit(form);
        done = true;
        dialog.close();
      } catch (error) {
        form.querySelector("[data-error]").textContent = error.message;
      } finally {
        button.disabled = false;
      }
    };
    $("#admin-dialog-cancel").onclick = () => dialog.close();
    dialog.onclose = () => resolve(done);
    dialog.showModal();
    (form.querySelector("#admin-dialog-body input") || button).focus();
  });
}

// ---- users

// A table cell, labelled for the phone width where each row is shown as a card.
function cell(label, ...children) {
  return el("td", { "data-label": label }, el("span", {}, ...children));
}

async function loadUsers() {
  $("#users-error").textContent = "";
  try {
    const [{ users }, site] = await Promise.all([api("/v1/admin/users"), state.site || api("/v1/admin/settings")]);
    state.site = site;
    $("#users-table tbody").replaceChildren(...users.map(userRow));
  } catch (error) {
    $("#users-error").textContent = error.message;
  }
}

function userRow(user) {
  const you = user.id === session.user.id;
  const name = user.username;
  const overrides = overridesOf(user);
  const custom = Object.keys(overrides).length;
  return el("tr", { "data-user": user.id, "data-username": name, class: user.disabled ? "disabled" : null },
    cell("Name", el("strong", { text: name }), you ? " (you)" : null),
    cell("Role", user.is_admin ? "admin" : "user"),
    cell("Status", user.disabled ? "disabled" : "active", custom ? [" ", el("span", { class: "tag", text: `${custom} own quota${custom === 1 ? "" : "s"}` })] : null),
    cell("Pictures", String(user.images ?? "")),
    cell("Keys", String(user.keys ?? "")),
    cell("Last login", when(user.last_login_at) || "never"),
    el("td", { class: "actions" }, el("div", { class: "row wrap" },
      el("button", { type: "button", "data-action": "disable", class: user.disabled ? null : "danger",
        text: user.disabled ? "Enable" : "Disable", "aria-label": `${user.disabled ? "Enable" : "Disable"} ${name}`, onclick: () => toggleDisabled(user) }),
      el("button", { type: "button", "data-action": "admin", text: user.is_admin ? "Remove admin" : "Make admin",
        "aria-label": `${user.is_admin ? "Remove admin from" : "Make admin:"} ${name}`, onclick: () => toggleAdmin(user) }),
      el("button", { type: "button", "data-action": "password", text: "Reset password", "aria-label": `Reset the password of ${name}`, onclick: () => resetPassword(user) }),
      el("button", { type: "button", "data-action": "quotas", text: "Quotas", "aria-label": `Quotas of ${name}`, onclick: () => editQuotas(user) }))));
}

// A user's own quotas (the admin's overrides of the site's): {name: limit, or null for
// unlimited}; a limit left out is the site's.
function overridesOf(user) {
  return user.quotas || {};
}

async function changeUser(user, changes) {
  return api(`/v1/admin/users/${user.id}`, { method: "PATCH", json: changes });
}

async function toggleDisabled(user) {
  $("#users-error").textContent = "";
  if (user.disabled) {
    try {
      await changeUser(user, { disabled: false });
      toast(`${user.username} can log in again.`);
    } catch (error) {
      $("#users-error").textContent = error.message;
    }
  } else {
    const confirmed = await ask({
      title: `Disable ${user.username}?`,
      body: [el("p", { text: "They can no longer log in, their sessions end and their API keys stop working. Their pictures are kept; you can enable them again." })],
      ok: "Disable", danger: true,
      submit: () => changeUser(user, { disabled: true }),
    });
    if (!confirmed) return;
    toast(`${user.username} is disabled.`);
  }
  await loadUsers();
}

async function toggleAdmin(user) {
  const making = !user.is_admin;
  const confirmed = await ask({
    title: making ? `Make ${user.username} an admin?` : `Remove admin from ${user.username}?`,
    body: [el("p", { text: making
      ? "An admin sees and changes every user, the site's settings, the audit log and everyone's queue."
      : "They keep their account and pictures, and lose the admin screens." })],
    ok: making ? "Make admin" : "Remove admin", danger: !making,
    submit: () => changeUser(user, { is_admin: making }),
  });
  if (confirmed) await loadUsers();
}

async function resetPassword(user) {
  const confirmed = await ask({
    title: `New password for ${user.username}`,
    body: [
      el("label", { for: "reset-password", text: "New password" }),
      el("input", { id: "reset-password", name: "password", type: "password", autocomplete: "new-password", required: true }),
      el("label", { class: "inline" }, el("input", { id: "reset-revoke", name: "revoke_keys", type: "checkbox", checked: true }),
        "Also revoke their API keys"),
      el("p", { class: "muted small", text: user.id === session.user.id
        ? "Your own: every session of yours ends, this one too, and you log in again."
        : "Tell them the new password yourself; they are logged out everywhere." }),
    ],
    ok: "Set the password", danger: true,
    submit: (form) => api(`/v1/admin/users/${user.id}/password`, { method: "POST",
      json: { password: form.querySelector("#reset-password").value, revoke_keys: form.querySelector("#reset-revoke").checked } }),
  });
  if (!confirmed) return;
  if (user.id === session.user.id) return loggedOut();  // this session ended with the old password
  toast(`${user.username} has a new password.`);
  await loadUsers();
}

// One row per quota: a number, and (``unlimitedBox``) a box for "unlimited", which a user's
// own quotas need since their empty row means the site's default.
function quotaRow(prefix, [name, label, unit], value, placeholder, unlimitedBox = true) {
  const id = `${prefix}-${name}`;
  const unlimited = unlimitedBox && value === null;
  const input = el("input", { id, type: "number", min: 0, step: 1, inputmode: "numeric", value: value === null || value === undefined ? "" : String(value),
    placeholder, disabled: unlimited, "data-quota": name });
  const box = unlimitedBox ? el("input", { id: `${id}-unlimited`, type: "checkbox", checked: unlimited, "data-unlimited": name,
    onchange: () => { input.disabled = box.checked; if (box.checked) input.value = ""; } }) : null;
  return el("div", { class: "quota-row" },
    el("label", { for: id }, label, el("span", { class: "muted small", text: ` (${unit})` })),
    el("div", { class: "row" }, input, box ? el("label", { class: "inline", for: `${id}-unlimited` }, box, "unlimited") : null),
    el("p", { class: "error", role: "alert", "data-error-for": `quotas.${name}` }));
}

// The rows' values: {name: number | null (unlimited)}; an empty row is left out (the default).
function readQuotas(root) {
  const values = {};
  for (const input of root.querySelectorAll("[data-quota]")) {
    const name = input.dataset.quota;
    if (root.querySelector(`[data-unlimited="${name}"]`)?.checked) values[name] = null;
    else if (input.value !== "") values[name] = Number(input.value);
  }
  return values;
}

function siteDefault(name) {
  const value = state.site?.quotas?.[name];
  return value === null || value === undefined ? "default: unlimited" : `default: ${value}`;
}

async function editQuotas(user) {
  const overrides = overridesOf(user);
  const confirmed = await ask({
    title: `Quotas of ${user.username}`,
    body: [
      el("p", { class: "muted small", text: "Empty: the site's default (Site settings). Their own limit, or unlimited, otherwise." }),
      ...QUOTAS.map((quota) => quotaRow("user-quota", quota, overrides[quota[0]], siteDefault(quota[0]))),
    ],
    ok: "Save quotas",
    submit: (form) => changeUser(user, { quotas: readQuotas(form) }),
  });
  if (!confirmed) return;
  toast(`Quotas of ${user.username} saved.`);
  await loadUsers();
}

// ---- site settings

// What each setting is, in words; a setting the page does not know yet is shown by its name.
const SETTINGS = {
  signup_open: ["Anyone may sign up", "Otherwise only an admin makes accounts (sfumato users add)."],
  retention_days: ["Keep pictures for (days)", "Older pictures are deleted, favourites kept; 0 keeps them forever."],
  audit_retention_days: ["Keep the audit log for (days)", "Older events are deleted."],
  max_queued_per_user: ["Queued generations per user", "A user's queued and running jobs, beyond which new ones are refused."],
  default_model: ["Default model", "For requests that name no model, when several are installed."],
  quotas: ["Default quotas", "Every user's, unless they have their own (Users). Empty: unlimited."],
};

async function loadSettings() {
  const form = $("#settings-form");
  clearErrors(form);
  try {
    const [site, models] = await Promise.all([api("/v1/admin/settings"), api("/v1/models")]);
    state.site = site;
    state.models = models.models.map((m) => m.lineage);
    $("#settings-fields").replaceChildren(...Object.entries(site).map(([name, value]) => settingField(name, value)));
  } catch (error) {
    form.querySelector("[data-error]").textContent = error.message;
  }
}

function settingField(name, value) {
  const [label, help] = SETTINGS[name] || [name.replace(/_/g, " "), null];
  const id = `setting-${name}`;
  const error = el("p", { class: "error", role: "alert", "data-error-for": name });
  const note = help ? el("p", { class: "muted small", id: `${id}-help`, text: help }) : null;
  if (name === "quotas" || (value && typeof value === "object")) {
    return el("fieldset", { class: "stack", "data-setting": name },
      el("legend", { text: label }), note,
      ...QUOTAS.map((quota) => quotaRow("site-quota", quota, value?.[quota[0]], "unlimited", false)),
      error);
  }
  let input;
  if (typeof value === "boolean") {
    input = el("input", { id, type: "checkbox", checked: value, "data-setting": name, "aria-describedby": note && note.id });
    return el("div", { class: "stack" }, el("label", { class: "inline" }, input, label), note, error);
  }
  if (name === "default_model") {
    const names = [...new Set([...state.models, ...(value ? [value] : [])])];
    input = el("select", { id, "data-setting": name, "aria-describedby": note && note.id },
      el("option", { value: "", text: "None: the only model installed, or the request must say" }),
      ...names.map((model) => el("option", { value: model, text: model })));
    input.value = value || "";
  } else if (typeof value === "number") {
    input = el("input", { id, type: "number", min: 0, step: 1, inputmode: "numeric", value: String(value), "data-setting": name, "aria-describedby": note && note.id });
  } else {
    input = el("input", { id, value: value ?? "", "data-setting": name, "aria-describedby": note && note.id });
  }
  return el("div", { class: "stack" }, el("label", { for: id, text: label }), input, note, error);
}

// The form's values, typed as the server has them.
function readSettings() {
  const values = {};
  for (const node of $("#settings-fields").querySelectorAll("[data-setting]")) {
    const name = node.dataset.setting;
    if (node.tagName === "FIELDSET") {
      const quotas = readQuotas(node);
      values[name] = Object.fromEntries(QUOTAS.map(([quota]) => [quota, quotas[quota] ?? null]));
    } else if (node.type === "checkbox") values[name] = node.checked;
    else if (node.type === "number") values[name] = node.value === "" ? null : Number(node.value);
    else values[name] = node.value === "" ? null : node.value;
  }
  return values;
}

// A value as JSON with its keys in order, to tell what changed.
function canonical(value) {
  return JSON.stringify(value, (key, v) => (v && typeof v === "object" && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v));
}

// The field a sentence of the server's is about: one it names (the first named), else the only
// field changed.
function fieldOf(message, changed) {
  const settings = Object.keys(state.site || {});
  const quotas = QUOTAS.map(([name]) => name);
  // a quota's bare name ("images") is an ordinary word: read as a field only when quotas changed
  const candidates = [...quotas.map((q) => [`quotas\\.${q}`, `quotas.${q}`]), ...settings.map((s) => [s, s]),
    ...(changed.includes("quotas") ? quotas.map((q) => [q, `quotas.${q}`]) : [])];
  let best = null;
  for (const [pattern, field] of candidates) {
    const at = message.search(new RegExp(`(^|[^\\w.])${pattern}\\b`));
    if (at >= 0 && (best === null || at < best.at)) best = { at, field };
  }
  if (best) return best.field;
  return changed.length === 1 ? changed[0] : null;
}

async function saveSettings(event) {
  event.preventDefault();
  const form = event.target;
  clearErrors(form);
  $("#settings-saved").textContent = "";  // a "Saved." from before says nothing of this save
  const values = readSettings();
  const changes = Object.fromEntries(Object.entries(values).filter(([name, value]) => canonical(value) !== canonical(state.site[name] ?? null)));
  if (!Object.keys(changes).length) {
    $("#settings-saved").textContent = "Nothing changed.";
    return;
  }
  try {
    state.site = await api("/v1/admin/settings", { method: "PATCH", json: changes });
    $("#settings-saved").textContent = "Saved.";
    setTimeout(() => ($("#settings-saved").textContent = ""), 3000);
  } catch (error) {
    $("#settings-saved").textContent = "";
    let field = fieldOf(error.message, Object.keys(changes));
    if (field === "quotas") field = null;
    const target = (field && form.querySelector(`[data-error-for="${field}"]`)) || form.querySelector("[data-error]");
    target.textContent = error.message;
    target.closest(".stack, fieldset")?.querySelector("input, select")?.focus();
  }
}

// ---- audit log

// A new filter starts over; an answer to an older one that arrives late is dropped.
async function reloadAudit() {
  state.audit.version += 1;
  state.audit.loading = false;
  state.audit.cursor = null;
  $("#audit-table tbody").replaceChildren();
  $("#audit-end").textContent = "";
  $("#audit-more").hidden = true;
  await moreAudit();
}

async function moreAudit() {
  if (state.audit.loading) return;
  state.audit.loading = true;
  const version = state.audit.version;
  $("#audit-error").textContent = "";
  try {
    const page = await api("/v1/admin/audit", { query: {
      limit: 50, action: $("#audit-action").value.trim(), user: $("#audit-user").value.trim(), cursor: state.audit.cursor } });
    if (version !== state.audit.version) return;
    $("#audit-table tbody").append(...page.events.map(auditRow));
    const actions = new Set([...$("#audit-actions").options].map((o) => o.value));
    for (const event of page.events) {
      if (!actions.has(event.action)) $("#audit-actions").append(el("option", { value: event.action }));
      actions.add(event.action);
    }
    state.audit.cursor = page.next;
    $("#audit-more").hidden = !page.next;
    if (!page.next) {
      const count = $("#audit-table tbody").children.length;
      $("#audit-end").textContent = count ? `${count} event${count === 1 ? "" : "s"}.` : "No events match.";
    }
  } catch (error) {
    if (version === state.audit.version) $("#audit-error").textContent = error.message;
  } finally {
    if (version === state.audit.version) state.audit.loading = false;
  }
}

function auditRow(event) {
  return el("tr", { "data-event": event.id },
    cell("When", el("time", { datetime: event.at, text: when(event.at) })),
    cell("Action", el("code", { text: event.action })),
    cell("By", event.actor || "—"),
    cell("About", event.target || "—"),
    cell("Address", event.address || "—"),
    cell("Detail", el("span", { class: "detail", text: event.summary })));
}

// ---- queue

async function loadQueue() {
  if (state.queueBusy) return;
  state.queueBusy = true;
  try {
    const { jobs } = await api("/v1/admin/jobs");
    $("#queue-error").textContent = "";
    // the rows are made afresh each time: a keyboard user's place on a Cancel button is kept
    const focused = document.activeElement?.closest?.("#queue-table tr")?.dataset.job;
    $("#queue-table tbody").replaceChildren(...jobs.map(jobRow));
    if (focused) $(`#queue-table tr[data-job="${CSS.escape(focused)}"] button`)?.focus();
    $("#queue-empty").hidden = jobs.length > 0;
    $("#queue-table").hidden = !jobs.length;
  } catch (error) {
    $("#queue-error").textContent = error.message;
  } finally {
    state.queueBusy = false;
  }
  if (!state.queueTimer) state.queueTimer = setInterval(refreshQueue, QUEUE_REFRESH_MS);
}

// Only while the queue shows: nobody watches it otherwise.
function refreshQueue() {
  if ($("#page-admin").hidden || state.tab !== "queue" || document.hidden) {
    clearInterval(state.queueTimer);
    state.queueTimer = null;
    return;
  }
  loadQueue();
}

function jobStatus(job) {
  if (job.status === "running") return job.progress?.total ? `running: step ${job.progress.step} of ${job.progress.total}` : "running";
  const position = job.position ?? job.queue_position;
  if (job.status === "queued" && position) return position === 1 ? "queued: next" : `queued: ${position} in line`;
  return job.status;
}

function jobRow(job) {
  const prompt = job.settings?.prompt || "";
  return el("tr", { "data-job": job.id },
    cell("User", job.username || ""),
    cell("Status", jobStatus(job)),
    cell("Prompt", el("span", { class: "detail", title: prompt, text: prompt.length > 120 ? prompt.slice(0, 117) + "…" : prompt })),
    cell("Model", job.model || ""),
    cell("Queued", el("time", { datetime: job.created_at, text: when(job.created_at) })),
    el("td", { class: "actions" }, el("button", { type: "button", class: "danger", text: "Cancel",
      "aria-label": `Cancel the generation of ${job.username}: ${prompt.slice(0, 60)}`, onclick: () => cancelJob(job) })));
}

async function cancelJob(job) {
  const confirmed = await ask({
    title: `Cancel this generation of ${job.username}?`,
    body: [el("p", { text: job.settings?.prompt || "" }),
      el("p", { class: "muted small", text: job.status === "running" ? "It stops after its current step; they see it cancelled." : "It leaves the queue; they see it cancelled." })],
    ok: "Cancel the generation", danger: true,
    submit: () => api(`/v1/admin/jobs/${job.id}/cancel`, { method: "POST" }),
  });
  if (!confirmed) return;
  toast("Cancelled.");
  await loadQueue();
}

// ---- the view

function select(tab) {
  state.tab = tab;
  for (const button of document.querySelectorAll("#page-admin [role=tab]")) {
    const on = button.dataset.tab === tab;
    button.setAttribute("aria-selected", String(on));
    button.tabIndex = on ? 0 : -1;
  }
  for (const name of Object.keys(TABS)) $(`#admin-${name}`).hidden = name !== tab;
  TABS[tab]();
}

let wired = false;
export function init() {
  if (!session.user?.is_admin || wired) return;
  wired = true;
  const tabs = [...document.querySelectorAll("#page-admin [role=tab]")];
  for (const button of tabs) {
    button.addEventListener("click", () => select(button.dataset.tab));
    // arrows move between the tabs, as in every tab list
    button.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      const next = tabs[(tabs.indexOf(button) + step + tabs.length) % tabs.length];
      next.focus();
      select(next.dataset.tab);
    });
  }
  $("#settings-form").addEventListener("submit", saveSettings);
  $("#audit-actions").replaceChildren(...AUDIT_ACTIONS.map((action) => el("option", { value: action })));
  $("#audit-filters").addEventListener("submit", (event) => { event.preventDefault(); reloadAudit(); });
  $("#audit-more").addEventListener("click", moreAudit);
  // the queue stops refreshing in a hidden browser tab, and catches up when it shows again
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && !$("#page-admin").hidden && state.tab === "queue") loadQueue();
  });
}

export function shown() {
  if (session.user?.is_admin) select(state.tab);
}
