// The page: who is logged in, which page shows, and the one event stream all pages share.

import { api, setCsrf } from "./api.js";
import { $, clearErrors, showError } from "./ui.js";
import * as generate from "./generate.js";
import * as history from "./history.js";
import * as models from "./models.js";
import * as workflows from "./workflows.js";
import * as compare from "./compare.js";
import * as account from "./account.js";
import * as admin from "./admin.js";
import { watchWarmUp } from "./warm_up.js";

const PAGES = { generate, history, models, compare, workflows, account, admin };
export const session = { user: null, personal: false };
let events = null;
const listeners = new Set();

export function onEvent(listener) {
  listeners.add(listener);
}

function openEvents() {
  if (events) return;
  events = new EventSource("/v1/events");
  for (const type of ["job", "progress"]) {
    events.addEventListener(type, (message) => {
      const data = JSON.parse(message.data);
      listeners.forEach((listener) => listener(type, data));
    });
  }
}

export function show(page) {
  if (!session.user) page = "login";
  else if (page === "admin" && !session.user.is_admin) page = "generate";
  for (const section of document.querySelectorAll(".page")) {
    section.hidden = section.id !== `page-${page}`;
  }
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.page === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  $("#nav").hidden = !session.user;
  $("#nav-admin").hidden = !session.user?.is_admin;
  $("#loading").hidden = true;
  PAGES[page]?.shown?.();
}

function route() {
  const page = location.hash.slice(1) || "generate";
  show(PAGES[page] ? page : "generate");
}

export async function loggedIn(me) {
  session.user = me;
  session.personal = me.personal_mode;
  if (me.csrf_token) setCsrf(me.csrf_token);
  openEvents();
  await Promise.all(Object.values(PAGES).map((page) => page.init?.()));
  route();
}

export function loggedOut() {
  // start afresh: nothing of this user's pages may stay for the next one
  events?.close();
  location.hash = "";
  location.reload();
}

// ---- log in / sign up
let signingUp = false;

function setLoginMode(signup) {
  signingUp = signup;
  $("#login-heading").textContent = signup ? "Make an account" : "Log in";
  $("#login-submit").textContent = signup ? "Sign up" : "Log in";
  $("#login-switch").textContent = signup ? "I have an account: log in" : "I have no account: sign up";
  $("#login-form [name=password]").autocomplete = signup ? "new-password" : "current-password";
}

async function submitLogin(event) {
  event.preventDefault();
  const form = event.target;
  clearErrors(form);
  const body = { username: form.username.value.trim(), password: form.password.value };
  try {
    const answer = await api(signingUp ? "/v1/auth/signup" : "/v1/auth/login", { method: "POST", json: body });
    setCsrf(answer.csrf_token);
    form.password.value = "";
    await loggedIn({ ...answer.user, csrf_token: answer.csrf_token, personal_mode: false });
    if (!location.hash) location.hash = "#generate";
  } catch (error) {
    showError(error, form, form.querySelector("[data-error]"));
  }
}

async function start() {
  watchWarmUp();
  $("#login-form").addEventListener("submit", submitLogin);
  $("#login-switch").addEventListener("click", () => setLoginMode(!signingUp));
  window.addEventListener("hashchange", route);
  try {
    const me = await api("/v1/me");
    await loggedIn(me);
  } catch {
    const health = await api("/v1/health").catch(() => ({ signup_open: true }));
    setLoginMode(false);
    if (!health.signup_open) $("#login-switch").hidden = true;
    show("login");
  }
}

start();
