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

# 1. the kustomizations and the numbers that must agree; renders the ConfigMap (for step 2)
#    and writes its files to $tmp/conf (for step 3): what the pods will really read
python3 - "$tmp" <<'PY' || fail "docker/k8s: see above"
import glob, os, re, sys, tomllib, yaml
out = sys.argv[1]
os.chdir("docker/k8s")
problems = []
def kustomization(d):
    k = yaml.safe_load(open(os.path.join(d, "kustomization.yaml")))
    for f in k.get("resources", []):
        if not os.path.exists(os.path.join(d, f)):
            problems.append(f"{d}/kustomization.yaml: resources: {f} does not exist")
    for f in sorted(glob.glob(os.path.join(d, "*.yaml"))):
        name = os.path.basename(f)
        if name not in k.get("resources", []) and name not in ("kustomization.yaml", "secrets.example.yaml"):
            problems.append(f"{f}: not listed in {d}/kustomization.yaml resources")
    return k
k = kustomization(".")
m = kustomization("migrate")
tags = lambda k: [(i.get("newName"), i.get("newTag")) for i in k.get("images", [])]
if tags(k) != tags(m):
    problems.append("migrate/kustomization.yaml: images must name the same image and tag as kustomization.yaml")
gens = [g for g in k.get("configMapGenerator", []) if g.get("name") == "edge-conf"]
if not gens:
    problems.append("kustomization.yaml: no configMapGenerator named edge-conf (the pods mount it)")
data = {}
for gen in gens:
    for f in gen.get("files", []):
        if not os.path.exists(f):
            problems.append(f"kustomization.yaml: configMapGenerator edge-conf: {f} does not exist")
        else:
            data[os.path.basename(f)] = open(f).read()
docs = {d["kind"]: d for f in k.get("resources", []) if os.path.exists(f) for d in yaml.safe_load_all(open(f)) if d}
limits = tomllib.loads(data.get("limits.toml", ""))
edge = tomllib.loads(data.get("edge.toml", ""))
dep = docs["Deployment"]["spec"]
replicas = limits.get("rate_limit", {}).get("replicas", 1)
if "replicas" in dep:
    problems.append("deployment.yaml: spec.replicas resets the HPA's count at every apply: leave it out")
if docs["HorizontalPodAutoscaler"]["spec"]["minReplicas"] != replicas:
    problems.append(f"hpa.yaml: spec.minReplicas must equal the ConfigMap's rate_limit.replicas ({replicas})")
def secs(text):
    n, unit = re.fullmatch(r"([0-9.]+)(ms|s|m|h)", text).groups()
    return float(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
pod = dep["template"]["spec"]
c = pod["containers"][0]
pre = float(c["lifecycle"]["preStop"]["exec"]["command"][-1])
server = edge.get("server", {})
need = pre + secs(server.get("grace_period", "1s")) + secs(server.get("graceful_shutdown_timeout", "5s"))
if pod["terminationGracePeriodSeconds"] < need:
    problems.append(f"deployment.yaml: terminationGracePeriodSeconds {pod['terminationGracePeriodSeconds']} < preStop + grace_period + graceful_shutdown_timeout = {need:.0f}")
for probe in ("readinessProbe", "livenessProbe"):
    if c[probe]["httpGet"]["path"] != "/_edge/health":
        problems.append(f"deployment.yaml: {probe} must ask /_edge/health")
# a Secret mounted 0440 is readable through the group only: the pod needs fsGroup
job = yaml.safe_load(open("migrate/job.yaml"))["spec"]["template"]["spec"]
for where, spec in (("deployment.yaml", pod), ("migrate/job.yaml", job)):
    grouped = [v["name"] for v in spec.get("volumes", []) if v.get("secret", {}).get("defaultMode") == 0o440]
    if grouped and "fsGroup" not in spec.get("securityContext", {}):
        problems.append(f"{where}: secret volumes {grouped} are 0440 but the pod sets no fsGroup: the edge cannot read them")
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "edge-conf", "namespace": k.get("namespace", "default")}, "data": data}
yaml.safe_dump(cm, open(os.path.join(out, "configmap.yaml"), "w"))
os.makedirs(os.path.join(out, "k8s-conf"))
for name, text in data.items():
    open(os.path.join(out, "k8s-conf", name), "w").write(text)
PY

# 2. the API schemas
manifests=$(ls docker/k8s/*.yaml docker/k8s/migrate/*.yaml | grep -v kustomization.yaml)
# shellcheck disable=SC2086
python3 -m kubernetes_validate -k "$K8S_VERSION" --strict --quiet $manifests "$tmp/configmap.yaml" \
  || fail "a manifest does not match Kubernetes $K8S_VERSION's schema (above)"

# 3. the confs, with names that only resolve in a cluster or in compose mapped to loopback and
#    the mounted TLS files replaced by a throwaway certificate
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=edge.test -days 1 \
  -keyout "$tmp/tls.key" -out "$tmp/tls.crt" 2>/dev/null || fail "openssl could not make a test certificate"
check_conf() { # DIR SED-EXPRESSION
  rm -rf "$tmp/conf"; cp -r "$1" "$tmp/conf"
  sed -i -E -e "$2" -e "s|/etc/edge/tls/|$tmp/|g" "$tmp/conf"/*.toml
  DATABASE_URL=postgres://edge@127.0.0.1:1/edge "$EDGE" check --conf "$tmp/conf" >/dev/null \
    || fail "$1 does not pass edge check (above; names mapped to 127.0.0.1 for the check)"
}
check_conf "$tmp/k8s-conf" 's/[a-z0-9-]+(\.[a-z0-9-]+)*\.svc\.cluster\.local/127.0.0.1/g'
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
    env = s.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    for k, v in env.items():
        if (("PASSWORD" in k or "SECRET" in k) and not k.endswith("_FILE")) or re.search(r"://[^/@:]+:[^/@]+@", str(v)):
            problems.append(f"docker/compose.yaml: services.{name}.environment.{k}: a secret inline")
ignore = open(".dockerignore").read().split()
for must in ("target", ".git", ".run", "**/node_modules", "docker/secrets"):
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
