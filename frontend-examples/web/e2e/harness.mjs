// What the browser tests and the push benchmark share: `draftr run` on a fresh data directory and
// free ports, the built app served by `vite preview` with a runtime config.json, Debian's
// Chromium through playwright-core, and cleanup of everything they started.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DRAFTR_BIN = process.env.DRAFTR_BIN || path.join(os.homedir(), '.cache/draftr/target/debug/draftr');
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const VITE = path.join(WEB_DIR, 'node_modules/vite/bin/vite.js');
// Vite 8.4 refuses a second `vite preview` of one project unless told --bypass-lock.
const VITE_VERSION = JSON.parse(fs.readFileSync(path.join(WEB_DIR, 'node_modules/vite/package.json'), 'utf8')).version;
const [viteMajor, viteMinor] = VITE_VERSION.split('.').map(Number);
const PREVIEW_LOCK_FLAG = viteMajor > 8 || (viteMajor === 8 && viteMinor >= 4) ? ['--bypass-lock'] : [];

const children = new Set();
const tmpDirs = new Set();

function killAll() {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const dir of tmpDirs) fs.rmSync(dir, { recursive: true, force: true });
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

/** Stops every process this module started (the tests call it last, whatever happened). */
export async function stopAll() {
  await Promise.all([...children].map((c) => stopChild(c)));
  for (const dir of tmpDirs) fs.rmSync(dir, { recursive: true, force: true });
  tmpDirs.clear();
}

export function tmpDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.add(dir);
  return dir;
}

/** A port nobody listens on right now (the OS picks it). */
/** Ports handed out so far: the kernel may give a just-closed port again. */
const handedOut = new Set();

