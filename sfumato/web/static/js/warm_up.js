// "Warming up the model…" beside the Generate button while the server loads its default model
// after start (/v1/health's warm_up): a picture asked for meanwhile waits for it. Health is read
// again every few seconds only while it warms; the note goes once it is ready (or failed: the
// first picture then says why).

import { api } from "./api.js";
import { $ } from "./ui.js";

const POLL_MS = 3000;

export async function watchWarmUp() {
  const note = $("#warm-up-note");
  let warmUp;
  try {
    warmUp = (await api("/v1/health")).warm_up;
  } catch {
    warmUp = null; // an older server, or none: nothing to say
  }
  const warming = warmUp?.status === "warming up";
  note.hidden = !warming;
  if (warming) {
    note.textContent = `Warming up ${warmUp.model || "the model"}… the first picture starts when it is ready.`;
    setTimeout(watchWarmUp, POLL_MS);
  }
}
