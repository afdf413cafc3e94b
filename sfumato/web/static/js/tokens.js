// What the model reads: a live token counter under the prompt and the negative prompt (37/75,
// or 80/150 (2 x 75) when a prompt spills into a second chunk, as A1111 counts), and a small
// view of the chunks the user can open: each word, split words marked, emphasis shown.
// The server reads the prompt with the engine's own tokenizer and rules
// (POST /v1/prompts/tokenize), called a moment after the user stops typing.

import { api } from "./api.js";
import { $, el } from "./ui.js";

const WAIT_MS = 250; // after the last keystroke: a call per pause, not per key
const SIDES = [
  { field: "#prompt", key: "prompt", label: "Prompt" },
  { field: "#negative", key: "negative_prompt", label: "Negative prompt" },
];

let currentModel = () => null;
let timer = null;
let asked = 0; // the latest call's number: an older answer arriving late is dropped

export function watchPrompts(modelName) {
  currentModel = modelName;
  for (const side of SIDES) {
    const field = $(side.field);
    const counter = el("span", { class: "token-counter muted small", id: `${field.id}-tokens`, "aria-live": "polite" });
    const view = el("details", { class: "token-view", id: `${field.id}-token-view` },
      el("summary", { class: "small" }, "What the model reads"), el("div", { class: "token-chunks" }));
    field.after(el("div", { class: "token-line" }, counter, view));
    field.addEventListener("input", refresh);
  }
  refresh();
}

// Read both prompts again soon (the user typed, or the model or the prompt changed).
export function refresh() {
  clearTimeout(timer);
  timer = setTimeout(ask, WAIT_MS);
}

async function ask() {
  const number = ++asked;
  const body = { model: currentModel() || undefined };
  for (const side of SIDES) body[side.key] = $(side.field).value;
  let answer;
  try {
    answer = await api("/v1/prompts/tokenize", { method: "POST", json: body });
  } catch (error) {
    if (number === asked) for (const side of SIDES) show(side, null, error.message);
    return;
  }
  if (number !== asked) return;
  for (const side of SIDES) show(side, answer[side.key], null, answer.note);
}

function show(side, reading, problem, note) {
  const id = $(side.field).id;
  const counter = $(`#${id}-tokens`);
  const chunks = $(`#${id}-token-view .token-chunks`);
  if (!counter) return;
  if (!reading) {
    counter.textContent = "";
    counter.title = problem || "";
    chunks.replaceChildren();
    return;
  }
  counter.textContent = reading.counter;
  counter.title = `${reading.text_tokens} tokens of text in ${reading.chunks.length} chunk(s) of 75`;
  counter.classList.toggle("spilled", reading.chunks.length > 1);
  const parts = reading.chunks.map((chunk, i) => el("div", { class: "token-chunk" },
    el("div", { class: "muted small" }, `Chunk ${i + 1}: ${chunk.count}/75${STARTS[chunk.starts]}`),
    el("p", { class: "token-words" }, chunk.words.map(word))));
  const notes = [...reading.notes];
  for (const lora of reading.loras) {
    if (lora.problem) notes.push(lora.problem);
    else if (lora.installed) notes.push(`LoRA ${lora.name} (${lora.weight}) is installed.`);
  }
  if (reading.split_words.length) notes.unshift(`Split into pieces (the model does not know them whole): ${reading.split_words.join(", ")}.`);
  if (note && reading.chunks.some((c) => c.count)) notes.push(note);
  chunks.replaceChildren(...parts, ...notes.map((text) => el("p", { class: "muted small" }, text)));
}

const STARTS = { start: "", BREAK: ", after BREAK", comma: ", moved from the last comma", full: ", the one before was full" };

function word(w) {
  const classes = ["tok"];
  if (w.split) classes.push("split");
  if (w.cut) classes.push("cut");
  if (w.weight > 1) classes.push("up");
  if (w.weight < 1) classes.push("down");
  const pieces = w.pieces.map((p) => p.replace(/<\/w>$/, ""));
  const title = [
    w.split ? `split into ${pieces.length} pieces: ${pieces.join(" · ")}` : "one token",
    w.weight !== 1 ? `weight ${w.weight}` : "",
    w.cut ? "a chunk ends inside this word" : "",
  ].filter(Boolean).join("; ");
  const text = w.split ? pieces.join("·") : w.text;
  return el("span", { class: classes.join(" "), title },
    text, w.weight !== 1 ? el("sup", { text: String(+w.weight.toFixed(2)) }) : null);
}
