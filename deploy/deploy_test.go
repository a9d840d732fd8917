// Package deploy holds example deployments of photosync; its tests check
// them. The nginx example is run with a real nginx in cmd/photosync's tests.
// The Dockerfile is not built here: these machines have no container engine.
package deploy

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8syaml "sigs.k8s.io/yaml"

	"photosync/configs"
)

// TestSystemdUnit checks the unit with systemd-analyze verify when it is
// available (any warning fails), and always checks that it parses and keeps
// its hardening.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("systemd", "photosync.service"))
	if err != nil {
		t.Fatal(err)
	}
	sections := parseUnit(t, string(b))
	svc := sections["Service"]
	want := map[string]string{
		"DynamicUser":             "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"NoNewPrivileges":         "yes",
		"StateDirectory":          "photosync",
		"CapabilityBoundingSet":   "",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"MemoryDenyWriteExecute":  "yes",
	}
	for k, v := range want {
		if got, ok := svc[k]; !ok || got[0] != v {
			t.Errorf("[Service] %s = %q, want %q", k, got, v)
		}
	}
	if got := svc["ExecReload"]; len(got) != 1 || got[0] != "/bin/kill -HUP $MAINPID" {
		t.Errorf("ExecReload = %q, want the SIGHUP that reloads the config", got)
	}
	if !strings.HasPrefix(svc["ExecStart"][0], "/usr/local/bin/photosync serve --config ") {
		t.Errorf("ExecStart = %q", svc["ExecStart"])
	}
	if len(sections["Unit"]) == 0 || sections["Install"]["WantedBy"][0] != "multi-user.target" {
		t.Errorf("[Unit] or [Install] missing: %v", sections)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: unit parse-checked only")
		return
	}
	// verify wants the executables to exist: point them at this test binary.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "photosync.service")
	if err := os.WriteFile(unit, bytes.ReplaceAll(b, []byte("/usr/local/bin/photosync"), []byte(self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// parseUnit reads a systemd unit file: sections of Key=Value lines, with
// comments and blank lines; a key may repeat.
func parseUnit(t *testing.T, s string) map[string]map[string][]string {
	t.Helper()
	sections := map[string]map[string][]string{}
	var cur map[string][]string
	sc := bufio.NewScanner(strings.NewReader(s))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			cur = map[string][]string{}
			sections[line[1:len(line)-1]] = cur
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || cur == nil || k == "" || strings.ContainsAny(k, " \t") {
				t.Fatalf("line %d: not Key=Value inside a section: %q", n, line)
			}
			cur[k] = append(cur[k], v)
		}
	}
	return sections
}

// TestKubernetesDeployment decodes every document of the Kubernetes
// example strictly into the Kubernetes API types (an unknown or misspelt
// field is an error, as the API server's strict field validation makes
// it), then checks what photosync needs: its config is valid and points at
// the application's port, the key is readable by its user (fsGroup), it
// runs unprivileged, the admin listener is on the pod IP with the token
// from a Secret, the probes ask /healthz, and a PodDisruptionBudget selects
// the pods.
func TestKubernetesDeployment(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("kubernetes", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		cm    corev1.ConfigMap
		dep   appsv1.Deployment
		svc   corev1.Service
		pdb   policyv1.PodDisruptionBudget
		kinds []string
	)
	for i, doc := range strings.Split(string(b), "\n---\n") {
		var meta metav1.TypeMeta
		if err := k8syaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var into any
		switch meta.APIVersion + " " + meta.Kind {
		case "v1 ConfigMap":
			into = &cm
		case "apps/v1 Deployment":
			into = &dep
		case "v1 Service":
			into = &svc
		case "policy/v1 PodDisruptionBudget":
			into = &pdb
		default:
			t.Fatalf("document %d: unexpected %s %s", i, meta.APIVersion, meta.Kind)
		}
		if err := k8syaml.UnmarshalStrict([]byte(doc), into); err != nil {
			t.Fatalf("document %d (%s): %v", i, meta.Kind, err)
		}
		kinds = append(kinds, meta.Kind)
	}
	if strings.Join(kinds, ",") != "ConfigMap,Deployment,Service,PodDisruptionBudget" {
		t.Fatalf("documents %v", kinds)
	}

	t.Setenv(configs.AdminTokenEnv, "from-the-secret") // as the Deployment's env sets it
	cfg, err := configs.Parse([]byte(cm.Data["photosync.yaml"]))
	if err != nil {
		t.Fatalf("the ConfigMap's photosync.yaml: %v", err)
	}

	pod := dep.Spec.Template
	if sel := dep.Spec.Selector.MatchLabels; sel["app"] == "" || pod.Labels["app"] != sel["app"] ||
		svc.Spec.Selector["app"] != sel["app"] || pdb.Spec.Selector.MatchLabels["app"] != sel["app"] {
		t.Errorf("selectors disagree: deployment %v, pod %v, service %v, pdb %v", sel, pod.Labels, svc.Spec.Selector, pdb.Spec.Selector)
	}
	if pdb.Spec.MinAvailable == nil && pdb.Spec.MaxUnavailable == nil {
		t.Error("the PodDisruptionBudget bounds nothing")
	}
	psc := pod.Spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.FSGroup == nil {
		t.Fatalf("pod securityContext %+v: want runAsNonRoot and an fsGroup", psc)
	}
	containers := map[string]corev1.Container{}
	for _, c := range pod.Spec.Containers {
		containers[c.Name] = c
	}
	app, ps := containers["app"], containers["photosync"]
	port := func(c corev1.Container, name string) int32 {
		for _, p := range c.Ports {
			if p.Name == name {
				return p.ContainerPort
			}
		}
		return 0
	}
	if cfg.UpstreamURL == nil || cfg.UpstreamURL.Port() != strconv.Itoa(int(port(app, "app"))) {
		t.Errorf("upstream %v does not point at the app's port %v", cfg.UpstreamURL, app.Ports)
	}
	if !strings.HasSuffix(cfg.Listen, ":"+strconv.Itoa(int(port(ps, "http")))) {
		t.Errorf("photosync listens on %q but exposes %v", cfg.Listen, ps.Ports)
	}
	if cfg.Admin.Listen != "0.0.0.0:"+strconv.Itoa(int(port(ps, "admin"))) {
		t.Errorf("admin.listen %q: want the pod IP on the admin port %v", cfg.Admin.Listen, ps.Ports)
	}
	if a := pod.Annotations; a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != strconv.Itoa(int(port(ps, "admin"))) {
		t.Errorf("scrape annotations %v do not name the admin port", a)
	}
	var tokenFromSecret bool
	for _, e := range ps.Env {
		tokenFromSecret = tokenFromSecret || e.Name == configs.AdminTokenEnv && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
	}
	if !tokenFromSecret || cfg.Admin.Token != "" {
		t.Errorf("the admin token must come from a Secret through %s, not the ConfigMap", configs.AdminTokenEnv)
	}

	sc := ps.SecurityContext
	uid := psc.RunAsUser
	if sc != nil && sc.RunAsUser != nil {
		uid = sc.RunAsUser
	}
	if sc == nil || uid == nil || *uid == 0 || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("photosync's securityContext %+v: want non-root, no escalation, read-only root", sc)
	}
	// The key: a Secret volume mounted where s2s.key points, readable by
	// photosync's user through the fsGroup (group-readable, not world).
	for _, v := range pod.Spec.Volumes {
		if v.Secret == nil {
			continue
		}
		mode := v.Secret.DefaultMode
		if mode == nil || *mode&0o040 == 0 || *mode&0o007 != 0 {
			t.Errorf("secret volume %s mode %o: want group-readable (fsGroup), not world-readable", v.Name, deref(mode))
		}
		var mounted bool
		for _, m := range ps.VolumeMounts {
			mounted = mounted || m.Name == v.Name && strings.HasPrefix(cfg.S2S.Key, m.MountPath+"/")
		}
		if !mounted {
			t.Errorf("s2s.key %s is not in the secret volume %s", cfg.S2S.Key, v.Name)
		}
	}
	for name, p := range map[string]*corev1.Probe{"readiness": ps.ReadinessProbe, "liveness": ps.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
			t.Errorf("%s probe %+v: want /healthz (never /readyz: see the comment)", name, p)
		}
	}
	if strings.Join(ps.Args, " ") != "serve --config /etc/photosync/photosync.yaml" {
		t.Errorf("photosync args %q", ps.Args)
	}
}

func deref(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

// TestDockerfile checks what the image needs without a container engine:
// the health check runs photosync itself (distroless has no shell), the OCI
// labels are set, the revision is stamped, and .dockerignore keeps .git and
// the store out of the context.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, want := range []string{
		`CMD ["/usr/local/bin/photosync", "health"]`,
		`ENTRYPOINT ["/usr/local/bin/photosync"]`,
		"org.opencontainers.image.revision=\"${REVISION}\"",
		"org.opencontainers.image.version=",
		"org.opencontainers.image.created=",
		"org.opencontainers.image.licenses=\"Apache-2.0\"",
		"-X main.revision=${REVISION}",
		"USER 65532:65532",
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
	ig, err := os.ReadFile(filepath.Join("..", ".dockerignore"))
	if err != nil {
		t.Fatalf("the build context (the repository root) has no .dockerignore: %v", err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(ig), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{".git", "data/", "coverage.out"} {
		if !lines[want] {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
}
