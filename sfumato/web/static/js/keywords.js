// The words a model knows: as the user types, the prompt suggests the selected model's and the
// added LoRAs' keywords that begin with the phrase being typed, most frequent first; a LoRA,
// when added, shows its trigger words (or else its most frequent training tags), each one
// click from the prompt. From GET /v1/models/{name}/keywords and /v1/loras/{name}/keywords.

import { api } from "./api.js";
import { $, el } from "./ui.js";
import { refresh } from "./tokens.js";

const SHOWN = 8; // suggestions at once
const vocabularies = new Map(); // "model:NAME" or "lora:NAME" -> its answer (or a promise of it)
let modelName = null;
let choices = [];
let active = -1;

function vocabulary(kind, name) {
  const key = `${kind}:${name}`;
  if (!vocabularies.has(key)) {
    const path = `/v1/${kind === "model" ? "models" : "loras"}/${encodeURIComponent(name)}/keywords`;
    vocabularies.set(key, api(path, { query: { limit: 2000 } }).catch(() => null));
  }
  return vocabularies.get(key);
}

export function watchKeywords() {
  const prompt = $("#prompt");
  const list = el("ul", { id: "keyword-suggestions", class: "suggestions", role: "listbox", hidden: true,
    "aria-label": "Words this model knows" });
  prompt.after(list);
  prompt.setAttribute("aria-autocomplete", "list");
  prompt.setAttribute("aria-controls", list.id);
  prompt.addEventListener("input", suggest);
  prompt.addEventListener("keydown", keydown);
  prompt.addEventListener("blur", () => setTimeout(close, 150)); // a click on a choice first
}

export function modelChanged(name) {
  modelName = name;
  if (name) vocabulary("model", name);
}

// A LoRA row was added: its trigger words (else its top training tags) under it, one click each.
export async function loraAdded(name, row) {
  const words = await vocabulary("lora", name);
  if (!words || !row.isConnected) return;
  const trigger = words.trigger_words.length > 0;
  const shown = trigger ? words.trigger_words : words.keywords.slice(0, 5).map((k) => k.word);
  if (!shown.length) return;
  const insertAll = el("button", { type: "button", class: "link small", text: "Insert all",
    onclick: () => insert(shown) });
  row.append(el("p", { class: "trigger-words small" },
    el("span", { class: "muted", text: trigger ? "Trigger words: " : "Trained on: " }),
    shown.map((w) => el("button", { type: "button", class: "chip", title: "Insert into the prompt", text: w,
      onclick: () => insert([w]) })),
    shown.length > 1 ? insertAll : null));
}

// Adds the words the prompt does not hold yet to its end, after a comma.
function insert(words) {
  const prompt = $("#prompt");
  const have = prompt.value.toLowerCase();
  const missing = words.filter((w) => !have.includes(w.toLowerCase()));
  if (!missing.length) return;
  const text = prompt.value.trimEnd();
  prompt.value = (text ? `${text.replace(/,$/, "")}, ` : "") + missing.join(", ");
  refresh();
  prompt.focus();
}

// The phrase being typed (from the last comma, bracket or line start to the caret) and its
// last word: a suggestion completes either (training tags are often several words).
function phraseAt(prompt) {
  const before = prompt.value.slice(0, prompt.selectionStart);
  const start = Math.max(...[",", "(", ")", "[", "]", "\n", "|", ">", ":"].map((c) => before.lastIndexOf(c))) + 1;
  const raw = before.slice(start);
  const phraseStart = start + (raw.length - raw.trimStart().length);
  const wordStart = Math.max(phraseStart, before.lastIndexOf(" ") + 1);
  return { start: phraseStart, text: before.slice(phraseStart).toLowerCase(),
    wordStart, word: before.slice(wordStart).toLowerCase() };
}

async function suggest() {
  const prompt = $("#prompt");
  const phrase = phraseAt(prompt);
  if (phrase.text.trim().length < 2) return close();
  const sources = [modelName && vocabulary("model", modelName),
    ...[...document.querySelectorAll("[data-lora]")].map((s) => vocabulary("lora", s.dataset.lora))];
  const counts = new Map();
  for (const answer of await Promise.all(sources.filter(Boolean))) {
    for (const { word, count } of answer?.keywords || []) {
      counts.set(word, Math.max(counts.get(word) || 0, count));
    }
    for (const word of answer?.trigger_words || []) counts.set(word, Infinity); // first
  }
  if (phraseAt(prompt).text !== phrase.text) return; // typed on meanwhile
  const found = new Map(); // word -> [count, where it starts in the prompt]
  for (const [word, count] of counts) {
    const lower = word.toLowerCase();
    if (lower === phrase.text || lower === phrase.word) continue;
    if (lower.startsWith(phrase.text)) found.set(word, [count, phrase.start]);
    else if (phrase.word.length >= 2 && lower.startsWith(phrase.word)) found.set(word, [count, phrase.wordStart]);
  }
  choices = [...found].map(([word, [count, start]]) => [word, count, start])
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, SHOWN);
  active = -1;
  const list = $("#keyword-suggestions");
  list.replaceChildren(...choices.map(([word, count], i) => el("li", {
    role: "option", id: `keyword-${i}`, class: "suggestion",
    onmousedown: (e) => { e.preventDefault(); accept(i); },
  }, el("span", { text: word }), el("span", { class: "muted small", text: count === Infinity ? "trigger" : String(count) }))));
  list.style.top = `${prompt.offsetTop + prompt.offsetHeight + 2}px`; // just under the prompt
  list.hidden = !choices.length;
}

function keydown(event) {
  const list = $("#keyword-suggestions");
  if (list.hidden || event.ctrlKey || event.metaKey) return;
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    const step = event.key === "ArrowDown" ? 1 : -1;
    active = (active + step + choices.length) % choices.length;
    for (const [i, item] of [...list.children].entries()) item.setAttribute("aria-selected", String(i === active));
    $("#prompt").setAttribute("aria-activedescendant", `keyword-${active}`);
  } else if ((event.key === "Enter" && active >= 0) || event.key === "Tab") {
    event.preventDefault();
    accept(Math.max(active, 0));
  } else if (event.key === "Escape") {
    close();
  }
}

function accept(i) {
  const prompt = $("#prompt");
  const [word, , start] = choices[i];
  const after = prompt.value.slice(prompt.selectionStart);
  const joiner = after.trimStart().startsWith(",") ? "" : ", ";
  prompt.value = prompt.value.slice(0, start) + word + joiner + after.trimStart();
  const caret = start + word.length + joiner.length;
  prompt.setSelectionRange(caret, caret);
  close();
  refresh();
  prompt.focus();
}

function close() {
  const list = $("#keyword-suggestions");
  if (list) list.hidden = true;
  choices = [];
  active = -1;
  $("#prompt")?.removeAttribute("aria-activedescendant");
}
