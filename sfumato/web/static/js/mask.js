// The inpainting mask: painted over the picture at the picture's own size. Painted = white =
// redrawn; the rest is kept. Sent as a black-and-white PNG.

let canvas = null;
let context = null;
let mode = "off";
let brush = 24;
let painted = false;

export function attach(node, width, height) {
  canvas = node;
  canvas.width = width;
  canvas.height = height;
  context = canvas.getContext("2d");
  clear();
  if (!canvas.dataset.wired) {
    canvas.dataset.wired = "1";
    canvas.addEventListener("pointerdown", start);
    canvas.addEventListener("pointermove", move);
    window.addEventListener("pointerup", () => (drawing = false));
  }
  setMode(mode);
}

export function setMode(value) {
  mode = value;
  if (canvas) canvas.style.pointerEvents = mode === "off" ? "none" : "auto";
}

export function setBrush(size) {
  brush = size;
}

export function clear() {
  if (context) context.clearRect(0, 0, canvas.width, canvas.height);
  painted = false;
}

let drawing = false;
let last = null;

function point(event) {
  const box = canvas.getBoundingClientRect();
  return [
    ((event.clientX - box.left) / box.width) * canvas.width,
    ((event.clientY - box.top) / box.height) * canvas.height,
  ];
}

function start(event) {
  if (mode === "off") return;
  event.preventDefault(); // a drag paints; it must not select the page's text
  drawing = true;
  canvas.setPointerCapture?.(event.pointerId);
  last = point(event);
  stroke(last);
}

function move(event) {
  if (!drawing) return;
  const next = point(event);
  stroke(next);
  last = next;
}

function stroke(to) {
  const scale = canvas.width / canvas.getBoundingClientRect().width; // brush in screen pixels
  context.globalCompositeOperation = mode === "erase" ? "destination-out" : "source-over";
  context.strokeStyle = context.fillStyle = "rgb(220, 40, 40)";
  context.lineWidth = brush * scale;
  context.lineCap = "round";
  context.beginPath();
  context.moveTo(...last);
  context.lineTo(...to);
  context.stroke();
  if (mode === "paint") painted = true;
}

// The mask as a PNG blob, or null when nothing is painted (plain image-to-image).
export async function toBlob() {
  if (!canvas || !painted) return null;
  const { width, height } = canvas;
  const source = context.getImageData(0, 0, width, height).data;
  const out = new ImageData(width, height);
  let any = false;
  for (let i = 0; i < source.length; i += 4) {
    const on = source[i + 3] > 0 ? 255 : 0;
    any ||= on > 0;
    out.data[i] = out.data[i + 1] = out.data[i + 2] = on;
    out.data[i + 3] = 255;
  }
  if (!any) return null;
  const export_ = document.createElement("canvas");
  export_.width = width;
  export_.height = height;
  export_.getContext("2d").putImageData(out, 0, 0);
  return new Promise((resolve) => export_.toBlob(resolve, "image/png"));
}
