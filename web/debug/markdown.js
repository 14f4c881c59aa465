// A service's README (`help_md`) as a small markdown subset: headings, paragraphs, fenced code,
// bullet and numbered lists, block quotes, inline code, **bold**, *emphasis* and [links](http…).
// `parse` gives plain data; `render` builds DOM nodes from it with text nodes only, so markup in
// the README (`<script>`, `<img onerror>`) shows as the characters it is, never as HTML.
import { el } from './dom.js';

/** Inline spans: `[{type: 'text'|'code'|'strong'|'em', text} | {type: 'link', text, href}]`. */
function parseInline(text) {
  const spans = [];
  const pattern = /`([^`]+)`|\*\*([^*]+)\*\*|\*([^*\s][^*]*)\*|\[([^\]]+)\]\(([^)\s]+)\)/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index > last) spans.push({ type: 'text', text: text.slice(last, match.index) });
    if (match[1] !== undefined) spans.push({ type: 'code', text: match[1] });
    else if (match[2] !== undefined) spans.push({ type: 'strong', text: match[2] });
    else if (match[3] !== undefined) spans.push({ type: 'em', text: match[3] });
    // Only web links become links; anything else (javascript:, relative paths) stays text.
    else if (/^https?:\/\//i.test(match[5])) spans.push({ type: 'link', text: match[4], href: match[5] });
    else spans.push({ type: 'text', text: match[0] });
    last = match.index + match[0].length;
  }
  if (last < text.length) spans.push({ type: 'text', text: text.slice(last) });
  return spans;
}

/** Blocks: `{type: 'heading', level, spans} | {type: 'paragraph'|'quote', spans} | {type: 'code', text} | {type: 'list', ordered, items: [spans]}`. */
export function parse(markdown) {
  const blocks = [];
  const lines = String(markdown ?? '')
    .replace(/\r\n?/g, '\n')
    .split('\n');
  let paragraph = [];
  const endParagraph = () => {
    if (paragraph.length) blocks.push({ type: 'paragraph', spans: parseInline(paragraph.join(' ')) });
    paragraph = [];
  };
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i];
    const fence = /^\s*(```|~~~)/.exec(line);
    if (fence) {
      endParagraph();
      const code = [];
      for (i += 1; i < lines.length && !lines[i].trimStart().startsWith(fence[1]); i += 1) code.push(lines[i]);
      blocks.push({ type: 'code', text: code.join('\n') });
      continue;
    }
    const heading = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      endParagraph();
      blocks.push({ type: 'heading', level: heading[1].length, spans: parseInline(heading[2]) });
      continue;
    }
    const item = /^\s*([-*+]|\d+[.)])\s+(.*)$/.exec(line);
    if (item) {
      endParagraph();
      const ordered = /\d/.test(item[1]);
      const previous = blocks.at(-1);
      const list = previous?.type === 'list' && previous.ordered === ordered && previous.open ? previous : { type: 'list', ordered, items: [], open: true };
      if (list !== previous) blocks.push(list);
      list.items.push(parseInline(item[2]));
      continue;
    }
    const quote = /^\s*>\s?(.*)$/.exec(line);
    if (quote) {
      endParagraph();
      blocks.push({ type: 'quote', spans: parseInline(quote[1]) });
      continue;
    }
    if (line.trim() === '') {
      endParagraph();
      const previous = blocks.at(-1);
      if (previous?.type === 'list') previous.open = false;
      continue;
    }
    paragraph.push(line.trim());
  }
  endParagraph();
  for (const block of blocks) delete block.open;
  return blocks;
}

function renderSpans(spans) {
  return spans.map((span) => {
    switch (span.type) {
      case 'code':
        return el('code', {}, span.text);
      case 'strong':
        return el('strong', {}, span.text);
      case 'em':
        return el('em', {}, span.text);
      case 'link':
        return el('a', { href: span.href, rel: 'noopener noreferrer', target: '_blank' }, span.text);
      default:
        return span.text;
    }
  });
}

/** The README as DOM nodes (text only: nothing in it is markup). */
export function render(markdown) {
  return parse(markdown).map((block) => {
    switch (block.type) {
      case 'heading':
        return el(`h${Math.min(block.level + 2, 6)}`, { class: 'md-heading' }, renderSpans(block.spans));
      case 'code':
        return el('pre', {}, el('code', {}, block.text));
      case 'list':
        return el(
          block.ordered ? 'ol' : 'ul',
          {},
          block.items.map((spans) => el('li', {}, renderSpans(spans))),
        );
      case 'quote':
        return el('blockquote', {}, renderSpans(block.spans));
      default:
        return el('p', {}, renderSpans(block.spans));
    }
  });
}
