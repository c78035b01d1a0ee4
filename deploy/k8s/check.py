#!/usr/bin/env python3
"""Checks the Kubernetes manifests under deploy/k8s. Run through check.sh, which installs the
pinned kubernetes-validate (and PyYAML with it) into a cached virtualenv first.

1. Renders every overlay with `kubectl kustomize --load-restrictor LoadRestrictionsNone` (the
   router's ConfigMap is generated from router/router.yaml and schema/supergraph.graphql) and
   checks that the ConfigMap holds exactly those files.
2. Validates the rendered output and every testdata file against the Kubernetes schemas with
   kubernetes-validate in strict mode (unknown fields fail; so does a kind it has no schema for).
3. Applies the policy rules (RULES below) to every overlay; any violation fails.
4. Tests the rules themselves: each testdata/*.yaml names, in an `# expect:` line, the rules
   that must reject it (`none` for the one that must pass), and must be rejected by exactly those.
5. `docker-compose config -q` on docker-compose.yml.
Also: secret.example.yaml is in no kustomization, holds placeholders only (REPLACE_ME) and names
every Secret and key the overlays refer to (so the documented Secrets cannot drift from them).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter

import yaml

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
OVERLAYS = ["dev", "prod"]
# The Kubernetes version the schemas are checked against: the installed kubectl's minor version
# (kubernetes-validate 1.37.0 ships schemas for 1.25 to 1.37).
KUBERNETES_VERSION = "1.32.0"

RULES = {
    "probes": "a Deployment/StatefulSet/DaemonSet container without a readiness and a liveness probe",
    "limits": "a container (init containers and Jobs included) without CPU and memory limits",
    "secret-literal": "a Secret with a value in the manifests, or a secret-looking variable or "
    "ConfigMap key given as a literal instead of a secretKeyRef",
    "root": "a container that may run as root (runAsNonRoot not true, or runAsUser 0)",
    "hardening": "a container without allowPrivilegeEscalation: false, readOnlyRootFilesystem: "
    "true, capabilities drop ALL (and none added), RuntimeDefault seccomp; or privileged",
    "image-tag": "an image without a tag or digest, or tagged latest",
    "netpol-coverage": "a Service whose pods no NetworkPolicy of their own (non-empty "
    "podSelector, Ingress) selects, or a Service that selects no pods",
    "default-deny": "a namespace with workloads but no default-deny NetworkPolicy "
    "(podSelector {}, Ingress and Egress, no rules)",
    "hpa-pdb": "a Deployment without an autoscaling/v2 HPA on CPU and a PodDisruptionBudget",
    "replicas": "a Deployment that may run fewer replicas than the overlay's minimum",
    "process-local": "a payments Deployment on the simulated provider (its payments live in "
    "one process's memory) that may run more than one replica",
}

# Containers allowed to relax the hardening rules, by overlay: (kind, workload, container) ->
# the checks it is exempt from. Only the dev overlay's own database containers, nothing in prod.
ALLOWLISTS = {
    "dev": {
        ("StatefulSet", "postgres", "postgres"): {"root", "read-only-root"},
        ("StatefulSet", "redis", "redis"): {"root", "read-only-root"},
    },
}
# The minimum replica count each overlay must guarantee for every Deployment.
MIN_REPLICAS = {"prod": 2}

POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
LONG_RUNNING_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod"}
SECRETISH = re.compile(
    r"(password|passwd|secret|secret[-_]key|token|[-_]pem|private[-_]key|api[-_]key"
    r"|database[-_]+url|redis[-_]+url|smtp[-_]+url)$",
    re.IGNORECASE,
)


@dataclasses.dataclass(frozen=True)
class Violation:
    rule: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.where}: {self.message}"


def ref(doc: dict) -> str:
    meta = doc.get("metadata") or {}
    return f"{doc.get('kind')}/{meta.get('name')}"


def namespace(doc: dict) -> str:
    return (doc.get("metadata") or {}).get("namespace") or "default"


def pod_template(doc: dict) -> tuple[dict, dict] | None:
    """(pod metadata, pod spec) of a workload, or None for other kinds."""
    kind = doc.get("kind")
    spec = doc.get("spec") or {}
    if kind in POD_TEMPLATE_KINDS:
        template = spec.get("template") or {}
    elif kind == "CronJob":
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
    elif kind == "Pod":
        template = doc
    else:
        return None
    return template.get("metadata") or {}, template.get("spec") or {}


def containers(pod_spec: dict, init: bool = True) -> list[dict]:
    found = list(pod_spec.get("containers") or [])
    if init:
        found += pod_spec.get("initContainers") or []
    return found


def selects(selector: dict | None, labels: dict) -> bool:
    """Whether a label selector (matchLabels and matchExpressions) selects these labels. An empty
    selector selects everything, as in a NetworkPolicy's podSelector."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def is_empty_selector(selector: dict | None) -> bool:
    selector = selector or {}
    return not selector.get("matchLabels") and not selector.get("matchExpressions")


