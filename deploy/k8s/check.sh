#!/usr/bin/env bash
# Checks the Kubernetes manifests (deploy/k8s) and docker-compose.yml: renders every overlay with
# kubectl kustomize, validates it against the Kubernetes schemas (kubernetes-validate, strict),
# applies the policy rules, tests those rules on testdata/, and runs `docker-compose config -q`.
# The work is in check.py; this installs what it needs, once per machine:
# - kubernetes-validate from PyPI, pinned with hashes in requirements.txt, into a virtualenv
#   outside the clone named after that file's hash ($HOME/.cache/draftr/k8s-venv-<hash>), so it
#   is installed again only when the pins change;
# - Debian's docker-compose, when missing.
# kubectl must be installed (it renders offline). Run by scripts/test; alone: deploy/k8s/check.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

command -v kubectl >/dev/null 2>&1 || {
  echo "kubectl is missing: install it (it ships kustomize) and run again" >&2
  exit 1
}

apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $* for the Kubernetes checks" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@") >/dev/null
  fi
}

if ! command -v docker-compose >/dev/null 2>&1; then
  apt_install docker-compose
  command -v docker-compose >/dev/null 2>&1 || {
    echo "docker-compose is missing: install it (Debian: sudo apt-get install -y docker-compose) and run again" >&2
    exit 1
  }
fi

key="$(sha256sum "$here/requirements.txt" | cut -c1-16)"
venv="${DRAFTR_K8S_VENV_BASE:-$HOME/.cache/draftr/k8s-venv}-$key"
if [ ! -f "$venv/.installed" ]; then
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_install python3 python3-venv
    python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || {
      echo "python3 with venv is missing: install it (Debian: sudo apt-get install -y python3-venv) and run again" >&2
      exit 1
    }
  fi
  echo "installing kubernetes-validate for the Kubernetes checks into $venv" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --require-hashes --no-deps -r "$here/requirements.txt" >&2
  touch "$venv/.installed"
fi

PATH="$venv/bin:$PATH" exec "$venv/bin/python" "$here/check.py" "$@"
