// Markdown → sanitised HTML, with the vendored marked and DOMPurify (loaded before
// this module as classic scripts: window.marked, window.DOMPurify).

const { marked, DOMPurify } = window;

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = (text) => text.replace(/[&<>"']/g, (char) => ESCAPES[char]);

// Raw HTML in an answer is shown as text, as the upstream's markdown-it (html: false)
// shows it: the browser's parser then never meets a handler attribute, which the CSP
// would have to refuse (and report) even in DOMPurify's inert document.
const parser = new marked.Marked({
  gfm: true,
  breaks: true,
  async: false,
  renderer: {
    html: (token) => (token.block ? `<p>${escapeHtml(token.text.trim())}</p>\n` : escapeHtml(token.text)),
  },
});

const PURIFY = {
  USE_PROFILES: { html: true },
  // Inline styles would break the page's Content-Security-Policy (and print errors);
  // forms and inputs have nothing to do in an answer.
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select"],
  FORBID_ATTR: ["style"],
};

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.hasAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

/** `element`'s content becomes `text` rendered as Markdown (GFM, line breaks kept), sanitised. */
export function renderMarkdown(element, text) {
  const html = parser.parse(text);
  element.replaceChildren(DOMPurify.sanitize(html, { ...PURIFY, RETURN_DOM_FRAGMENT: true }));
  for (const pre of element.querySelectorAll("pre")) addCopyButton(pre);
}

function addCopyButton(pre) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "copy";
  button.textContent = "Copy";
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(pre.querySelector("code")?.textContent ?? pre.textContent);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Copy failed";
    }
    setTimeout(() => {
      button.textContent = "Copy";
    }, 1200);
  });
  pre.append(button);
}
