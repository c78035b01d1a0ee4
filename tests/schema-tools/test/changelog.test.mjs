import assert from 'node:assert/strict';
import { test } from 'node:test';
import { coordinateOf, newDeclarations, parseChangelog } from '../changelog.mjs';

test('coordinates in code spans, in graphql-inspector path form', () => {
  const cases = {
    'User.email': 'User.email',
    'User.email: String!': 'User.email',
    'Query.user(id:)': 'Query.user.id',
    'Query.user(id: ID!)': 'Query.user.id',
    'Query.user.id': 'Query.user.id',
    'Role.GUEST': 'Role.GUEST',
    Property: 'Property',
    '@defer': '@defer',
    ' User.email ': 'User.email',
    'host { email }': 'host',
    'User.email→x': null,
    '$id': null,
    '"quoted"': null,
  };
  for (const [span, want] of Object.entries(cases)) assert.equal(coordinateOf(span), want, span);
});

test('entries: bold headline only, dated sections only, continuation lines, fences', () => {
  const md = `# Schema changes

- **\`Preamble.field\`** is not in a dated section.

## How to

- **\`Docs.field\`** is not in a dated section either.

## Unreleased

- **\`Query.a\` and \`Query.b(x:)\` removed** — use \`Query.c\`, not \`Prose.field\`.
- \`NoBold.field\` has no headline.
* **\`Star.item\`
  wraps** onto a second line.

\`\`\`
- **\`Fenced.field\`**
\`\`\`

## 2026-12-01

### Auth

- **\`User.email: String!\` → \`String\`** (auth).
`;
  const entries = parseChangelog(md);
  assert.deepEqual(
    entries.map((e) => [e.line, e.section, e.coordinates]),
    [
      [11, 'Unreleased', ['Query.a', 'Query.b.x']],
      [12, 'Unreleased', []],
      [13, 'Unreleased', ['Star.item']],
      [24, '2026-12-01', ['User.email', 'String']],
    ],
  );
});

test('only entries that are new since the base declare', () => {
  const base = '## 2026-12-01\n\n- **`User.email`** old.\n';
  const now = '## 2027-01-01\n\n- **`User.name`** new.\n\n## 2026-12-01\n\n- **`User.email`** old.\n';
  assert.deepEqual([...newDeclarations(now, base).declared.keys()], ['User.name']);
  assert.deepEqual([...newDeclarations(now, null).declared.keys()], ['User.name', 'User.email']);
  const reworded = now.replace('old.', 'old, reworded.');
  assert.deepEqual([...newDeclarations(reworded, base).declared.keys()], ['User.name', 'User.email']);
});
