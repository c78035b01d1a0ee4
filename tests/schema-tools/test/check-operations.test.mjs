import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { NODE_MODULES, TOOLS, git, run, tempDir, tempRepo, write } from '../testing.mjs';

const SCHEMA = `
type Query {
  me: User
  user(id: ID!): User
}
type Mutation { rename(name: String!): User! }
type User {
  id: ID!
  name: String!
  handle: String @deprecated(reason: "Use name.")
  friends(first: Int): [User!]!
}
`;

// One fragment file and two operation files that use it, as the web app lays them out.
function project(t, { schema = SCHEMA, repo = false } = {}) {
  const dir = repo ? tempRepo(t) : tempDir(t);
  write(dir, 'schema/api.graphql', schema);
  write(dir, 'frontend-examples/web/src/graphql/UserFields.graphql', `fragment UserFields on User {
  id
  name
}
`);
  write(dir, 'frontend-examples/web/src/graphql/Me.graphql', `query Me {
  me {
    ...UserFields
    friends(first: 3) { ...UserFields }
  }
}
`);
  write(dir, 'frontend-examples/web/src/graphql/Rename.graphql', `# comment line
mutation Rename($name: String!) {
  rename(name: $name) { ...UserFields }
}
`);
  return dir;
}

const check = (dir, ...args) => run('check-operations.mjs', ['--repo', dir, ...args], { cwd: dir });

test('valid operations pass with a one-line summary; fragments resolve across files', (t) => {
  const dir = project(t);
  const r = check(dir);
  assert.equal(r.status, 0, r.output);
  assert.equal(r.stdout, '3 documents, 2 operations valid against schema/api.graphql (and 1 fragment)\n');
});

test('an operation using a removed field fails, naming file, line and column', (t) => {
  const dir = project(t, { schema: SCHEMA.replace('  friends(first: Int): [User!]!\n', '') });
  const r = check(dir);
  assert.equal(r.status, 1, r.output);
  assert.match(
    r.stdout,
    /^frontend-examples\/web\/src\/graphql\/Me\.graphql:4:5: Cannot query field "friends" on type "User"\.$/m,
  );
  assert.match(r.stdout, /^FAIL: 1 error in 1 of 3 documents, against schema\/api\.graphql$/m);
});

test("a removed field in a shared fragment is reported once, at the fragment's file", (t) => {
  const dir = project(t, { schema: SCHEMA.replace('  name: String!\n', '') });
  const r = check(dir);
  assert.equal(r.status, 1, r.output);
  const lines = r.stdout.split('\n').filter((l) => l.includes('Cannot query field "name"'));
  assert.deepEqual(lines, [
    'frontend-examples/web/src/graphql/UserFields.graphql:3:3: Cannot query field "name" on type "User".',
  ]);
});

test('unknown fragments, wrong arguments and undefined variables fail', (t) => {
  const dir = project(t);
  write(dir, 'frontend-examples/web/src/graphql/Bad.graphql', `query Bad($id: ID!) {
  user(id: $id, extra: 1) { ...Missing }
  other: user(id: $nope) { id }
}
`);
  const r = check(dir);
  assert.equal(r.status, 1, r.output);
  const file = 'frontend-examples/web/src/graphql/Bad.graphql';
  assert.match(r.stdout, new RegExp(`^${file}:2:17: Unknown argument "extra" on field "Query\\.user"\\.$`, 'm'));
  assert.match(r.stdout, new RegExp(`^${file}:2:32: Unknown fragment "Missing"\\.$`, 'm'));
  assert.match(r.stdout, new RegExp(`^${file}:3:19: Variable "\\$nope" is not defined by operation "Bad"\\.$`, 'm'));
});

test('a syntax error is reported at its place', (t) => {
  const dir = project(t);
  write(dir, 'frontend-examples/web/src/graphql/Broken.graphql', 'query Broken {\n  me {\n');
  const r = check(dir);
  assert.equal(r.status, 1, r.output);
  assert.match(r.stdout, /^frontend-examples\/web\/src\/graphql\/Broken\.graphql:3:1: Syntax Error: Expected Name, found <EOF>\.$/m);
});

