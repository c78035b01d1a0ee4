// Reads breaking-change declarations out of schema/CHANGELOG.md. The format (also documented
// at the top of that file and in README.md):
//
//   - Sections are level-2 headings `## YYYY-MM-DD` (or `## Unreleased`); anything before the
//     first such heading, and any other section, declares nothing.
//   - An entry is a top-level list item (`- ` or `* ` at the start of a line) with its
//     continuation lines, up to a blank line, the next item or the next heading.
//   - The entry's headline is the bold text it opens with, `**…**`. Every code span in the
//     headline that starts with a schema coordinate declares that coordinate:
//       `User.email`            `User.email: String!`   (text after `:`, space or `(` is ignored)
//       `Query.user(id:)`       `Query.user(id: ID!)`   (an argument; same as `Query.user.id`)
//       `Role.GUEST`  `Property`  `@defer`  `LoginInput.email`
//     A breaking change is declared when its coordinate — the `path` graphql-inspector gives it,
//     printed by check-breaking.mjs — is declared exactly.
//   - Only entries that are new or edited since the base revision count (the check compares
//     entries with the base revision's CHANGELOG.md), so an old entry about `User.email` does
//     not wave through a later, different break of `User.email`.

const NAME = '@?[_A-Za-z][_0-9A-Za-z]*';
const COORDINATE = new RegExp(
  `^(${NAME}(?:\\.${NAME})*)(?:\\(\\s*([_A-Za-z][_0-9A-Za-z]*)\\s*:[^)]*\\))?(?=$|[\\s:(!,\\[])`,
);
const SECTION = /^##\s+(\d{4}-\d{2}-\d{2}\b.*|Unreleased\b.*)$/i;
const HEADING = /^#{1,6}\s/;
const ITEM = /^[-*]\s+/;
const FENCE = /^\s*(```|~~~)/;

/** The coordinate a code span's text declares, in graphql-inspector's path form, or null. */
export function coordinateOf(codeSpan) {
  const m = COORDINATE.exec(codeSpan.trim());
  if (!m) return null;
  return m[2] ? `${m[1]}.${m[2]}` : m[1];
}

/**
 * Entries of a CHANGELOG: [{ line, section, text, headline, coordinates }]. `line` is the
 * entry's first line (1-based); entries outside dated sections are not returned.
 */
export function parseChangelog(markdown) {
  const entries = [];
  let section = null;
  let current = null;
  let inFence = false;
  const close = () => {
    if (current) entries.push(finish(current));
    current = null;
  };
  const lines = markdown.split(/\r?\n/);
  lines.forEach((raw, i) => {
    if (FENCE.test(raw)) {
      inFence = !inFence;
      close();
      return;
    }
    if (inFence) return;
    if (HEADING.test(raw)) {
      close();
      const level = /^#+/.exec(raw)[0].length;
      if (level === 1) section = null;
      if (level === 2) section = SECTION.test(raw.trim()) ? raw.trim().replace(/^##\s+/, '') : null;
      return; // ### and deeper stay in their section
    }
    if (raw.trim() === '') {
      close();
      return;
    }
    if (ITEM.test(raw)) {
      close();
      if (section) current = { line: i + 1, section, lines: [raw.replace(ITEM, '')] };
      return;
    }
    if (current) current.lines.push(raw.trim());
  });
  close();
  return entries;
}

function finish({ line, section, lines }) {
  const text = lines.join(' ').replace(/\s+/g, ' ').trim();
  const bold = /^\*\*(.+?)\*\*/.exec(text);
  const headline = bold ? bold[1] : null;
  const coordinates = [];
  if (headline) {
    for (const m of headline.matchAll(/`([^`]+)`/g)) {
      const c = coordinateOf(m[1]);
      if (c && !coordinates.includes(c)) coordinates.push(c);
    }
  }
  return { line, section, text, headline, coordinates };
}

/**
 * Declarations that count: entries of `current` whose text is not an entry of `base` (null when
 * the base revision has no CHANGELOG). Returns Map coordinate -> entry (the first one).
 */
export function newDeclarations(current, base) {
  // Compared by text alone: moving an entry between sections does not make it new.
  const old = new Set(base === null ? [] : parseChangelog(base).map((e) => e.text));
  const declared = new Map();
  const fresh = parseChangelog(current).filter((e) => !old.has(e.text));
  for (const entry of fresh) {
    for (const c of entry.coordinates) if (!declared.has(c)) declared.set(c, entry);
  }
  return { declared, fresh };
}
