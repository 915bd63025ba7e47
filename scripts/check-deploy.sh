#!/usr/bin/env bash
# Checks the deployment files (`make test` runs it; no cluster and no container engine needed):
#  - every Kubernetes manifest in docker/k8s, and the ConfigMap the kustomization generates,
#    against the API schemas of a pinned Kubernetes version (kubernetes-validate, strict: an
#    unknown field fails);
#  - the kustomization: every file it names exists, every manifest is in it, and the numbers
#    that must agree do (replicas, the shutdown timeline);
#  - the confs the image and the manifests mount pass `edge check` (cluster and compose DNS
#    names mapped to loopback: they do not resolve here);
#  - docker/compose.yaml: pinned images, health conditions, no inline secrets; .dockerignore;
#  - the systemd unit with `systemd-analyze verify`, when systemd is there.
# Usage: scripts/check-deploy.sh [EDGE_BINARY]   (default target/debug/edge)
set -euo pipefail
cd "$(dirname "$0")/.."
EDGE=$(realpath "${1:-target/debug/edge}")
K8S_VERSION=1.30.0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "check-deploy: $*" >&2; exit 1; }

# 1. the kustomization and the numbers that must agree; renders the ConfigMap for step 2
python3 - "$tmp/configmap.yaml" <<'PY' || fail "docker/k8s: see above"
import glob, os, sys, tomllib, yaml
os.chdir("docker/k8s")
k = yaml.safe_load(open("kustomization.yaml"))
problems = []
listed = set(k.get("resources", []))
for f in listed:
    if not os.path.exists(f):
        problems.append(f"kustomization.yaml: resources: {f} does not exist")
for f in sorted(glob.glob("*.yaml")):
    if f not in listed and f not in ("kustomization.yaml", "secrets.example.yaml"):
        problems.append(f"{f}: not listed in kustomization.yaml resources")
data = {}
for gen in k.get("configMapGenerator", []):
    for f in gen.get("files", []):
        if not os.path.exists(f):
            problems.append(f"kustomization.yaml: configMapGenerator {gen['name']}: {f} does not exist")
        else:
            data[os.path.basename(f)] = open(f).read()
docs = {d["kind"]: d for f in listed if os.path.exists(f) for d in yaml.safe_load_all(open(f)) if d}
limits = tomllib.load(open("conf/limits.toml", "rb"))
edge = tomllib.load(open("conf/edge.toml", "rb"))
dep = docs["Deployment"]["spec"]
replicas = limits["rate_limit"]["replicas"]
if dep["replicas"] != replicas:
    problems.append(f"deployment.yaml: spec.replicas {dep['replicas']} != conf/limits.toml rate_limit.replicas {replicas}")
if docs["HorizontalPodAutoscaler"]["spec"]["minReplicas"] != replicas:
    problems.append("hpa.yaml: spec.minReplicas must equal rate_limit.replicas")
secs = lambda s: float(s.rstrip("s"))
pod = dep["template"]["spec"]
c = pod["containers"][0]
pre = float(c["lifecycle"]["preStop"]["exec"]["command"][-1])
need = pre + secs(edge["server"]["grace_period"]) + secs(edge["server"]["graceful_shutdown_timeout"])
if pod["terminationGracePeriodSeconds"] < need:
    problems.append(f"deployment.yaml: terminationGracePeriodSeconds {pod['terminationGracePeriodSeconds']} < preStop + grace_period + graceful_shutdown_timeout = {need:.0f}")
for probe in ("readinessProbe", "livenessProbe"):
    if c[probe]["httpGet"]["path"] != "/_edge/health":
        problems.append(f"deployment.yaml: {probe} must ask /_edge/health")
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "edge-conf", "namespace": k.get("namespace", "default")}, "data": data}
yaml.safe_dump(cm, open(sys.argv[1], "w"))
PY

# 2. the API schemas
manifests=$(ls docker/k8s/*.yaml | grep -v kustomization.yaml)
# shellcheck disable=SC2086
python3 -m kubernetes_validate -k "$K8S_VERSION" --strict --quiet $manifests "$tmp/configmap.yaml" \
  || fail "a manifest does not match Kubernetes $K8S_VERSION's schema (above)"

# 3. the confs, with names that only resolve in a cluster or in compose mapped to loopback
check_conf() { # DIR SED-EXPRESSION
  rm -rf "$tmp/conf"; cp -r "$1" "$tmp/conf"; sed -i -E "$2" "$tmp/conf"/*.toml
  DATABASE_URL=postgres://edge@127.0.0.1:1/edge "$EDGE" check --conf "$tmp/conf" >/dev/null \
    || fail "$1 does not pass edge check (above; names mapped to 127.0.0.1 for the check)"
}
check_conf docker/k8s/conf 's/[a-z0-9-]+(\.[a-z0-9-]+)*\.svc\.cluster\.local/127.0.0.1/g'
check_conf docker/conf 's/"(movies|redis|postgres|jaeger):([0-9]+)"/"127.0.0.1:\2"/g'

# 4. compose and the image's build context
python3 - <<'PY' || fail "docker/compose.yaml or .dockerignore: see above"
import re, sys, yaml
c = yaml.safe_load(open("docker/compose.yaml"))
problems = []
for name, s in c["services"].items():
    image = s.get("image")
    if image and (":" not in image or image.endswith(":latest")):
        problems.append(f"docker/compose.yaml: services.{name}.image {image}: pin a version")
    for dep, cond in (s.get("depends_on") or {}).items() if isinstance(s.get("depends_on"), dict) else []:
        if "condition" not in cond:
            problems.append(f"docker/compose.yaml: services.{name}.depends_on.{dep}: no condition")
    if isinstance(s.get("depends_on"), list):
        problems.append(f"docker/compose.yaml: services.{name}.depends_on: give each a condition")
    for k, v in (s.get("environment") or {}).items():
        if (("PASSWORD" in k or "SECRET" in k) and not k.endswith("_FILE")) or re.search(r"://[^/@:]+:[^/@]+@", str(v)):
            problems.append(f"docker/compose.yaml: services.{name}.environment.{k}: a secret inline")
ignore = open(".dockerignore").read().split()
for must in ("target", ".git", ".run", "**/node_modules"):
    if must not in ignore:
        problems.append(f".dockerignore: {must} missing")
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
PY

# 5. the systemd unit (systemd-analyze prints problems and still exits 0 for many of them)
if command -v systemd-analyze >/dev/null; then
  sed "s|/usr/local/bin/edge|$EDGE|g" docker/systemd/edge.service >"$tmp/edge.service"
  out=$(systemd-analyze verify "$tmp/edge.service" 2>&1) || fail "docker/systemd/edge.service: $out"
  [ -z "$out" ] || fail "docker/systemd/edge.service: $out"
else
  echo "check-deploy: no systemd-analyze here, the unit is not verified"
fi
echo "check-deploy: docker/k8s (Kubernetes $K8S_VERSION), confs, compose and the systemd unit are consistent"
