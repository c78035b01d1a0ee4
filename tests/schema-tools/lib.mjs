// Shared helpers for check-operations.mjs and check-breaking.mjs.
//
// Dependencies are loaded with require() (their CommonJS builds) rather than `import`, so that
// they resolve from node_modules next to this file *or* from NODE_PATH: ESM imports ignore
// NODE_PATH, require() honours it. graphql and @graphql-inspector/core must come from the same
// build (CJS here) or graphql-js refuses schemas "from another module or realm".
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import process from 'node:process';

const require = createRequire(import.meta.url);

export function loadDeps() {
  try {
    return {
      graphql: require('graphql'),
      inspector: require('@graphql-inspector/core'),
      tinyglobby: require('tinyglobby'),
    };
  } catch (err) {
    if (err && err.code === 'MODULE_NOT_FOUND') {
      fatal(
        `${err.message.split('\n')[0]}\n` +
          'Install the schema tools first: `npm ci` in tests/schema-tools, or install them elsewhere and ' +
          'run with NODE_PATH=<that dir>/node_modules (see tests/schema-tools/README.md).',
      );
    }
    throw err;
  }
}

/** Exit 2: the check could not run (bad arguments, missing file, not a git repository…). */
export function fatal(message) {
  process.stderr.write(`error: ${message}\n`);
  process.exit(2);
}

/** Runs git in `repo`; returns trimmed stdout, or null when git exits non-zero. */
export function git(repo, args, { trim = true } = {}) {
  try {
    const out = execFileSync('git', ['-C', repo, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 256 * 1024 * 1024,
    });
    return trim ? out.trim() : out;
  } catch (err) {
    if (err.code === 'ENOENT') fatal('git is not installed');
    return null;
  }
}

/** --repo, else the top level of the git work tree containing the cwd, else (if allowed) the cwd. */
export function resolveRepo(option, { requireGit }) {
  if (option) {
    const dir = path.resolve(option);
    if (requireGit && git(dir, ['rev-parse', '--show-toplevel']) === null) {
      fatal(`--repo ${option}: not a git work tree`);
    }
    return dir;
  }
  const top = git(process.cwd(), ['rev-parse', '--show-toplevel']);
  if (top) return top;
  if (requireGit) fatal('not inside a git work tree: run from the repository or pass --repo <dir>');
  return process.cwd();
}

/** A path given on the command line, relative to the repository root, with forward slashes. */
export function repoRelative(repo, p) {
  const abs = path.resolve(repo, p);
  return path.relative(repo, abs).split(path.sep).join('/');
}

export function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