def policy_types(policy: dict) -> set[str]:
    spec = policy.get("spec") or {}
    if spec.get("policyTypes"):
        return set(spec["policyTypes"])
    return {"Ingress"} | ({"Egress"} if spec.get("egress") else set())


def check(docs: list[dict], allow: dict | None = None, min_replicas: int | None = None) -> list[Violation]:
    """Every violation of RULES in one set of manifests."""
    allow = allow or {}
    out: list[Violation] = []
    workloads = [d for d in docs if pod_template(d) is not None]
    policies = [d for d in docs if d.get("kind") == "NetworkPolicy"]

    for doc in workloads:
        kind, name = doc["kind"], (doc.get("metadata") or {}).get("name")
        _, spec = pod_template(doc)
        pod_sc = spec.get("securityContext") or {}
        for c in containers(spec):
            where = f"{ref(doc)} container {c.get('name')}"
            exempt = allow.get((kind, name, c.get("name")), set())
            sc = c.get("securityContext") or {}
            resources = c.get("resources") or {}
            limits = resources.get("limits") or {}
            missing = [r for r in ("cpu", "memory") if r not in limits]
            if missing:
                out.append(Violation("limits", where, f"no {' or '.join(missing)} limit"))
            if "root" not in exempt:
                non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
                user = sc.get("runAsUser", pod_sc.get("runAsUser"))
                if non_root is not True:
                    out.append(Violation("root", where, "runAsNonRoot is not true"))
                if user == 0:
                    out.append(Violation("root", where, "runAsUser is 0"))
            problems = []
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append("allowPrivilegeEscalation is not false")
            if sc.get("privileged") is True:
                problems.append("privileged")
            if "read-only-root" not in exempt and sc.get("readOnlyRootFilesystem") is not True:
                problems.append("readOnlyRootFilesystem is not true")
            caps = sc.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []):
                problems.append("capabilities do not drop ALL")
            if caps.get("add"):
                problems.append(f"capabilities add {caps['add']}")
            seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
            if seccomp not in ("RuntimeDefault", "Localhost"):
                problems.append("no RuntimeDefault seccomp profile")
            if problems:
                out.append(Violation("hardening", where, "; ".join(problems)))
            image = c.get("image") or ""
            last = image.rsplit("/", 1)[-1]
            if "@sha256:" not in image and (":" not in last or last.endswith(":latest")):
                out.append(Violation("image-tag", where, f"image {image!r} has no fixed tag"))
            for env in c.get("env") or []:
                if SECRETISH.search(env.get("name", "")) and env.get("value"):
                    out.append(
                        Violation("secret-literal", where, f"{env['name']} is a literal, not a secretKeyRef")
                    )
        if kind in LONG_RUNNING_KINDS:
            for c in containers(spec, init=False):
                for probe in ("readinessProbe", "livenessProbe"):
                    if not c.get(probe):
                        out.append(Violation("probes", f"{ref(doc)} container {c.get('name')}", f"no {probe}"))

    for doc in docs:
        if doc.get("kind") == "Secret":
            keys = sorted(set(doc.get("data") or {}) | set(doc.get("stringData") or {}))
            if keys:
                out.append(Violation("secret-literal", ref(doc), f"holds values for {', '.join(keys)}"))
        if doc.get("kind") == "ConfigMap":
            for key in doc.get("data") or {}:
                if SECRETISH.search(key):
                    out.append(Violation("secret-literal", ref(doc), f"key {key} looks like a secret"))

    # NetworkPolicies: every Service's pods have a policy of their own; a default deny exists.
    for svc in (d for d in docs if d.get("kind") == "Service"):
        selector = (svc.get("spec") or {}).get("selector") or {}
        ns = namespace(svc)
        backing = [
            w for w in workloads
            if namespace(w) == ns and selector and selects({"matchLabels": selector}, pod_template(w)[0].get("labels") or {})
        ]
        if not backing:
            out.append(Violation("netpol-coverage", ref(svc), "selects no pods in these manifests"))
        for w in backing:
            labels = pod_template(w)[0].get("labels") or {}
            if not any(
                namespace(p) == ns
                and not is_empty_selector((p.get("spec") or {}).get("podSelector"))
                and selects((p.get("spec") or {}).get("podSelector"), labels)
                and "Ingress" in policy_types(p)
                for p in policies
            ):
                out.append(
                    Violation("netpol-coverage", ref(svc), f"no NetworkPolicy of their own selects the pods of {ref(w)}")
                )
    for ns in sorted({namespace(w) for w in workloads}):
        if not any(
            namespace(p) == ns
            and is_empty_selector((p.get("spec") or {}).get("podSelector"))
            and {"Ingress", "Egress"} <= policy_types(p)
            and not (p.get("spec") or {}).get("ingress")
            and not (p.get("spec") or {}).get("egress")
            for p in policies
        ):
            out.append(Violation("default-deny", f"namespace {ns}", "no default-deny NetworkPolicy"))

    # Every Deployment: an HPA on CPU and a PDB; at least the overlay's minimum of replicas.
    hpas = [d for d in docs if d.get("kind") == "HorizontalPodAutoscaler"]
    pdbs = [d for d in docs if d.get("kind") == "PodDisruptionBudget"]
    for dep in (d for d in docs if d.get("kind") == "Deployment"):
        ns, name = namespace(dep), dep["metadata"]["name"]
        labels = pod_template(dep)[0].get("labels") or {}
        mine = [
            h for h in hpas
            if namespace(h) == ns
            and ((h.get("spec") or {}).get("scaleTargetRef") or {}).get("kind") == "Deployment"
            and ((h.get("spec") or {}).get("scaleTargetRef") or {}).get("name") == name
        ]
        on_cpu = [
            h for h in mine
            if h.get("apiVersion") == "autoscaling/v2"
            and any(
                m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu"
                for m in (h.get("spec") or {}).get("metrics") or []
            )
        ]
        if not on_cpu:
            out.append(Violation("hpa-pdb", ref(dep), "no autoscaling/v2 HorizontalPodAutoscaler on CPU"))
        if not any(
            namespace(p) == ns
            and not is_empty_selector((p.get("spec") or {}).get("selector"))
            and selects((p.get("spec") or {}).get("selector"), labels)
            for p in pdbs
        ):
            out.append(Violation("hpa-pdb", ref(dep), "no PodDisruptionBudget selects its pods"))
        if min_replicas:
            replicas = (dep.get("spec") or {}).get("replicas")
            if replicas is not None and replicas < min_replicas:
                out.append(Violation("replicas", ref(dep), f"replicas {replicas} < {min_replicas}"))
            for h in mine:
                low = (h.get("spec") or {}).get("minReplicas", 1)
                if low < min_replicas:
                    out.append(Violation("replicas", ref(h), f"minReplicas {low} < {min_replicas}"))
            if replicas is None and not mine:
                out.append(Violation("replicas", ref(dep), f"runs 1 replica (no replicas, no HPA) < {min_replicas}"))
        # The simulated provider keeps its PaymentIntents in the memory of the replica that made
        # them: a capture or refund reaching another replica finds nothing, and ids repeat across
        # replicas. It is correct with exactly one payments process, as in `draftr run`.
        provider = env_value(dep, docs, "DRAFTR_PAYMENTS__PROVIDER__KIND")
        if is_payments(dep) and (provider or "simulated") == "simulated":
            most = max(
                [(dep.get("spec") or {}).get("replicas") or 1]
                + [(h.get("spec") or {}).get("maxReplicas", 1) for h in mine]
            )
            if most > 1:
                out.append(
                    Violation("process-local", ref(dep), f"simulated payment provider with up to {most} replicas")
                )
    return out


