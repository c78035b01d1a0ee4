// Temporary repositories and a runner for the checkers, for node --test.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const TOOLS = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(TOOLS, '..', '..');

// The node_modules the checkers load from (next to them or on NODE_PATH).
export const NODE_MODULES = path.dirname(
  path.dirname(createRequire(import.meta.url).resolve('graphql/package.json')),
);

// Git's own variables would point the temp repos' git at another repository.
const env = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !/^GIT_(DIR|WORK_TREE|INDEX_FILE|OBJECT_DIRECTORY|CEILING_DIRECTORIES)$/.test(k)),
);

export function tempDir(t, prefix = 'schema-tools-') {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function write(dir, rel, text) {
  const file = path.join(dir, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

export function remove(dir, rel) {
  fs.rmSync(path.join(dir, rel));
}

export function git(dir, ...args) {
  return execFileSync('git', args, { cwd: dir, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** A git repo on branch main with user.name/email set locally. */
export function tempRepo(t) {
  const dir = tempDir(t);
  git(dir, 'init', '--quiet', '--initial-branch=main');
  git(dir, 'config', 'user.name', 'Schema Tools Test');
  git(dir, 'config', 'user.email', 'schema-tools@example.invalid');
  git(dir, 'config', 'commit.gpgsign', 'false');
  return dir;
}

export function commitAll(dir, message) {
  git(dir, 'add', '-A');
  git(dir, 'commit', '--quiet', '--allow-empty', '-m', message);
}

/** Runs a checker with cwd `cwd`; returns { status, stdout, stderr, output }. */
export function run(script, args, { cwd, scriptDir = TOOLS, extraEnv = {} } = {}) {
  const r = spawnSync(process.execPath, [path.join(scriptDir, script), ...args], {
    cwd,
    env: { ...env, ...extraEnv },
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, output: r.stdout + r.stderr };
}
