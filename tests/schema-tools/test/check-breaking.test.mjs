import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, commitAll, git, run, tempRepo, write } from '../testing.mjs';

const SCHEMA = `
type Query {
  user(id: ID!): User
  users(first: Int): [User!]!
}
type User {
  id: ID!
  name: String!
  email: String!
  role: Role!
}
enum Role { GUEST HOST ADMIN }
`;

const CHANGELOG = `# Schema changes

Intro text: \`User.name\` mentioned up here declares nothing.

## 2026-12-01

- **\`User.role\` added** (auth). Nothing to do.
`;

/** A repo whose main has two commits: the second adds schema/api.graphql = SCHEMA. */
function repoWithSchema(t, changelog = CHANGELOG) {
  const dir = tempRepo(t);
  write(dir, 'README.md', 'test repo\n');
  commitAll(dir, 'first');
  write(dir, 'schema/api.graphql', SCHEMA);
  write(dir, 'schema/CHANGELOG.md', changelog);
  commitAll(dir, 'schema');
  return dir;
}

const check = (dir, ...args) => run('check-breaking.mjs', args, { cwd: dir });
const edit = (dir, from, to) => {
  const file = path.join(dir, 'schema/api.graphql');
  const text = fs.readFileSync(file, 'utf8');
  assert.ok(text.includes(from), `schema has ${from}`);
  fs.writeFileSync(file, text.replace(from, to));
};
const addEntry = (dir, entry) => {
  const file = path.join(dir, 'schema/CHANGELOG.md');
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('## 2026-12-01', `## 2027-01-15\n\n${entry}\n\n## 2026-12-01`));
};

test('a removed field fails, naming the coordinate and its criticality', (t) => {
  const dir = repoWithSchema(t);
  edit(dir, '  name: String!\n', '');
  const r = check(dir, '--base', 'HEAD');
  assert.equal(r.status, 1, r.output);
  assert.match(r.stdout, /^BREAKING {2}User\.name: Field 'name' was removed from object type 'User'$/m);
  assert.match(r.stdout, /^FAIL: 1 undeclared breaking change \(User\.name\)/m);
});

test('an added optional field passes', (t) => {
  const dir = repoWithSchema(t);
  edit(dir, '  name: String!\n', '  name: String!\n  avatarUrl: String\n');
  const r = check(dir, '--base', 'HEAD');
  assert.equal(r.status, 0, r.output);
  assert.match(r.stdout, /^NON_BREAKING {2}User\.avatarUrl: Field 'avatarUrl' was added/m);
  assert.match(r.stdout, /^OK: schema\/api\.graphql has no undeclared breaking change vs HEAD /m);
});

test('an added required argument fails', (t) => {
  const dir = repoWithSchema(t);
  edit(dir, 'user(id: ID!): User', 'user(id: ID!, tenant: String!): User');
  const r = check(dir, '--base', 'HEAD');
  assert.equal(r.status, 1, r.output);
  assert.match(r.stdout, /^BREAKING {2}Query\.user\.tenant: /m);
});

test('an argument made required fails; declared as Type.field(arg:) it passes', (t) => {
  const dir = repoWithSchema(t);
  edit(dir, 'users(first: Int)', 'users(first: Int!)');
  const r = check(dir, '--base', 'HEAD');
  assert.equal(r.status, 1, r.output);
  assert.match(r.stdout, /^BREAKING {2}Query\.users\.first: Type for argument 'first' on field 'Query\.users' changed from 'Int' to 'Int!'$/m);
  addEntry(dir, '- **`Query.users(first: Int!)` is required**. Pass `first`.');
  const ok = check(dir, '--base', 'HEAD');
  assert.equal(ok.status, 0, ok.output);
  assert.match(ok.stdout, /^BREAKING \(declared\) {2}Query\.users\.first:/m);
});

