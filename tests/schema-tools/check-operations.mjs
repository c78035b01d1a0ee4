#!/usr/bin/env node
// Validates every GraphQL operation and fragment document in the repository against the API
// schema clients see (schema/api.graphql). See README.md in this directory.
//
//   node tests/schema-tools/check-operations.mjs [--repo <dir>] [--schema <file>] [glob…]
//
// Exit 0: every document is valid (or none was found); 1: at least one error, each printed as
// `file:line:column: message`; 2: the check could not run.
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { parseArgs } from 'node:util';
import { fatal, loadDeps, plural, repoRelative, resolveRepo } from './lib.mjs';

const DEFAULT_SCHEMA = 'schema/api.graphql';
const DEFAULT_GLOBS = ['frontend-examples/**/*.graphql', 'docs/**/*.graphql'];
const IGNORE = ['**/node_modules/**'];

const USAGE = `usage: node check-operations.mjs [--repo <dir>] [--schema <file>] [glob…]

Validates every operation and fragment in the matched .graphql documents against the schema.
Fragments are resolved across files by name (no #import needed).

  --repo <dir>     repository root; globs and --schema are relative to it
                   (default: git rev-parse --show-toplevel of the cwd, else the cwd)
  --schema <file>  schema SDL (default: ${DEFAULT_SCHEMA})
  glob…            documents to check (default: ${DEFAULT_GLOBS.join(' ')});
                   ${IGNORE.join(', ')} is always skipped`;

