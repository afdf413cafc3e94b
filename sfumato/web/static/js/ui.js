// Small helpers shared by the pages.

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);

let toastTimer;
export function toast(message) {
  const node = $("#toast");
  node.textContent = message;
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (node.hidden = true), 4000);
}

// Show an error as a sentence next to what caused it: the element marked
// data-error-for="<field>" in ``root`` (``field``, or the one the server's sentence is
// about), else ``fallback``.
export function showError(error, root, fallback, field = null) {
  const message = error?.message || String(error);
  field ||= fieldOf(message);
  const target = (field && root?.querySelector(`[data-error-for="${field}"]`)) || fallback;
  if (target) target.textContent = message;
  else toast(message);
  return target;
}

// The server's sentences start with what they are about ("Width must be ...").
const FIELDS = [
  [/^(width|height)\b|far from .* trained at/i, "size"],
  [/^steps\b/i, "steps"],
  [/^guidance\b/i, "guidance"],
  [/^the seed\b/i, "seed"],
  [/^the prompt\b|^prompt\b/i, "prompt"],
  [/^(no model|several models)|\bmodel\b.*installed/i, "model"],
  [/^the (uploaded |)(picture|mask)|^a mask|upload/i, "init_image"],
];

function fieldOf(message) {
  return FIELDS.find(([pattern]) => pattern.test(message))?.[1] || null;
}

export function clearErrors(root) {
  root.querySelectorAll("[data-error-for], [data-error]").forEach((n) => (n.textContent = ""));
}


export const FAMILY_LABELS = {
  sd15: "Stable Diffusion 1.5",
  sdxl: "SDXL",
  "sdxl-lightning": "SDXL Lightning",
};

// A picture's settings as a definition list.
export function paramsList(settings, extra = {}) {
  const rows = {
    ...extra,
    Prompt: settings.prompt,
    "Negative prompt": settings.negative_prompt || "(none)",
    Seed: settings.seed,
    Size: `${settings.width}×${settings.height}`,
    Steps: settings.steps,
    Guidance: settings.guidance,
    Sampler: settings.sampler,
  };
  if (settings.mode && settings.mode !== "txt2img") rows.Mode = `${settings.mode}, strength ${settings.strength}`;
  if (settings.loras?.length) rows.LoRAs = settings.loras.map(([name, weight]) => `${name} ${weight}`).join(", ");
  if (settings.clip_skip > 1) rows["Clip skip"] = settings.clip_skip;
  if (settings.guidance_cutoff < 1) rows["Guidance cutoff"] = settings.guidance_cutoff;
  if (settings.deep_cache > 1) rows["DeepCache interval"] = settings.deep_cache;
  if (settings.hr_upscaler) {
    const factor = settings.hr_scale ? `${settings.hr_scale}×` : `to ${settings.hr_resize_x || "?"}×${settings.hr_resize_y || "?"}`;
    const steps = settings.hr_second_pass_steps || settings.steps;
    rows["Hires fix"] = `${factor}, ${settings.hr_upscaler}, ${steps} steps at ${settings.denoising_strength}`;
  }
  return el("dl", { class: "params" }, Object.entries(rows).map(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })]));
}

// The quotas an admin sets, in the words the page shows them: the server's name, a label, the
// unit, and the name of the user's usage it limits (none: a limit on each generation).
export const QUOTAS = [
  ["images", "Pictures kept", "pictures", "images"],
  ["uploads", "Uploaded pictures kept", "uploads", "uploads"],
  ["storage_mb", "Storage", "MB", "storage_mb"],
  ["keys", "API keys", "keys", "keys"],
  ["sessions", "Logged-in sessions", "sessions", "sessions"],
  ["daily_megapixel_steps", "Work per day", "megapixel-steps", "megapixel_steps_today"],
  ["job_megapixel_steps", "Work per generation", "megapixel-steps", null],
  ["job_seconds", "Time per generation", "seconds", null],
];

// A date and time from the server, in the reader's own words; "" for none.
export function when(iso) {
  return iso ? new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "";
}
