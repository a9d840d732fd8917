// Package deploy holds example deployments of photosync; its tests check
// them. The nginx example is run with a real nginx in cmd/photosync's tests.
// The Dockerfile is not built here: these machines have no container engine.
package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

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

// TestKubernetesPod checks that the pod example's photosync config is a
// valid photosync config in sidecar mode, pointing at the application's port,
// and that photosync runs unprivileged.
func TestKubernetesPod(t *testing.T) {
	f, err := os.Open(filepath.Join("kubernetes", "pod.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type container struct {
		Name  string
		Args  []string
		Ports []struct {
			Name          string
			ContainerPort int `yaml:"containerPort"`
		}
		SecurityContext struct {
			RunAsUser                int  `yaml:"runAsUser"`
			AllowPrivilegeEscalation bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   bool `yaml:"readOnlyRootFilesystem"`
		} `yaml:"securityContext"`
	}
	var (
		cfg        configs.Config
		containers = map[string]container{}
		kinds      []string
	)
	dec := yaml.NewDecoder(f)
	for {
		var doc struct {
			Kind string
			Data map[string]string
			Spec struct {
				Containers      []container
				SecurityContext struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
				} `yaml:"securityContext"`
			}
		}
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("pod.yaml: %v", err)
		}
		kinds = append(kinds, doc.Kind)
		switch doc.Kind {
		case "ConfigMap":
			if cfg, err = configs.Parse([]byte(doc.Data["photosync.yaml"])); err != nil {
				t.Fatalf("the ConfigMap's photosync.yaml: %v", err)
			}
		case "Pod":
			if !doc.Spec.SecurityContext.RunAsNonRoot {
				t.Error("pod does not require a non-root user")
			}
			for _, c := range doc.Spec.Containers {
				containers[c.Name] = c
			}
		}
	}
	if strings.Join(kinds, ",") != "ConfigMap,Pod,Service" {
		t.Fatalf("documents %v, want ConfigMap, Pod, Service", kinds)
	}
	app, ps := containers["app"], containers["photosync"]
	if cfg.UpstreamURL == nil || len(app.Ports) != 1 || cfg.UpstreamURL.Port() != strconv.Itoa(app.Ports[0].ContainerPort) {
		t.Errorf("upstream %v does not point at the app's port %v", cfg.UpstreamURL, app.Ports)
	}
	if len(ps.Ports) != 1 || !strings.HasSuffix(cfg.Listen, ":"+strconv.Itoa(ps.Ports[0].ContainerPort)) {
		t.Errorf("photosync listens on %q but exposes %v", cfg.Listen, ps.Ports)
	}
	if sc := ps.SecurityContext; sc.RunAsUser == 0 || sc.AllowPrivilegeEscalation || !sc.ReadOnlyRootFilesystem {
		t.Errorf("photosync's securityContext %+v: want non-root, no escalation, read-only root", sc)
	}
	if strings.Join(ps.Args, " ") != "serve --config /etc/photosync/photosync.yaml" {
		t.Errorf("photosync args %q", ps.Args)
	}
}