/** A free port that this process has not handed out before. */
export async function freePort(host = '127.0.0.1') {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.unref();
      srv.on('error', reject);
      srv.listen(0, host, () => {
        const { port } = srv.address();
        srv.close(() => resolve(port));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a truthy value or `ms` pass. */
export async function waitFor(what, check, ms = 15_000, every = 100) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await sleep(every);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

function track(child, name, logFile) {
  children.add(child);
  const log = fs.createWriteStream(logFile);
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  child.on('exit', () => children.delete(child));
  child.logFile = logFile;
  child.label = name;
  return child;
}

async function stopChild(child, ms = 5000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  await exited;
  clearTimeout(timer);
}

/**
 * `draftr run` on a fresh data directory and free ports. `allowedOrigins` (a regular expression
 * the whole Origin must match) goes to DRAFTR_ALLOWED_ORIGINS: the router's CORS and the
 * notifications socket's Origin check.
 */
export async function startDraftr({ allowedOrigins, env = {}, logDir }) {
  if (!fs.existsSync(DRAFTR_BIN)) throw new Error(`no draftr binary at ${DRAFTR_BIN} (set DRAFTR_BIN)`);
  const dataDir = tmpDir('draftr-e2e-data-');
  const ports = {};
  // Distinct ports (freePort never repeats one): two parts on one port leave the router
  // unable to start.
  for (const k of ['router', 'auth', 'catalog', 'reservations', 'payments', 'notifications']) ports[k] = await freePort();
  const args = [
    'run',
    '--data-dir', dataDir,
    '--listen', `127.0.0.1:${ports.router}`,
    '--auth-listen', `127.0.0.1:${ports.auth}`,
    '--catalog-listen', `127.0.0.1:${ports.catalog}`,
    '--reservations-listen', `127.0.0.1:${ports.reservations}`,
    '--payments-listen', `127.0.0.1:${ports.payments}`,
    '--notifications-listen', `127.0.0.1:${ports.notifications}`,
  ];
  const child = track(
    spawn(DRAFTR_BIN, args, {
      env: { ...process.env, ...(allowedOrigins ? { DRAFTR_ALLOWED_ORIGINS: allowedOrigins } : {}), ...env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
    'draftr',
    path.join(logDir, `draftr-${ports.router}.log`),
  );
  let ready = false;
  child.stdout.on('data', (b) => {
    if (b.toString().includes('Draftr is ready')) ready = true;
  });
  const graphqlUrl = `http://127.0.0.1:${ports.router}/`;
  await waitFor('draftr to be ready', async () => {
    if (child.exitCode !== null) throw new Error(`draftr exited with ${child.exitCode}; see ${child.logFile}`);
    if (!ready) return false;
    const res = await fetch(`http://127.0.0.1:${ports.router}/health`);
    return res.ok;
  }, 60_000, 200);
  return {
    graphqlUrl,
    wsUrl: `ws://127.0.0.1:${ports.notifications}/ws`,
    ports,
    dataDir,
    log: child.logFile,
    stop: () => stopChild(child),
  };
}

/** `vite build`; returns the output dir and what vite printed (sizes, with gzip). */
export function buildApp(logDir) {
  const started = Date.now();
  const res = spawnSync(process.execPath, [VITE, 'build'], { cwd: WEB_DIR, encoding: 'utf8', timeout: 180_000 });
  const output = `${res.stdout}\n${res.stderr}`;
  fs.writeFileSync(path.join(logDir, 'vite-build.log'), output);
  if (res.status !== 0) throw new Error(`vite build failed (${res.status}); see ${path.join(logDir, 'vite-build.log')}`);
  return { dist: path.join(WEB_DIR, 'dist'), output, ms: Date.now() - started };
}

/**
 * Serves a copy of the built app with `vite preview` on host:port, with a config.json next to
 * index.html pointing it at a Draftr.
 */
export async function serveApp({ dist, config, host = '127.0.0.1', port, logDir }) {
  const dir = tmpDir('draftr-e2e-site-');
  fs.cpSync(dist, dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  const child = track(
    spawn(process.execPath, [VITE, 'preview', '--outDir', dir, '--host', host, '--port', String(port), '--strictPort', ...PREVIEW_LOCK_FLAG], {
      cwd: WEB_DIR,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
    'vite preview',
    path.join(logDir, `preview-${host}-${port}.log`),
  );
  const url = `http://${host}:${port}/`;
  await waitFor(`vite preview at ${url}`, async () => {
    if (child.exitCode !== null) throw new Error(`vite preview exited with ${child.exitCode}; see ${child.logFile}`);
    const res = await fetch(`${url}config.json`);
    return res.ok;
  }, 30_000, 200);
  return { url, origin: url.slice(0, -1), stop: () => stopChild(child) };
}

export async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_BIN)`);
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, timeout: 30_000 });
}

/** A GraphQL request from node (no Origin header: CORS does not apply). */
export async function gql(url, query, variables = {}, token) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(15_000),
  });
  return res.json();
}

/** Records every GraphQL operation a page sends over HTTP, and every WebSocket frame it gets. */
export function recordTraffic(page, graphqlUrl) {
  const http = [];
  const frames = [];
  page.on('request', (req) => {
    if (req.url() !== graphqlUrl || req.method() !== 'POST') return;
    let op = null;
    try {
      op = JSON.parse(req.postData() ?? '{}').operationName ?? null;
    } catch {
      // not JSON
    }
    http.push({ op, at: Date.now() });
  });
  let sockets = 0;
  page.on('websocket', (ws) => {
    const socket = ++sockets;
    ws.on('framereceived', (f) => {
      let msg = null;
      try {
        msg = JSON.parse(typeof f.payload === 'string' ? f.payload : f.payload.toString());
      } catch {
        // not JSON
      }
      frames.push({ dir: 'in', msg, at: Date.now(), url: ws.url(), socket });
    });
    ws.on('framesent', (f) => {
      let msg = null;
      try {
        msg = JSON.parse(typeof f.payload === 'string' ? f.payload : f.payload.toString());
      } catch {
        // not JSON
      }
      frames.push({ dir: 'out', msg, at: Date.now(), url: ws.url(), socket });
    });
  });
  return { http, frames };
}

export function artifactsDir() {
  const dir = process.env.E2E_ARTIFACTS || path.join(WEB_DIR, 'test-artifacts', new Date().toISOString().replace(/[:.]/g, '-'));
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

export function futureDate(days) {
  const d = new Date();
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

export function uniqueEmail(tag) {
  return `${tag}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}@example.com`;
}

/** Sums the gzip sizes vite printed: the app's first load (entry and the chunks it imports) and all. */
export function bundleSizes(dist) {
  const manifestPath = path.join(dist, '.vite', 'manifest.json');
  if (!fs.existsSync(manifestPath)) return null;
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  const gz = (file) => zlib.gzipSync(fs.readFileSync(path.join(dist, file))).length;
  const entry = Object.entries(manifest).find(([, v]) => v.isEntry);
  const seen = new Set();
  const files = new Set();
  const walk = (key) => {
    if (seen.has(key)) return;
    seen.add(key);
    const c = manifest[key];
    files.add(c.file);
    (c.css ?? []).forEach((f) => files.add(f));
    (c.imports ?? []).forEach(walk);
  };
  walk(entry[0]);
  files.add('index.html');
  const initial = [...files].reduce((n, f) => n + gz(f), 0);
  return { initialGzip: initial, files: [...files] };
}