test('a fragment name defined in two files fails', (t) => {
  const dir = project(t);
  write(dir, 'frontend-examples/other/UserFields.graphql', 'fragment UserFields on User { id }\n');
  const r = check(dir);
  assert.equal(r.status, 1, r.output);
  assert.match(r.stdout, /There can be only one fragment named "UserFields": also defined at frontend-examples\/other\/UserFields\.graphql:1:1\./);
});

test('deprecated fields are warnings, not failures', (t) => {
  const dir = project(t);
  write(dir, 'frontend-examples/web/src/graphql/Handle.graphql', 'query Handle {\n  me { handle }\n}\n');
  const r = check(dir);
  assert.equal(r.status, 0, r.output);
  assert.match(r.stdout, /^frontend-examples\/web\/src\/graphql\/Handle\.graphql:2:8: warning: The field User\.handle is deprecated\. Use name\.$/m);
  assert.match(r.stdout, /^4 documents, 3 operations valid/m);
});

test('node_modules is skipped, docs/ is included, schema-only files are skipped', (t) => {
  const dir = project(t);
  write(dir, 'frontend-examples/web/node_modules/pkg/x.graphql', 'query X { nope }\n');
  write(dir, 'docs/examples/Me.graphql', 'query DocsMe { me { id } }\n');
  write(dir, 'frontend-examples/web/client-schema.graphql', 'extend type User { local: Boolean }\n');
  const r = check(dir);
  assert.equal(r.status, 0, r.output);
  assert.match(r.stdout, /^note: frontend-examples\/web\/client-schema\.graphql: schema definitions only/m);
  assert.match(r.stdout, /^4 documents, 3 operations valid against schema\/api\.graphql/m);
});

test('no documents found is not an error, and says so', (t) => {
  const dir = tempDir(t);
  write(dir, 'schema/api.graphql', SCHEMA);
  const r = check(dir);
  assert.equal(r.status, 0, r.output);
  assert.match(r.stdout, /^no GraphQL documents found \(frontend-examples\/\*\*\/\*\.graphql, docs\/\*\*\/\*\.graphql\): nothing to validate against schema\/api\.graphql$/m);
});

test('globs and --schema on the command line, relative to the repository', (t) => {
  const dir = project(t);
  write(dir, 'other/schema.graphql', SCHEMA.replace('type Mutation { rename(name: String!): User! }', ''));
  const r = check(dir, '--schema', 'other/schema.graphql', 'frontend-examples/web/src/graphql/Me.graphql', 'frontend-examples/**/UserFields.graphql');
  assert.equal(r.status, 0, r.output);
  assert.match(r.stdout, /^2 documents, 1 operation valid against other\/schema\.graphql/m);
  const bad = check(dir, '--schema', 'other/schema.graphql', 'frontend-examples/**/*.graphql');
  assert.equal(bad.status, 1, bad.output);
  assert.match(bad.stdout, /Rename\.graphql:2:1: The mutation operation is not supported by the schema\.$/m);
});

test('the repository root defaults to the git top level of the cwd', (t) => {
  const dir = project(t, { repo: true });
  git(dir, 'add', '-A');
  const r = run('check-operations.mjs', [], { cwd: path.join(dir, 'frontend-examples/web') });
  assert.equal(r.status, 0, r.output);
  assert.match(r.stdout, /^3 documents, 2 operations valid/m);
});

test('runs from a copy without node_modules when NODE_PATH points at one', (t) => {
  const dir = project(t);
  const copy = tempDir(t, 'schema-tools-copy-');
  for (const f of ['check-operations.mjs', 'check-breaking.mjs', 'lib.mjs', 'changelog.mjs']) {
    fs.copyFileSync(path.join(TOOLS, f), path.join(copy, f));
  }
  const without = run('check-operations.mjs', ['--repo', dir], { cwd: dir, scriptDir: copy, extraEnv: { NODE_PATH: '' } });
  assert.equal(without.status, 2, without.output);
  assert.match(without.stderr, /Cannot find module 'graphql'/);
  assert.match(without.stderr, /NODE_PATH/);
  const r = run('check-operations.mjs', ['--repo', dir], { cwd: dir, scriptDir: copy, extraEnv: { NODE_PATH: NODE_MODULES } });
  assert.equal(r.status, 0, r.output);
  assert.match(r.stdout, /^3 documents, 2 operations valid/m);
});