test('a declared removal passes with a note', (t) => {
  const dir = repoWithSchema(t);
  edit(dir, '  name: String!\n', '');
  addEntry(dir, '- **`User.name` removed** (auth). Read `displayName` instead.');
  const r = check(dir, '--base', 'HEAD');
  assert.equal(r.status, 0, r.output);
  assert.match(r.stdout, /^BREAKING \(declared\) {2}User\.name: Field 'name' was removed/m);
  assert.match(r.stdout, /^ {4}declared in schema\/CHANGELOG\.md:7 \(## 2027-01-15\)$/m);
  assert.match(r.stdout, /1 breaking \(1 declared\)/);
});

test('an undeclared removal fails naming the coordinate, even next to a declared one', (t) => {
  const dir = repoWithSchema(t);
  edit(dir, '  name: String!\n  email: String!\n', '');
  addEntry(dir, '- **`User.name` removed**. Read `displayName` instead; `User.email` is mentioned in prose only.');
  const r = check(dir, '--base', 'HEAD');
  assert.equal(r.status, 1, r.output);
  assert.match(r.stdout, /^BREAKING \(declared\) {2}User\.name:/m);
  assert.match(r.stdout, /^BREAKING {2}User\.email:/m);
  assert.match(r.stdout, /^ {4}not declared: add an entry with `User\.email` in its \*\*headline\*\*/m);
  assert.match(r.stdout, /^FAIL: 1 undeclared breaking change \(User\.email\)/m);
});

test('an entry that was already there at the base does not declare a new break', (t) => {
  const dir = repoWithSchema(t);
  edit(dir, '  role: Role!\n', '');
  const r = check(dir, '--base', 'HEAD');
  assert.equal(r.status, 1, r.output);
  assert.match(r.stdout, /^FAIL: 1 undeclared breaking change \(User\.role\)/m);
});

test('the preamble above the first dated heading declares nothing', (t) => {
  const dir = repoWithSchema(t);
  edit(dir, '  name: String!\n', '');
  fs.writeFileSync(path.join(dir, 'schema/CHANGELOG.md'), CHANGELOG.replace('Intro text', '- **`User.name`** intro'));
  const r = check(dir, '--base', 'HEAD');
  assert.equal(r.status, 1, r.output);
});

test('removed enum values and types fail; dangerous changes are warnings only', (t) => {
  const dir = repoWithSchema(t);
  edit(dir, 'enum Role { GUEST HOST ADMIN }', 'enum Role { GUEST ADMIN OWNER }');
  const r = check(dir, '--base', 'HEAD');
  assert.equal(r.status, 1, r.output);
  assert.match(r.stdout, /^BREAKING {2}Role\.HOST: Enum value 'HOST' was removed/m);
  assert.match(r.stdout, /^warning: DANGEROUS {2}Role\.OWNER: Enum value 'OWNER' was added/m);
  assert.match(r.stdout, /^FAIL: 1 undeclared breaking change \(Role\.HOST\)/m);

  edit(dir, 'enum Role { GUEST ADMIN OWNER }', 'enum Role { GUEST HOST ADMIN OWNER }');
  edit(dir, 'users(first: Int)', 'users(first: Int, after: String)');
  const ok = check(dir, '--base', 'HEAD');
  assert.equal(ok.status, 0, ok.output);
  assert.match(ok.stdout, /^warning: DANGEROUS {2}Query\.users\.after:/m);
  assert.match(ok.stdout, /0 breaking \(0 declared\), 2 dangerous, 0 safe/);
});

test('the default base on main is HEAD~1: the last commit is checked', (t) => {
  const dir = repoWithSchema(t);
  edit(dir, '  name: String!\n', '');
  commitAll(dir, 'drop User.name');
  const r = check(dir);
  assert.equal(r.status, 1, r.output);
  assert.match(r.stdout, /working tree vs HEAD~1 \([0-9a-f]{12}\)/);
  assert.match(r.stdout, /\(User\.name\)/);
});

test('the default base on a branch is its merge-base with main', (t) => {
  const dir = repoWithSchema(t);
  git(dir, 'switch', '--quiet', '-c', 'feature');
  edit(dir, '  name: String!\n', '');
  commitAll(dir, 'drop User.name');
  write(dir, 'README.md', 'later, unrelated\n');
  commitAll(dir, 'unrelated');
  const mb = git(dir, 'rev-parse', 'main').slice(0, 12);
  const r = check(dir);
  assert.equal(r.status, 1, r.output);
  assert.match(r.stdout, new RegExp(`working tree vs merge-base HEAD main \\(${mb}\\)`));
  assert.match(r.stdout, /\(User\.name\)/);
});

test('a detached HEAD on main compares with its previous commit', (t) => {
  const dir = repoWithSchema(t);
  edit(dir, '  name: String!\n', '');
  commitAll(dir, 'drop User.name');
  git(dir, 'switch', '--quiet', '--detach', 'main');
  const r = check(dir);
  assert.equal(r.status, 1, r.output);
  assert.match(r.stdout, /working tree vs HEAD~1/);
});

test('no schema at the base (the first commit with it) passes and says so', (t) => {
  const dir = repoWithSchema(t);
  const r = check(dir); // HEAD added the file; HEAD~1 has none
  assert.equal(r.status, 0, r.output);
  assert.match(r.stdout, /^schema\/api\.graphql does not exist at HEAD~1 \([0-9a-f]{12}\): first commit with it, nothing to compare; passing$/m);
});

test('a first commit with no parent passes and says so', (t) => {
  const dir = tempRepo(t);
  write(dir, 'schema/api.graphql', SCHEMA);
  commitAll(dir, 'only');
  const r = check(dir);
  assert.equal(r.status, 0, r.output);
  assert.match(r.stdout, /HEAD is the first commit/);
});

test('an unknown --base is an error (exit 2), not a pass', (t) => {
  const dir = repoWithSchema(t);
  const r = check(dir, '--base', 'no-such-rev');
  assert.equal(r.status, 2, r.output);
  assert.match(r.stderr, /--base no-such-rev: no such revision/);
});

test('--repo works from another directory', (t) => {
  const dir = repoWithSchema(t);
  edit(dir, '  name: String!\n', '');
  const r = run('check-breaking.mjs', ['--repo', dir, '--base', 'HEAD'], { cwd: path.dirname(dir) });
  assert.equal(r.status, 1, r.output);
  assert.match(r.stdout, /\(User\.name\)/);
});

test("the repository's CHANGELOG entry declares User.email: String! -> String", (t) => {
  const real = path.join(REPO_ROOT, 'schema/CHANGELOG.md');
  if (!fs.existsSync(real)) return t.skip('not run from the repository');
  const dir = tempRepo(t);
  write(dir, 'schema/api.graphql', SCHEMA);
  commitAll(dir, 'before the change, no CHANGELOG yet');
  edit(dir, 'email: String!', 'email: String');
  write(dir, 'schema/CHANGELOG.md', fs.readFileSync(real, 'utf8'));
  const r = check(dir, '--base', 'HEAD');
  assert.equal(r.status, 0, r.output);
  assert.match(r.stdout, /^BREAKING \(declared\) {2}User\.email: Field 'User\.email' changed type from 'String!' to 'String'$/m);
  assert.match(r.stdout, /declared in schema\/CHANGELOG\.md:\d+ \(## 2026-12-01\)/);
});
