// A small Markdown renderer for model answers, safe by construction: it builds DOM nodes and
// sets only text (never innerHTML), so whatever a model writes, `<script>` included, shows as text.
// It covers what chat models write: paragraphs, headings, lists, quotes, fenced and inline code,
// bold, italics and links. An unclosed fence (an answer still streaming) renders as code so far.

import { el } from "./dom.js";

const FENCE = /^\s{0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/;
const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const BULLET = /^\s{0,3}[-*+]\s+(.*)$/;
const NUMBERED = /^\s{0,3}(\d{1,9})[.)]\s+(.*)$/;
const QUOTE = /^\s{0,3}>\s?(.*)$/;
const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;
// Inline: `code`, **bold** / __bold__, *italic* / _italic_, [text](http… url).
const INLINE = /(`+)([\s\S]*?[^`])\1(?!`)|\*\*(?=\S)([\s\S]*?\S)\*\*|__(?=\S)([\s\S]*?\S)__|\*(?=[^\s*])([^*]*?[^\s*])\*|\b_(?=[^\s_])([^_]*?[^\s_])_\b|\[([^\]\n]+)\]\(\s*(https?:\/\/[^\s)]+)\s*\)/g;

/** Append the inline content of `text` to `parent`. */
function inline(parent, text) {
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    if (match.index > last) parent.append(text.slice(last, match.index));
    const [, ticks, code, bold1, bold2, italic1, italic2, linkText, href] = match;
    if (ticks) parent.append(el("code", { text: code.trim() === "" ? code : code.replace(/^ (.*) $/s, "$1") }));
    else if (bold1 !== undefined || bold2 !== undefined) inline(parent.appendChild(el("strong")), bold1 ?? bold2);
    else if (italic1 !== undefined || italic2 !== undefined) inline(parent.appendChild(el("em")), italic1 ?? italic2);
    else if (href) {
      // Only http(s) links (the pattern says so): never javascript: or data: ones.
      parent.append(el("a", { href, target: "_blank", rel: "noopener noreferrer nofollow", text: linkText }));
    }
    last = match.index + match[0].length;
  }
  if (last < text.length) parent.append(text.slice(last));
}

/** Lines joined by soft breaks inside one paragraph keep their line ends (models write poems too). */
function paragraph(lines) {
  const p = el("p");
  lines.forEach((line, i) => {
    if (i > 0) p.append(el("br"));
    inline(p, line.trim());
  });
  return p;
}

function blockStart(line) {
  return FENCE.test(line) || HEADING.test(line) || BULLET.test(line) || NUMBERED.test(line) || QUOTE.test(line) || RULE.test(line);
}

/** The block elements of `text`. */
export function markdownNodes(text) {
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (line.trim() === "") {
      i += 1;
      continue;
    }
    const fence = line.match(FENCE);
    if (fence) {
      const marker = fence[1];
      const body = [];
      i += 1;
      while (i < lines.length && !lines[i].trimStart().startsWith(marker)) body.push(lines[i++]);
      i += 1; // the closing fence (or the end of an answer still streaming)
      const code = el("code", { text: body.join("\n") });
      if (fence[2]) code.className = `language-${fence[2]}`;
      if (fence[2]) out.push(el("div", { class: "code-lang", text: fence[2] }));
      out.push(el("pre", {}, code));
      continue;
    }
    const heading = line.match(HEADING);
    if (heading) {
      const h = el(`h${Math.min(heading[1].length + 1, 6)}`); // h1 is the page's
      inline(h, heading[2]);
      out.push(h);
      i += 1;
      continue;
    }
    if (RULE.test(line)) {
      out.push(el("hr"));
      i += 1;
      continue;
    }
    if (QUOTE.test(line)) {
      const quoted = [];
      while (i < lines.length && QUOTE.test(lines[i])) quoted.push(lines[i++].match(QUOTE)[1]);
      out.push(el("blockquote", {}, ...markdownNodes(quoted.join("\n"))));
      continue;
    }
    const bullet = BULLET.test(line);
    if (bullet || NUMBERED.test(line)) {
      const pattern = bullet ? BULLET : NUMBERED;
      const list = el(bullet ? "ul" : "ol");
      if (!bullet) {
        const start = Number(line.match(NUMBERED)[1]);
        if (start !== 1) list.setAttribute("start", String(start));
      }
      while (i < lines.length && pattern.test(lines[i])) {
        const m = lines[i].match(pattern);
        const item = el("li");
        inline(item, bullet ? m[1] : m[2]);
        i += 1;
        // Indented continuation lines belong to the item.
        while (i < lines.length && /^\s{2,}\S/.test(lines[i]) && !pattern.test(lines[i])) {
          item.append(el("br"));
          inline(item, lines[i++].trim());
        }
        list.append(item);
      }
      out.push(list);
      continue;
    }
    const para = [];
    while (i < lines.length && lines[i].trim() !== "" && (para.length === 0 || !blockStart(lines[i]))) {
      para.push(lines[i++]);
    }
    out.push(paragraph(para));
  }
  return out;
}

/** Render `text` as Markdown into `target`, replacing what was there. */
export function renderMarkdown(target, text) {
  target.replaceChildren(...markdownNodes(text));
}