def is_payments(dep: dict) -> bool:
    _, spec = pod_template(dep)
    return any(
        "payments" in (c.get("args") or []) or "payments" in (c.get("command") or [])
        for c in containers(spec, init=False)
    )


def env_value(dep: dict, docs: list[dict], name: str) -> str | None:
    """What `name` is in the Deployment's containers: `env` wins over `envFrom` ConfigMaps."""
    _, spec = pod_template(dep)
    ns = namespace(dep)
    config_maps = {
        (namespace(d), (d.get("metadata") or {}).get("name")): d.get("data") or {}
        for d in docs
        if d.get("kind") == "ConfigMap"
    }
    for c in containers(spec, init=False):
        for e in c.get("env") or []:
            if e.get("name") == name and "value" in e:
                return e["value"]
        found = None
        # Of several envFrom sources, the last one that sets the name wins.
        for source in c.get("envFrom") or []:
            ref_ = (source.get("configMapRef") or {}).get("name")
            data = config_maps.get((ns, ref_), {})
            if name in data:
                found = data[name]
        if found is not None:
            return found
    return None


def load(path: pathlib.Path) -> list[dict]:
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.monotonic()


def done(started: float) -> None:
    print(f"   ({time.monotonic() - started:.1f} s)", flush=True)


def render(out_dir: pathlib.Path) -> dict[str, pathlib.Path]:
    rendered = {}
    for overlay in OVERLAYS:
        target = out_dir / f"{overlay}.yaml"
        result = subprocess.run(
            ["kubectl", "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(HERE / "overlays" / overlay)],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            sys.exit(f"FAIL kubectl kustomize overlays/{overlay}:\n{result.stderr}")
        target.write_text(result.stdout)
        docs = load(target)
        kinds = Counter(d["kind"] for d in docs)
        summary = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        print(f"   overlays/{overlay}: {len(docs)} objects, {len(result.stdout)} bytes ({summary})")
        rendered[overlay] = target
    return rendered


def check_router_config(rendered: dict[str, pathlib.Path]) -> list[str]:
    """The router's ConfigMap in every overlay holds the repository's files, byte for byte."""
    failures = []
    files = {"router.yaml": REPO / "router/router.yaml", "supergraph.graphql": REPO / "schema/supergraph.graphql"}
    for overlay, path in rendered.items():
        maps = [
            d for d in load(path)
            if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("draftr-router-config")
        ]
        if len(maps) != 1:
            failures.append(f"overlays/{overlay}: {len(maps)} draftr-router-config ConfigMaps, expected 1")
            continue
        data = maps[0].get("data") or {}
        for key, source in files.items():
            if data.get(key) != source.read_text():
                failures.append(f"overlays/{overlay}: ConfigMap key {key} differs from {source.relative_to(REPO)}")
    return failures


def secret_refs(docs: list[dict]) -> set[tuple[str, str]]:
    """(Secret, key) pairs that workloads read: secretKeyRef in env, secretRef in envFrom."""
    refs = set()
    for doc in docs:
        template = pod_template(doc)
        if template is None:
            continue
        for c in containers(template[1]):
            for env in c.get("env") or []:
                key_ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if key_ref:
                    refs.add((key_ref["name"], key_ref["key"]))
            for source in c.get("envFrom") or []:
                if source.get("secretRef"):
                    refs.add((source["secretRef"]["name"], "*"))
    return refs


def check_secret_example(rendered: dict[str, pathlib.Path]) -> list[str]:
    """secret.example.yaml: only placeholders, in no kustomization, and every Secret and key the
    overlays read is in it."""
    failures = []
    example = HERE / "secret.example.yaml"
    secrets = load(example)
    have = set()
    for s in secrets:
        if s.get("kind") != "Secret":
            failures.append(f"secret.example.yaml: {ref(s)} is not a Secret")
            continue
        values = {**(s.get("data") or {}), **(s.get("stringData") or {})}
        for key, value in values.items():
            have.add((s["metadata"]["name"], key))
            if "REPLACE_ME" not in str(value):
                failures.append(f"secret.example.yaml: {s['metadata']['name']}/{key} is not a REPLACE_ME placeholder")
    for kustomization in HERE.rglob("kustomization.yaml"):
        if "secret.example" in str(yaml.safe_load(kustomization.read_text())):
            failures.append(f"{kustomization.relative_to(HERE)} refers to secret.example.yaml")
    for overlay, path in rendered.items():
        for name, key in sorted(secret_refs(load(path))):
            if (name, key) not in have and not (key == "*" and any(n == name for n, _ in have)):
                failures.append(f"overlays/{overlay} reads Secret {name} key {key}, missing from secret.example.yaml")
    return failures


def validate(paths: list[pathlib.Path]) -> list[str]:
    tool = shutil.which("kubernetes-validate") or str(pathlib.Path(sys.executable).parent / "kubernetes-validate")
    result = subprocess.run(
        [tool, "--strict", "--quiet", "--kubernetes-version", KUBERNETES_VERSION, *map(str, paths)],
        capture_output=True, text=True,
    )
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    problems = [line for line in lines if re.match(r"(ERROR|WARN|FATAL)", line)]
    if result.returncode != 0 and not problems:
        problems = [f"kubernetes-validate exited {result.returncode}: {result.stderr.strip()}"]
    return problems


def header(path: pathlib.Path, key: str) -> str | None:
    for line in path.read_text().splitlines():
        match = re.match(rf"#\s*{key}:\s*(.*)$", line)
        if match:
            return match.group(1).strip()
    return None


def self_test() -> tuple[int, int]:
    """Each testdata file is rejected by exactly the rules its `# expect:` line names."""
    passed = failed = 0
    tested = set()
    for path in sorted((HERE / "testdata").glob("*.yaml")):
        expect_text = header(path, "expect")
        if expect_text is None:
            print(f"   FAIL {path.name}: no '# expect:' line")
            failed += 1
            continue
        expected = set() if expect_text == "none" else {r.strip() for r in expect_text.split(",")}
        unknown = expected - set(RULES)
        if unknown:
            print(f"   FAIL {path.name}: unknown rules {sorted(unknown)}")
            failed += 1
            continue
        allow = ALLOWLISTS.get(header(path, "allowlist") or "", {})
        minimum = header(path, "min-replicas")
        violations = check(load(path), allow, int(minimum) if minimum else None)
        fired = {v.rule for v in violations}
        tested |= expected
        if fired == expected:
            passed += 1
            if violations:
                print(f"   ok   {path.name}: rejected by {', '.join(sorted(expected))} — {violations[0]}")
            else:
                print(f"   ok   {path.name}: accepted, as it should be")
        else:
            failed += 1
            print(f"   FAIL {path.name}: expected {sorted(expected) or 'no violation'}, got {sorted(fired)}")
            for v in violations:
                print(f"        {v}")
    for rule in sorted(set(RULES) - tested):
        failed += 1
        print(f"   FAIL no testdata file is rejected by the rule {rule}")
    return passed, failed


def compose_config() -> list[str]:
    tool = shutil.which("docker-compose")
    if not tool:
        return ["docker-compose is not installed (check.sh installs Debian's docker-compose)"]
    compose = REPO / "docker-compose.yml"
    env = dict(os.environ)
    # Variables the file requires (${NAME:?…}) get a placeholder: this checks the file, not secrets.
    for name in sorted(set(re.findall(r"\$\{(\w+):?\?", compose.read_text()))):
        env.setdefault(name, "placeholder-for-config-check")
    result = subprocess.run(
        [tool, "--project-directory", str(REPO), "-f", str(compose), "config", "-q"],
        capture_output=True, text=True, env=env,
    )
    if result.returncode != 0:
        return [f"docker-compose config -q failed:\n{result.stderr.strip()}"]
    return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", metavar="DIR", help="write the rendered overlays to DIR (kept)")
    parser.add_argument("--list-rules", action="store_true", help="print the policy rules and exit")
    args = parser.parse_args()
    if args.list_rules:
        for rule, text in RULES.items():
            print(f"{rule:16} {text}")
        return 0

    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="draftr-k8s-") as tmp:
        out_dir = pathlib.Path(args.keep) if args.keep else pathlib.Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)

        started = step("render the overlays (kubectl kustomize)")
        rendered = render(out_dir)
        router_config = check_router_config(rendered)
        failures += router_config
        for f in router_config:
            print(f"   FAIL {f}")
        if not router_config:
            print("   the router's ConfigMap holds router/router.yaml and schema/supergraph.graphql as committed")
        example = check_secret_example(rendered)
        failures += example
        for f in example:
            print(f"   FAIL {f}")
        if not example:
            print("   secret.example.yaml: placeholders only, and every Secret key the overlays read")
        done(started)

        started = step(f"validate against the Kubernetes {KUBERNETES_VERSION} schemas (kubernetes-validate --strict)")
        testdata = sorted((HERE / "testdata").glob("*.yaml"))
        problems = validate([*rendered.values(), HERE / "secret.example.yaml", *testdata])
        for p in problems:
            print(f"   FAIL {p}")
        failures += problems
        if not problems:
            print(f"   {len(rendered)} overlays, secret.example.yaml and {len(testdata)} testdata files are valid")
        done(started)

        started = step("policy checks on every overlay")
        for overlay, path in rendered.items():
            violations = check(load(path), ALLOWLISTS.get(overlay), MIN_REPLICAS.get(overlay))
            for v in violations:
                print(f"   FAIL overlays/{overlay}: {v}")
            failures += [f"overlays/{overlay}: {v}" for v in violations]
            if not violations:
                print(f"   overlays/{overlay}: {len(RULES)} rules, no violation")
        done(started)

    started = step("the policy checks' own tests (testdata/)")
    passed, failed = self_test()
    if failed:
        failures.append(f"{failed} policy self-tests failed")
    print(f"   policy self-tests: {passed} passed, {failed} failed")
    done(started)

    started = step("docker-compose config -q (docker-compose.yml)")
    compose = compose_config()
    for c in compose:
        print(f"   FAIL {c}")
    failures += compose
    if not compose:
        print("   docker-compose.yml is valid")
    done(started)

    if failures:
        print(f"\nKubernetes checks FAILED ({len(failures)} problems)")
        return 1
    print("\nKubernetes checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
