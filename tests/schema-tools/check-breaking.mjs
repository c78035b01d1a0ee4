#!/usr/bin/env node
// Compares the API schema in the working tree with the same file at a base revision, using
// graphql-inspector's diff, and fails on every BREAKING change that schema/CHANGELOG.md does not
// declare. See README.md in this directory for the declaration format.
//
//   node tests/schema-tools/check-breaking.mjs [--repo <dir>] [--base <rev>] [--schema <file>] [--changelog <file>]
//
// Exit 0: no undeclared breaking change; 1: at least one; 2: the check could not run.
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { parseArgs } from 'node:util';
import { newDeclarations } from './changelog.mjs';
import { fatal, git, loadDeps, plural, repoRelative, resolveRepo } from './lib.mjs';

const USAGE = `usage: node check-breaking.mjs [--repo <dir>] [--base <rev>] [--schema <file>] [--changelog <file>]

Diffs <schema> in the working tree against <schema> at <rev> and fails on each BREAKING change
not declared in <changelog>. DANGEROUS changes are warnings; nothing needs the network.

  --repo <dir>        repository root (default: git rev-parse --show-toplevel of the cwd)
  --base <rev>        revision to compare with (default: HEAD~1 when HEAD is main,
                      else git merge-base HEAD main)
  --schema <file>     default: schema/api.graphql
  --changelog <file>  default: schema/CHANGELOG.md`;

let args;
try {
  args = parseArgs({
    options: {
      repo: { type: 'string' },
      base: { type: 'string' },
      schema: { type: 'string', default: 'schema/api.graphql' },
      changelog: { type: 'string', default: 'schema/CHANGELOG.md' },
      help: { type: 'boolean', short: 'h' },
    },
  });
} catch (err) {
  fatal(`${err.message}\n${USAGE}`);
}
if (args.values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const out = (line = '') => process.stdout.write(`${line}\n`);
const repo = resolveRepo(args.values.repo, { requireGit: true });
const schemaRel = repoRelative(repo, args.values.schema);
const changelogRel = repoRelative(repo, args.values.changelog);

const commit = (rev) => git(repo, ['rev-parse', '--verify', '--quiet', `${rev}^{commit}`]);
const short = (sha) => sha.slice(0, 12);

/** { label, sha } of the revision to compare with, or exits when there is none. */
function resolveBase() {
  if (args.values.base) {
    const sha = commit(args.values.base);
    if (!sha) fatal(`--base ${args.values.base}: no such revision in ${repo}`);
    return { label: args.values.base, sha };
  }
  const head = commit('HEAD');
  if (!head) {
    out(`no commit yet in ${repo}: nothing to compare ${schemaRel} with; passing`);
    process.exit(0);
  }
  const branch = git(repo, ['symbolic-ref', '--quiet', '--short', 'HEAD']); // null when detached
  let previous = branch === 'main';
  let why = 'HEAD is main';
  if (!previous) {
    const main = ['main', 'origin/main'].find((ref) => commit(ref));
    if (!main) fatal(`no main branch to compare with (HEAD is ${branch ?? 'detached'}): pass --base <rev>`);
    const mb = git(repo, ['merge-base', 'HEAD', main]);
    if (!mb) fatal(`HEAD and ${main} have no common ancestor: pass --base <rev>`);
    if (mb === head && branch === null) {
      // Detached at a commit of main (a CI checkout): its own previous commit.
      previous = true;
      why = `HEAD is detached on ${main}`;
    } else {
      return { label: `merge-base HEAD ${main}`, sha: mb };
    }
  }
  const sha = commit('HEAD~1');
  if (!sha) {
    if (git(repo, ['rev-parse', '--is-shallow-repository']) === 'true') {
      fatal(`${why} but HEAD~1 is not in this shallow clone: fetch one more commit (git fetch --deepen=1) or pass --base <rev>`);
    }
    out(`HEAD is the first commit: nothing to compare ${schemaRel} with; passing`);
    process.exit(0);
  }
  return { label: 'HEAD~1', sha };
}

/** The file at `sha`, or null when it does not exist there. */
function atRevision(sha, rel) {
  if (git(repo, ['cat-file', '-e', `${sha}:${rel}`]) === null) return null;
  return git(repo, ['show', `${sha}:${rel}`], { trim: false });
}

const base = resolveBase();
const baseName = `${base.label} (${short(base.sha)})`;
const schemaPath = path.join(repo, schemaRel);
if (!fs.existsSync(schemaPath)) {
  out(`FAIL: ${schemaRel} is missing from the working tree (it is the API schema clients see)`);
  process.exit(1);
}
const baseSdl = atRevision(base.sha, schemaRel);
if (baseSdl === null) {
  out(`${schemaRel} does not exist at ${baseName}: first commit with it, nothing to compare; passing`);
  process.exit(0);
}

const { graphql, inspector } = loadDeps();
const build = (sdl, name) => {
  try {
    return graphql.buildSchema(new graphql.Source(sdl, name));
  } catch (err) {
    fatal(`${name} is not a valid schema: ${err.message}`);
  }
};
const oldSchema = build(baseSdl, `${schemaRel} at ${baseName}`);
const newSchema = build(fs.readFileSync(schemaPath, 'utf8'), schemaRel);
const changes = await inspector.diff(oldSchema, newSchema);

const changelogPath = path.join(repo, changelogRel);
const changelog = fs.existsSync(changelogPath) ? fs.readFileSync(changelogPath, 'utf8') : '';
const { declared } = newDeclarations(changelog, atRevision(base.sha, changelogRel));

out(`${schemaRel}: working tree vs ${baseName}, ${plural(changes.length, 'change')}`);
const { Breaking, Dangerous } = inspector.CriticalityLevel;
const order = { [Breaking]: 0, [Dangerous]: 1 };
changes.sort((a, b) => (order[a.criticality.level] ?? 2) - (order[b.criticality.level] ?? 2));

const undeclared = [];
let breaking = 0;
let dangerous = 0;
for (const change of changes) {
  // Changes without a path (the schema's root types) are declared by their type, e.g.
  // `SCHEMA_QUERY_TYPE_CHANGED`.
  const coordinate = change.path ?? change.type;
  const { level, reason } = change.criticality;
  if (level === Breaking) {
    breaking += 1;
    const entry = declared.get(coordinate);
    if (entry) {
      out(`BREAKING (declared)  ${coordinate}: ${change.message}`);
      out(`    declared in ${changelogRel}:${entry.line} (## ${entry.section})`);
    } else {
      undeclared.push(coordinate);
      out(`BREAKING  ${coordinate}: ${change.message}`);
      if (reason) out(`    ${reason}`);
      out(`    not declared: add an entry with \`${coordinate}\` in its **headline** under a dated heading in ${changelogRel}`);
    }
  } else if (level === Dangerous) {
    dangerous += 1;
    out(`warning: DANGEROUS  ${coordinate}: ${change.message}`);
    if (reason) out(`    ${reason}`);
  } else {
    out(`${level}  ${coordinate}: ${change.message}`);
  }
}

const tally =
  `${breaking} breaking (${breaking - undeclared.length} declared), ${dangerous} dangerous, ` +
  `${changes.length - breaking - dangerous} safe`;
if (undeclared.length) {
  const names = [...new Set(undeclared)];
  out(`FAIL: ${plural(undeclared.length, 'undeclared breaking change')} (${names.join(', ')}); ${tally}`);
  process.exit(1);
}
out(`OK: ${schemaRel} has no undeclared breaking change vs ${baseName}; ${tally}`);
