// Drift check: regenerates the typed documents into a temporary directory and fails when they
// differ from the committed src/gql/ (an operation or the schema changed without `npm run codegen`).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const web = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const committed = path.join(web, 'src/gql');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'draftr-codegen-'));
try {
  const bin = path.join(web, 'node_modules/@graphql-codegen/cli/cjs/bin.js');
  const res = spawnSync(process.execPath, [bin, '--config', 'codegen.ts', '--silent'], {
    cwd: web,
    env: { ...process.env, CODEGEN_OUT: `${tmp}/` },
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (res.status !== 0) {
    process.stderr.write(`${res.stdout}${res.stderr}\ncodegen:check: graphql-codegen failed (${res.status ?? res.signal})\n`);
    process.exit(2);
  }
  const list = (dir) => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort() : []);
  const fresh = list(tmp);
  const old = list(committed);
  const problems = [];
  for (const f of new Set([...fresh, ...old])) {
    if (!old.includes(f)) problems.push(`src/gql/${f}: missing (generated but not committed)`);
    else if (!fresh.includes(f)) problems.push(`src/gql/${f}: no longer generated`);
    else if (fs.readFileSync(path.join(tmp, f), 'utf8') !== fs.readFileSync(path.join(committed, f), 'utf8')) {
      problems.push(`src/gql/${f}: differs from what codegen generates now`);
    }
  }
  if (problems.length) {
    process.stdout.write(`${problems.join('\n')}\ncodegen:check: FAIL: src/gql/ is out of date; run \`npm run codegen\` and commit it\n`);
    process.exit(1);
  }
  process.stdout.write(`codegen:check: src/gql/ is up to date (${fresh.length} files, schema ../../schema/api.graphql)\n`);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
