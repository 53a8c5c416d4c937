// What the page sends and how it reads failures; pure functions, no DOM.

/**
 * The `messages` of a generate request, from the page's history, as the upstream
 * page builds them: `assistant` becomes `model`, only the latest `max` messages are
 * kept, and of consecutive messages of one role only the last is sent (a question whose
 * answer failed and was asked again). A system role is folded into the first user turn
 * with `template` (or sent as a user turn of its own before a leading model turn), as
 * ChatGPROChat folds a system message; the protocol has no system role.
 */
export function requestTurns(history, max, systemRole, template) {
  const turns = history
    .map((message) => ({
      role: message.role === "assistant" ? "model" : "user",
      text: message.content,
    }))
    .slice(-max)
    .filter((turn, i, all) => i === all.length - 1 || turn.role !== all[i + 1].role);
  if (systemRole) {
    if (turns.length && turns[0].role === "user") {
      turns[0] = { role: "user", text: withSystem(template, systemRole, turns[0].text) };
    } else {
      turns.unshift({ role: "user", text: systemRole });
    }
  }
  return turns.map((turn) => ({ role: turn.role, parts: [{ text: turn.text }] }));
}

function withSystem(template, system, content) {
  return template.replace(/\{(system|content)\}/g, (_, name) => (name === "system" ? system : content));
}

/** The text that a request's signature covers: the last turn's text. */
export function lastText(turns) {
  const last = turns[turns.length - 1];
  return last ? last.parts.map((part) => part.text).join("") : "";
}

/**
 * A readable error from a failed answer: `{code, message}`. The API's JSON body
 * `{"error":{"code"?,"message"}}` comes labelled text/plain, so the body is parsed
 * whatever its content type; anything else is shown as the raw text.
 */
export function describeFailure(status, statusText, body) {
  let parsed = null;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = null;
  }
  const error = parsed && typeof parsed === "object" ? parsed.error : null;
  if (error && typeof error.message === "string") {
    return { code: typeof error.code === "string" ? error.code : "", message: error.message };
  }
  const code = `HTTP ${status}${statusText ? ` ${statusText}` : ""}`;
  const text = body.trim();
  return { code, message: text || "The server answered with an error and no explanation." };
}

/** A readable error for a request that failed in the network, not with a status. */
export function describeNetworkFailure(error, answered) {
  const reason = error && error.message ? error.message : String(error);
  return answered
    ? { code: "", message: `The answer broke off: ${reason}` }
    : { code: "", message: `Could not reach the server: ${reason}` };
}
