# Shared by scripts/run and scripts/test: what a fresh machine needs before cargo can build.

# One target directory outside the clone, reused by every clone and CI run on this machine:
# apollo-router is a big build, and a warm target directory turns minutes into seconds.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/draftr/target}"
mkdir -p "$CARGO_TARGET_DIR"

# apollo-router's build compiles protobuf definitions and needs protoc.
ensure_protoc() {
  command -v protoc >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing protoc (protobuf-compiler), needed to build apollo-router" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler) >/dev/null
    command -v protoc >/dev/null 2>&1 && return 0
  fi
  echo "protoc is missing: install it (Debian/Ubuntu: sudo apt-get install -y protobuf-compiler) and run again" >&2
  exit 1
}

# The tests use the machine's PostgreSQL (127.0.0.1:5432, user postgres, trust auth) and Redis
# (127.0.0.1:6379). Start them if they are installed but stopped.
ensure_services() {
  if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
      echo "starting PostgreSQL" >&2
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    fi
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && break; sleep 1; done
    pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null || { echo "PostgreSQL is not reachable at 127.0.0.1:5432; start it and run again" >&2; exit 1; }
  fi
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    if command -v redis-server >/dev/null 2>&1; then
      echo "starting Redis" >&2
      redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
    fi
    for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { echo "Redis is not reachable at 127.0.0.1:6379; start it and run again" >&2; exit 1; }
  fi
}

# The federated-subscription test runs Hive Gateway (MIT, npm), pinned in tests/hive-gateway.
# Installed once per machine outside the clone, and again only when the pinned lock changes.
ensure_hive_gateway() {
  local dir="${DRAFTR_HIVE_GATEWAY_DIR:-$HOME/.cache/draftr/hive}"
  if [ -x "$dir/node_modules/.bin/hive-gateway" ] && cmp -s tests/hive-gateway/package-lock.json "$dir/package-lock.json"; then
    return 0
  fi
  command -v npm >/dev/null 2>&1 || { echo "npm is missing: install Node.js 20 with npm (Debian: apt-get install -y nodejs npm) and run again" >&2; exit 1; }
  echo "installing Hive Gateway for the federated-subscription test into $dir" >&2
  mkdir -p "$dir"
  cp tests/hive-gateway/package.json tests/hive-gateway/package-lock.json "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >&2
}

# The schema checks (operation validation, breaking changes) use @graphql-inspector/core and
# graphql from npm, pinned in tests/schema-tools. Installed once per machine outside the clone.
ensure_schema_tools() {
  local dir="${DRAFTR_SCHEMA_TOOLS_DIR:-$HOME/.cache/draftr/schema-tools}"
  if [ -f "$dir/node_modules/@graphql-inspector/core/package.json" ] && cmp -s tests/schema-tools/package-lock.json "$dir/package-lock.json"; then
    return 0
  fi
  command -v npm >/dev/null 2>&1 || { echo "npm is missing: install Node.js 20 with npm (Debian: apt-get install -y nodejs npm) and run again" >&2; exit 1; }
  echo "installing the schema checks' npm packages into $dir" >&2
  mkdir -p "$dir"
  cp tests/schema-tools/package.json tests/schema-tools/package-lock.json "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >&2
}

# Runs the schema checks against the committed schema/api.graphql: every operation in the
# repository validates, and no breaking change since the previous commit is undeclared.
schema_checks() {
  local modules="${DRAFTR_SCHEMA_TOOLS_DIR:-$HOME/.cache/draftr/schema-tools}/node_modules"
  NODE_PATH="$modules" node --test tests/schema-tools/test/
  NODE_PATH="$modules" node tests/schema-tools/check-operations.mjs
  if git rev-parse --verify -q HEAD~1 >/dev/null; then
    NODE_PATH="$modules" node tests/schema-tools/check-breaking.mjs
  else
    echo "schema breaking-change check skipped: no previous commit in this clone" >&2
  fi
}

# The browser tests drive Debian's Chromium (playwright-core cannot download a browser here).
ensure_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium for the web app's browser tests" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
    [ -x /usr/bin/chromium ] && return 0
  fi
  echo "chromium is missing: install it (Debian: sudo apt-get install -y chromium) and run again" >&2
  exit 1
}

