// The chat page: the upstream GeminiProChat page's behaviour, on plain DOM.
import { generateSignature, maxHistoryMessages, systemTemplate } from "/settings.js";
import { describeFailure, describeNetworkFailure, lastText, requestTurns } from "./conversation.js";
import { renderMarkdown } from "./markdown.js";

// localStorage keys, as the upstream page names them.
const KEYS = { messages: "messageList", pass: "pass", systemRole: "systemRoleSettings" };
const GENERATE = "/api/generate";
const AUTH = "/api/auth";
const JSON_HEADERS = { "Content-Type": "application/json" };

const $ = (id) => document.getElementById(id);

function loadMessages() {
  try {
    const stored = JSON.parse(localStorage.getItem(KEYS.messages) || "[]");
    const valid = (m) => m && (m.role === "user" || m.role === "assistant") && typeof m.content === "string";
    return Array.isArray(stored) ? stored.filter(valid) : [];
  } catch (error) {
    console.warn("stored messageList is not JSON; starting a new conversation", error);
    return [];
  }
}

async function authorised(pass) {
  const response = await fetch(AUTH, { method: "POST", headers: JSON_HEADERS, body: JSON.stringify({ pass }) });
  const data = await response.json().catch(() => null);
  return Boolean(data) && data.code === 0;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function nearBottom() {
  return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 96;
}

function toBottom() {
  window.scrollTo({ top: document.documentElement.scrollHeight });
}

function createChat() {
  const state = {
    messages: loadMessages(),
    systemRole: localStorage.getItem(KEYS.systemRole) || "",
    editingSystem: false,
    current: "", // the answer streaming now
    controller: null, // the AbortController of the request under way
    error: null,
    frame: 0,
  };
  const input = $("input");
  const list = $("messages");

  const save = () => localStorage.setItem(KEYS.messages, JSON.stringify(state.messages));

  function messageItem(message, index) {
    const item = element("li", `message ${message.role}`);
    item.dataset.role = message.role;
    item.append(element("div", "avatar"));
    const content = element("div", "content");
    renderMarkdown(content, message.content);
    item.append(content);
    const last = index === state.messages.length - 1;
    if (last && message.role === "assistant" && !state.controller) {
      const retry = element("button", "link retry regenerate", "\u21bb Regenerate");
      retry.type = "button";
      retry.addEventListener("click", regenerate);
      item.append(retry);
    }
    return item;
  }

  function renderStreaming() {
    state.frame = 0;
    let item = list.querySelector("[data-streaming]");
    if (!state.controller || !state.current) {
      item?.remove();
      return;
    }
    const follow = nearBottom();
    if (!item) {
      item = element("li", "message assistant");
      item.dataset.role = "assistant";
      item.dataset.streaming = "true";
      item.append(element("div", "avatar"), element("div", "content"));
      list.append(item);
    }
    renderMarkdown(item.querySelector(".content"), state.current);
    if (follow) toBottom();
  }

  function render() {
    const loading = state.controller !== null;
    list.replaceChildren(...state.messages.map(messageItem));
    renderStreaming();
    $("thinking").hidden = !loading;
    $("composer").hidden = loading;
    $("error").hidden = !state.error;
    $("error-code").textContent = state.error?.code ?? "";
    $("error-code").hidden = !state.error?.code;
    $("error-message").textContent = state.error?.message ?? "";
    const editable = state.messages.length === 0 && !loading;
    $("system-show").hidden = !state.systemRole;
    $("system-text").textContent = state.systemRole;
    $("system-remove").hidden = !editable;
    $("system-add").hidden = Boolean(state.systemRole) || !editable || state.editingSystem;
    $("system-edit").hidden = Boolean(state.systemRole) || !editable || !state.editingSystem;
  }

  function archive() {
    if (state.current) {
      state.messages.push({ role: "assistant", content: state.current });
      save();
    }
    state.current = "";
  }

  function settle(controller, error) {
    if (state.controller !== controller) return; // stopped, or a newer request took over
    archive();
    state.controller = null;
    state.error = error;
    render();
    if (!error) input.focus();
  }

  async function readAnswer(response, controller) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
    for (;;) {
      const { value, done } = await reader.read();
      if (done || controller.signal.aborted) break;
      const text = decoder.decode(value, { stream: true });
      if (text) {
        state.current += text;
        state.frame ||= requestAnimationFrame(renderStreaming);
      }
    }
    if (!controller.signal.aborted) state.current += decoder.decode();
  }

  async function request() {
    const controller = new AbortController();
    state.controller = controller;
    state.current = "";
    state.error = null;
    render();
    let answered = false;
    try {
      const messages = requestTurns(state.messages, maxHistoryMessages, state.systemRole, systemTemplate);
      const time = Date.now();
      const sign = await generateSignature(time, lastText(messages));
      const pass = localStorage.getItem(KEYS.pass);
      const response = await fetch(GENERATE, {
        method: "POST",
        headers: JSON_HEADERS,
        body: JSON.stringify({ messages, time, pass, sign }),
        signal: controller.signal,
      });
      answered = true;
      if (!response.ok) {
        const body = await response.text();
        settle(controller, describeFailure(response.status, response.statusText, body));
        return;
      }
      await readAnswer(response, controller);
      settle(controller, null);
    } catch (error) {
      if (!controller.signal.aborted) settle(controller, describeNetworkFailure(error, answered));
    }
  }

  function send() {
    const text = input.value;
    if (!text.trim() || state.controller) return;
    input.value = "";
    autosize();
    state.messages.push({ role: "user", content: text });
    save();
    request();
    toBottom();
  }

  function stop() {
    const controller = state.controller;
    if (!controller) return;
    state.controller = null;
    controller.abort();
    archive();
    render();
  }

  function regenerate() {
    if (state.controller || state.messages.length === 0) return;
    if (state.messages[state.messages.length - 1].role === "assistant") {
      state.messages.pop();
      save();
    }
    request();
  }

  function clear() {
    input.value = "";
    autosize();
    state.messages = [];
    state.current = "";
    state.error = null;
    save();
    render();
  }

  function autosize() {
    input.style.height = "auto";
    const borders = input.offsetHeight - input.clientHeight;
    input.style.height = `${input.scrollHeight + borders}px`;
  }

  function setSystemRole(text) {
    state.systemRole = text;
    state.editingSystem = false;
    if (text) localStorage.setItem(KEYS.systemRole, text);
    else localStorage.removeItem(KEYS.systemRole);
    render();
  }

  $("send").addEventListener("click", send);
  $("clear").addEventListener("click", clear);
  $("stop").addEventListener("click", stop);
  $("error-retry").addEventListener("click", regenerate);
  input.addEventListener("input", autosize);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  $("system-add").addEventListener("click", () => {
    state.editingSystem = true;
    render();
    $("system-input").focus();
  });
  $("system-set").addEventListener("click", () => setSystemRole($("system-input").value.trim()));
  $("system-remove").addEventListener("click", () => setSystemRole(""));

  return {
    open(error) {
      state.error = error;
      $("gate").hidden = true;
      $("chat").hidden = false;
      render();
      toBottom();
      input.focus();
    },
  };
}

function createGate(onAccepted) {
  const row = $("gate-row");
  const field = $("gate-password");
  const message = $("gate-error");
  row.addEventListener("animationend", () => row.classList.remove("invalid"));
  $("gate-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    message.textContent = "";
    const password = field.value;
    try {
      if (await authorised(password)) {
        localStorage.setItem(KEYS.pass, password);
        onAccepted();
        return;
      }
      message.textContent = "Invalid password.";
    } catch (error) {
      message.textContent = describeNetworkFailure(error, false).message;
    }
    row.classList.remove("invalid");
    void row.offsetWidth; // restart the shake animation
    row.classList.add("invalid");
  });
  return {
    open() {
      $("chat").hidden = true;
      $("gate").hidden = false;
      field.focus();
    },
  };
}

async function start() {
  const chat = createChat();
  const gate = createGate(() => chat.open(null));
  try {
    if (await authorised(localStorage.getItem(KEYS.pass))) chat.open(null);
    else gate.open();
  } catch (error) {
    chat.open(describeNetworkFailure(error, false));
  }
}

start();