let args;
try {
  args = parseArgs({
    allowPositionals: true,
    options: {
      repo: { type: 'string' },
      schema: { type: 'string', default: DEFAULT_SCHEMA },
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

const { graphql, tinyglobby } = loadDeps();
const {
  Kind, Source, buildSchema, parse, visit, validate, getLocation,
  specifiedRules, NoUnusedFragmentsRule, NoDeprecatedCustomRule, GraphQLError,
} = graphql;

const repo = resolveRepo(args.values.repo, { requireGit: false });
const schemaRel = repoRelative(repo, args.values.schema);
const schemaPath = path.join(repo, schemaRel);
if (!fs.existsSync(schemaPath)) fatal(`schema not found: ${schemaPath}`);
let schema;
try {
  schema = buildSchema(new Source(fs.readFileSync(schemaPath, 'utf8'), schemaRel));
} catch (err) {
  fatal(`${schemaRel} is not a valid schema: ${err.message}`);
}

// ---- find documents ------------------------------------------------------------------------
const userGlobs = args.positionals.length > 0;
const patterns = (userGlobs ? args.positionals : DEFAULT_GLOBS).map((p) =>
  path.isAbsolute(p) ? repoRelative(repo, p) : p,
);
const files = new Set();
for (const pattern of patterns) {
  const found = tinyglobby.globSync(pattern, { cwd: repo, ignore: IGNORE, onlyFiles: true });
  if (found.length === 0 && userGlobs && !tinyglobby.isDynamicPattern(pattern)) {
    process.stdout.write(`warning: ${pattern}: no such file\n`);
  }
  for (const f of found) {
    // The schema itself is SDL, not a client document.
    if (f !== schemaRel) files.add(f);
  }
}
const sorted = [...files].sort();
if (sorted.length === 0) {
  process.stdout.write(
    `no GraphQL documents found (${patterns.join(', ')}): nothing to validate against ${schemaRel}\n`,
  );
  process.exit(0);
}

// ---- parse ---------------------------------------------------------------------------------
const problems = []; // { file, line, column, message }
const warnings = [];
const seen = new Set();
function report(list, err, fallbackFile) {
  // The first AST node carries its own Source, which for a fragment from another document is
  // that document: report the error where the offending text is.
  let file = fallbackFile;
  let line = 1;
  let column = 1;
  const node = err.nodes?.find((n) => n.loc);
  if (node) {
    file = node.loc.source.name;
    ({ line, column } = getLocation(node.loc.source, node.loc.start));
  } else if (err.source && err.locations?.length) {
    file = err.source.name;
    ({ line, column } = err.locations[0]);
  }
  const key = `${file}:${line}:${column}: ${err.message}`;
  if (seen.has(key)) return; // a shared fragment's error shows once, not once per user
  seen.add(key);
  list.push({ file, line, column, message: err.message });
}

const docs = []; // { file, document }
const skipped = [];
for (const file of sorted) {
  const text = fs.readFileSync(path.join(repo, file), 'utf8');
  let document;
  try {
    document = parse(new Source(text, file));
  } catch (err) {
    if (err instanceof GraphQLError) {
      report(problems, err, file);
      continue;
    }
    throw err;
  }
  const executable = document.definitions.filter(
    (d) => d.kind === Kind.OPERATION_DEFINITION || d.kind === Kind.FRAGMENT_DEFINITION,
  );
  if (executable.length === 0) {
    // Type definitions only (a schema or a client-side schema extension): not a client document.
    skipped.push(file);
    continue;
  }
  docs.push({ file, document });
}

// ---- fragments across files ----------------------------------------------------------------
const fragments = new Map(); // name -> FragmentDefinitionNode (first definition wins)
for (const { document } of docs) {
  for (const def of document.definitions) {
    if (def.kind !== Kind.FRAGMENT_DEFINITION) continue;
    const name = def.name.value;
    const first = fragments.get(name);
    if (!first) {
      fragments.set(name, def);
    } else if (first.loc.source !== def.loc.source) {
      // Within one document graphql-js's UniqueFragmentNamesRule reports it.
      const at = getLocation(first.loc.source, first.loc.start);
      report(
        problems,
        new GraphQLError(
          `There can be only one fragment named "${name}": also defined at ${first.loc.source.name}:${at.line}:${at.column}.`,
          { nodes: [def.name] },
        ),
        null,
      );
    }
  }
}

function spreadNames(node) {
  const names = [];
  visit(node, { FragmentSpread: (s) => void names.push(s.name.value) });
  return names;
}

// A document's own definitions plus every fragment they reach that lives in another document.
function withFragments(document) {
  const own = new Set(
    document.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => d.name.value),
  );
  const added = new Map();
  const queue = document.definitions.flatMap(spreadNames);
  while (queue.length) {
    const name = queue.shift();
    if (own.has(name) || added.has(name) || !fragments.has(name)) continue; // unknown: KnownFragmentNames reports it
    const def = fragments.get(name);
    added.set(name, def);
    queue.push(...spreadNames(def));
  }
  return { kind: Kind.DOCUMENT, definitions: [...document.definitions, ...added.values()] };
}

// graphql-js 16 does not check that the schema has the operation's root type (17 does, with
// this message); without it a mutation against a schema with no Mutation type validates.
function KnownOperationTypesRule(context) {
  return {
    OperationDefinition(node) {
      if (!context.getSchema().getRootType(node.operation)) {
        context.reportError(
          new GraphQLError(`The ${node.operation} operation is not supported by the schema.`, { nodes: [node] }),
        );
      }
    },
  };
}
// Fragments are meant to be shared, so one that this document does not use is not an error
// (it is still validated here, against its type condition).
const rules = [...specifiedRules.filter((r) => r !== NoUnusedFragmentsRule), KnownOperationTypesRule];
let operations = 0;
let fragmentCount = 0;
for (const { file, document } of docs) {
  operations += document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION).length;
  fragmentCount += document.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION).length;
  const merged = withFragments(document);
  for (const err of validate(schema, merged, rules, { maxErrors: 1000 })) report(problems, err, file);
  for (const err of validate(schema, merged, [NoDeprecatedCustomRule])) report(warnings, err, file);
}

// ---- report --------------------------------------------------------------------------------
const byPlace = (a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column;
for (const file of skipped) {
  process.stdout.write(`note: ${file}: schema definitions only, not a client document; skipped\n`);
}
for (const w of warnings.sort(byPlace)) {
  process.stdout.write(`${w.file}:${w.line}:${w.column}: warning: ${w.message}\n`);
}
if (problems.length) {
  for (const p of problems.sort(byPlace)) process.stdout.write(`${p.file}:${p.line}:${p.column}: ${p.message}\n`);
  const bad = new Set(problems.map((p) => p.file)).size;
  process.stdout.write(
    `FAIL: ${plural(problems.length, 'error')} in ${bad} of ${plural(sorted.length - skipped.length, 'document')}, against ${schemaRel}\n`,
  );
  process.exit(1);
}
process.stdout.write(
  `${plural(docs.length, 'document')}, ${plural(operations, 'operation')} valid against ${schemaRel}` +
    `${fragmentCount ? ` (and ${plural(fragmentCount, 'fragment')})` : ''}\n`,
);