# The edge proxy tests (tests/api/edge.rs) run a real nginx: Debian's nginx-light. Each test
# starts its own (its own port, prefix, pid, logs and temp paths, run as the current user), so
# the service the package sets up on port 80 plays no part; it is stopped and disabled where it
# could run. Exports DRAFTR_NGINX, its path (Debian puts it in /usr/sbin, outside a user's PATH).
ensure_nginx() {
  local nginx
  nginx="$(PATH="$PATH:/usr/sbin:/usr/local/sbin" command -v nginx 2>/dev/null || true)"
  if [ -z "$nginx" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing nginx (nginx-light) for the edge proxy tests" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light \
      || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx) >/dev/null
    # Only the nginx installed just now: a machine's own nginx is left alone.
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
      systemctl disable --now nginx >/dev/null 2>&1 || true
    elif command -v service >/dev/null 2>&1; then
      service nginx stop >/dev/null 2>&1 || true
    fi
    nginx="$(PATH="$PATH:/usr/sbin:/usr/local/sbin" command -v nginx 2>/dev/null || true)"
  fi
  if [ -z "$nginx" ]; then
    echo "nginx is missing: install it (Debian: sudo apt-get install -y nginx-light) and run again" >&2
    exit 1
  fi
  export DRAFTR_NGINX="$nginx"
}

# The web app's npm packages (frontend-examples/web, pinned by its lock file), installed once per
# machine outside the clone and linked in as its node_modules.
ensure_web() {
  local dir="${DRAFTR_WEB_DEPS_DIR:-$HOME/.cache/draftr/web}"
  local app=frontend-examples/web
  if ! { [ -d "$dir/node_modules/vite" ] && cmp -s "$app/package-lock.json" "$dir/package-lock.json"; }; then
    command -v npm >/dev/null 2>&1 || { echo "npm is missing: install Node.js 20 with npm (Debian: apt-get install -y nodejs npm) and run again" >&2; exit 1; }
    echo "installing the web app's npm packages into $dir" >&2
    mkdir -p "$dir"
    cp "$app/package.json" "$app/package-lock.json" "$dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >&2
  fi
  if [ ! -e "$app/node_modules" ]; then
    ln -s "$dir/node_modules" "$app/node_modules"
  fi
}

# The web app: generated types up to date, type check, unit tests, then the browser tests in
# Chromium against `draftr run` (the binary the Rust tests just built).
web_checks() {
  (
    cd frontend-examples/web
    npm run --silent codegen:check
    npm run --silent typecheck
    npm test --silent
    DRAFTR_BIN="$CARGO_TARGET_DIR/debug/draftr" npm run --silent e2e
  )
}

# A virtualenv outside the clone with the PyPI packages pinned with hashes in requirements file
# $1, named after that file's hash under base directory $2: installed once per machine, and again
# only when the pins change. Prints the virtualenv's path.
ensure_pinned_venv() {
  local requirements="$1" base="$2" what="$3"
  local key venv
  key="$(sha256sum "$requirements" | cut -c1-16)"
  venv="$base/$key"
  if [ ! -f "$venv/.installed" ]; then
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing python3-venv for $what" >&2
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv) >/dev/null
      fi
      python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || { echo "python3 with venv is missing: install it (Debian: sudo apt-get install -y python3-venv) and run again" >&2; exit 1; }
    fi
    echo "installing $requirements for $what into $venv" >&2
    rm -rf "$venv"
    mkdir -p "$base"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
      --require-hashes --no-deps -r "$requirements" >&2
    touch "$venv/.installed"
  fi
  echo "$venv"
}

# The API fuzzing (tests/fuzz) runs schemathesis from PyPI, pinned with hashes in
# tests/fuzz/requirements.txt, in a virtualenv outside the clone named after that file's hash:
# installed once per machine, and again only when the pins change. Sets FUZZ_VENV.
ensure_fuzz_tools() {
  FUZZ_VENV="$(ensure_pinned_venv tests/fuzz/requirements.txt \
    "${DRAFTR_FUZZ_VENV_DIR:-$HOME/.cache/draftr/fuzz-venv}" "the API fuzzing")"
  export FUZZ_VENV
}

# The end-to-end iCal tests (tests/api/ical.rs) parse the export feed with Python's icalendar,
# pinned with hashes in tests/ical/requirements.txt, in a virtualenv made the same way. Sets
# DRAFTR_ICAL_PYTHON, which the tests read (they fail, never skip, without it).
ensure_ical_tools() {
  local venv
  venv="$(ensure_pinned_venv tests/ical/requirements.txt \
    "${DRAFTR_ICAL_VENV_DIR:-$HOME/.cache/draftr/ical-venv}" "the iCal tests")"
  export DRAFTR_ICAL_PYTHON="$venv/bin/python"
}
