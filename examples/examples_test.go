// Package examples_test keeps the example repository valid: every later stage is demonstrated
// on it, so a change that breaks it fails here first.
package examples_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/load"
	"github.com/getsops/sops/v3/decrypt"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

var envs = []string{"dev", "staging", "prod"}

func TestExamples_OverlaysRender(t *testing.T) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	for _, env := range envs {
		t.Run(env, func(t *testing.T) {
			res, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join("deploy", env))
			if err != nil {
				t.Fatalf("kustomize build deploy/%s: %v", env, err)
			}
			d, err := res.GetById(resID("apps", "v1", "Deployment", "shop-api", "shop-"+env))
			if err != nil {
				t.Fatalf("deploy/%s has no Deployment shop-api in namespace shop-%s: %v", env, env, err)
			}
			replicas, err := d.GetFieldValue("spec.replicas")
			if err != nil {
				t.Fatal(err)
			}
			// The overlay's replicas must agree with the environment's configuration.
			if want := configReplicas(t, env); replicas != want {
				t.Errorf("deploy/%s replicas = %v, config says %v", env, replicas, want)
			}
		})
	}
}

func TestExamples_SecretsDecryptWithExampleKey(t *testing.T) {
	t.Setenv("SOPS_AGE_KEY_FILE", filepath.Join("keys", "age.example.key"))
	for _, env := range envs {
		path := filepath.Join("secrets", env+".sops.yaml")
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := decrypt.File(path, "yaml")
		if err != nil {
			t.Fatalf("decrypt %s: %v", path, err)
		}
		var v struct {
			DB struct{ Password string } `json:"db"`
		}
		if err := yaml.Unmarshal(plain, &v); err != nil {
			t.Fatal(err)
		}
		if want := "example-" + env + "-db-password"; v.DB.Password != want {
			t.Errorf("%s: db.password = %q, want %q", path, v.DB.Password, want)
		}
		if strings.Contains(string(raw), v.DB.Password) {
			t.Errorf("%s holds the password in plaintext", path)
		}
	}
}

func TestExamples_PackageArtifactDigests(t *testing.T) {
	manifests, _ := filepath.Glob("packages/*/*.yaml")
	if len(manifests) < 2 {
		t.Fatalf("want at least two package manifests, found %v", manifests)
	}
	for _, m := range manifests {
		var p struct {
			Name      string
			Artifacts []struct {
				Path   string
				SHA256 string `json:"sha256"`
				Size   int
			}
		}
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, &p); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		if p.Name != filepath.Base(filepath.Dir(m)) {
			t.Errorf("%s: name %q does not match its folder", m, p.Name)
		}
		for _, a := range p.Artifacts {
			data, err := os.ReadFile(a.Path)
			if err != nil {
				t.Fatalf("%s: artifact: %v", m, err)
			}
			sum := sha256.Sum256(data)
			if hex.EncodeToString(sum[:]) != a.SHA256 || len(data) != a.Size {
				t.Errorf("%s: artifact %s digest/size do not match its bytes", m, a.Path)
			}
		}
	}
}

func TestExamples_SchemaCompiles(t *testing.T) {
	insts := load.Instances([]string{"./schema"}, nil)
	v := cuecontext.New().BuildInstance(insts[0])
	if err := v.Err(); err != nil {
		t.Fatalf("schema: %v", err)
	}
	if def := v.LookupPath(cuePath("#Config")); !def.Exists() {
		t.Error("schema defines no #Config")
	}
}
