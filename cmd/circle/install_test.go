package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/ssa/utils"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/circlecore/circle/testenv"
)

// installFixture is one installation's flags and key files.
type installFixture struct {
	ns, target string
	kc         string
	ring       string
	keys       [][]byte // the key files' bytes, which no output may hold
	flags      []string // the per-installation flags, without keys or cluster
}

func newInstallFixture(t *testing.T, kube *testenv.Kube) *installFixture {
	t.Helper()
	f := &installFixture{
		// A fresh name install must create, so the test also covers a cluster without it.
		ns:     fmt.Sprintf("circle-t%d", time.Now().UnixNano()%1e9),
		target: kube.Namespace(t),
		kc:     writeKubeconfig(t, kube),
		ring:   newKeyringFile(t),
	}
	for _, p := range []string{exampleKey, f.ring} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f.keys = append(f.keys, b)
	}
	f.flags = []string{"--namespace", f.ns, "--source-url", "https://git.example.org/acme/config.git", "--branch", "release",
		"--publish-url", "file:///var/lib/circle/storage/acme", "--webhook-host", "hooks.acme.example", "--target-namespace", f.target,
		"--image", "registry.acme.example/circle:v9.9.9"}
	return f
}

func (f *installFixture) install(extra ...string) []string {
	args := append([]string{"install"}, f.flags...)
	args = append(args, "--key-file", exampleKey, "--storage-keyring", f.ring, "--kubeconfig", f.kc)
	return append(args, extra...)
}

// noKeys fails when out holds any key file's bytes, a line of one, or their base64.
func (f *installFixture) noKeys(t *testing.T, what, out string, more ...[]byte) {
	t.Helper()
	for _, b := range append(slices.Clone(f.keys), more...) {
		needles := []string{string(b), base64.StdEncoding.EncodeToString(b)}
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); len(l) >= 16 && !strings.HasPrefix(l, "#") {
				needles = append(needles, l, base64.StdEncoding.EncodeToString([]byte(l)))
			}
		}
		for _, n := range needles {
			if strings.Contains(out, n) {
				t.Errorf("%s shows key material %.12q…", what, n)
			}
		}
	}
}

// The whole life of an installation against a real kube-apiserver: a dry run changes
// nothing; install makes every object of deploy/base with the flags' values and the two
// key Secrets from the files; a second install changes nothing; --export prints the same
// objects but the key Secrets, and no key; uninstall removes what the inventory lists but
// the Namespace and the PVC, and leaves an object of someone else's in the namespace.
func TestInstall(t *testing.T) {
	kube := testenv.StartKube(t)
	ctx := context.Background()
	cs := kube.Clientset(t)
	f := newInstallFixture(t, kube)

	// --dry-run: the cluster is asked, nothing is made.
	code, out, errOut := run(t, f.install("--dry-run")...)
	if code != exitOK || !strings.Contains(out, "Deployment/"+f.ns+"/circle") || !strings.Contains(out, "0 of 16 object(s) refused") {
		t.Fatalf("install --dry-run: exit %d\n%s%s", code, out, errOut)
	}
	f.noKeys(t, "install --dry-run", out+errOut)
	if _, err := cs.CoreV1().Namespaces().Get(ctx, f.ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("install --dry-run made namespace %s (%v)", f.ns, err)
	}
	if _, err := cs.RbacV1().RoleBindings(f.target).Get(ctx, "circle-apply", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("install --dry-run made the target's RoleBinding (%v)", err)
	}

	code, out, errOut = run(t, f.install()...)
	if code != exitOK || !strings.Contains(out, "16 created, 0 configured, 0 unchanged, 0 deleted") {
		t.Fatalf("install: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "A new webhook secret is in Secret "+f.ns+"/circle-keys") {
		t.Errorf("install does not say where the generated webhook secret is:\n%s", errOut)
	}
	applied := objectSet(regexp.MustCompile(`(?m)^(\S+/\S+) created$`), out)
	checkInstalled(t, cs, f)
	keys, err := cs.CoreV1().Secrets(f.ns).Get(ctx, "circle-keys", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hook := keys.Data["webhook-secret"]
	f.noKeys(t, "install", out+errOut, hook)

	// Idempotent: the same flags again change nothing, the generated webhook secret included.
	code, out, errOut = run(t, f.install()...)
	if code != exitOK || !strings.Contains(out, "0 created, 0 configured, 16 unchanged, 0 deleted") {
		t.Fatalf("second install: exit %d\n%s%s", code, out, errOut)
	}
	f.noKeys(t, "second install", out+errOut, hook)
	if again, _ := cs.CoreV1().Secrets(f.ns).Get(ctx, "circle-keys", metav1.GetOptions{}); !bytes.Equal(again.Data["webhook-secret"], hook) {
		t.Error("the second install replaced the webhook secret")
	}

	// --export: what install applied, the key Secrets left out, no key in it, no cluster read.
	code, exported, errOut := run(t, append(append([]string{"install"}, f.flags...),
		"--export", "--key-file", exampleKey, "--storage-keyring", f.ring, "--kubeconfig", filepath.Join(t.TempDir(), "none"))...)
	if code != exitOK {
		t.Fatalf("install --export: exit %d\n%s", code, errOut)
	}
	f.noKeys(t, "install --export", exported+errOut, hook)
	objects, err := utils.ReadObjects(strings.NewReader(exported))
	if err != nil {
		t.Fatalf("install --export is not a YAML stream: %v", err)
	}
	var names []string
	for _, o := range objects {
		names = append(names, utils.FmtUnstructured(o))
	}
	want := slices.DeleteFunc(slices.Clone(applied), func(s string) bool {
		return s == "Secret/"+f.ns+"/circle-keys" || s == "Secret/"+f.ns+"/circle-storage-keyring"
	})
	if got := objectSet(nil, strings.Join(names, "\n")); !slices.Equal(got, want) || len(got) != 14 {
		t.Errorf("install --export prints\n%v\ninstall applied\n%v", got, want)
	}
	for _, hint := range []string{"kubectl -n " + f.ns + " create secret generic circle-keys --from-file=age.example.agekey=" + exampleKey,
		"kubectl -n " + f.ns + " create secret generic circle-storage-keyring --from-file=keyring.json=" + f.ring} {
		if !strings.Contains(exported, hint) {
			t.Errorf("install --export does not say %q:\n%.600s", hint, exported)
		}
	}
	// The exported objects are the applied ones, field for field: each exported field is in
	// the live object with the same value (which has more: defaults, the owner labels).
	c, err := client.New(kube.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objects {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.GroupVersionKind())
		if err := c.Get(ctx, client.ObjectKeyFromObject(o), live); err != nil {
			t.Errorf("exported %s: %v", utils.FmtUnstructured(o), err)
			continue
		}
		if path := notIn(o.Object, live.Object, ""); path != "" {
			t.Errorf("exported %s differs from the applied one at %s", utils.FmtUnstructured(o), path)
		}
	}

	// Uninstall: an object of someone else's in the same namespace stays.
	other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "not-circles", Namespace: f.ns}, Data: map[string]string{"a": "b"}}
	if _, err := cs.CoreV1().ConfigMaps(f.ns).Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = run(t, "uninstall", "--namespace", f.ns, "--kubeconfig", f.kc)
	if code != exitOK || !strings.Contains(out, "14 deleted, 3 kept") {
		t.Fatalf("uninstall: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := cs.CoreV1().ConfigMaps(f.ns).Get(ctx, "not-circles", metav1.GetOptions{}); err != nil {
		t.Errorf("uninstall deleted a ConfigMap install did not make: %v", err)
	}
	checkUninstalled(t, cs, f)
	if code, out, errOut = run(t, "uninstall", "--namespace", f.ns, "--kubeconfig", f.kc); code != exitFailed || !strings.Contains(errOut, "no inventory") {
		t.Errorf("a second uninstall: exit %d, want %d naming the missing inventory\n%s%s", code, exitFailed, out, errOut)
	}
}

// checkInstalled reads back what install made.
func checkInstalled(t *testing.T, cs *kubernetes.Clientset, f *installFixture) {
	t.Helper()
	ctx := context.Background()
	ns := f.ns
	if d, err := cs.AppsV1().Deployments(ns).Get(ctx, "circle", metav1.GetOptions{}); err != nil {
		t.Error(err)
	} else if img := d.Spec.Template.Spec.Containers[0].Image; img != "registry.acme.example/circle:v9.9.9" {
		t.Errorf("the Deployment runs %s, want --image's", img)
	}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "circle", metav1.GetOptions{}); err != nil {
		t.Error(err)
	}
	if _, err := cs.RbacV1().Roles(ns).Get(ctx, "circle", metav1.GetOptions{}); err != nil {
		t.Error(err)
	}
	if rb, err := cs.RbacV1().RoleBindings(ns).Get(ctx, "circle", metav1.GetOptions{}); err != nil || rb.Subjects[0].Namespace != ns {
		t.Errorf("RoleBinding circle: %v %+v", err, rb)
	}
	if _, err := cs.RbacV1().ClusterRoles().Get(ctx, "circle-apply", metav1.GetOptions{}); err != nil {
		t.Error(err)
	}
	if rb, err := cs.RbacV1().RoleBindings(f.target).Get(ctx, "circle-apply", metav1.GetOptions{}); err != nil ||
		rb.RoleRef.Name != "circle-apply" || len(rb.Subjects) != 1 || rb.Subjects[0].Namespace != ns || rb.Subjects[0].Name != "circle" {
		t.Errorf("the target namespace's RoleBinding circle-apply: %v %+v", err, rb)
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "circle-config", metav1.GetOptions{}); err != nil {
		t.Error(err)
	}
	env, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "circle-env", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"CIRCLE_SOURCE__URL": "https://git.example.org/acme/config.git", "CIRCLE_SOURCE__BRANCH": "release",
		"CIRCLE_PUBLISH": "file:///var/lib/circle/storage/acme", "CIRCLE_KEYS__SOPS_SECRET": ns + "/circle-keys", "CIRCLE_LEADER_ELECTION__NAMESPACE": ns,
		"CIRCLE_APPLY__INVENTORY_NAMESPACE": ns} {
		if env.Data[k] != v {
			t.Errorf("circle-env %s = %q, want %q", k, env.Data[k], v)
		}
	}
	if ing, err := cs.NetworkingV1().Ingresses(ns).Get(ctx, "circle", metav1.GetOptions{}); err != nil || ing.Spec.Rules[0].Host != "hooks.acme.example" {
		t.Errorf("Ingress circle: %v %+v", err, ing)
	}
	keys, err := cs.CoreV1().Secrets(ns).Get(ctx, "circle-keys", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(keys.Data["age.example.agekey"], f.keys[0]) || len(keys.Data["webhook-secret"]) != 64 || len(keys.Data) != 2 {
		t.Errorf("circle-keys holds keys %v, want age.example.agekey (the key file) and webhook-secret (64 hex digits)", slices.Sorted(mapKeys(keys.Data)))
	}
	ring, err := cs.CoreV1().Secrets(ns).Get(ctx, "circle-storage-keyring", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ring.Data["keyring.json"], f.keys[1]) || len(ring.Data) != 1 {
		t.Errorf("circle-storage-keyring holds keys %v, want keyring.json (the file)", slices.Sorted(mapKeys(ring.Data)))
	}
	if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "circle-inventory-install-"+ns, metav1.GetOptions{}); err != nil {
		t.Errorf("no inventory: %v", err)
	}
}

// checkUninstalled checks that uninstall removed what install made, but the Namespace and
// the PVC.
func checkUninstalled(t *testing.T, cs *kubernetes.Clientset, f *installFixture) {
	t.Helper()
	ctx := context.Background()
	ns := f.ns
	gone := func(what string, err error) {
		t.Helper()
		if !apierrors.IsNotFound(err) {
			t.Errorf("%s after uninstall: %v", what, err)
		}
	}
	_, err := cs.AppsV1().Deployments(ns).Get(ctx, "circle", metav1.GetOptions{})
	gone("Deployment", err)
	_, err = cs.CoreV1().ServiceAccounts(ns).Get(ctx, "circle", metav1.GetOptions{})
	gone("ServiceAccount", err)
	_, err = cs.RbacV1().Roles(ns).Get(ctx, "circle", metav1.GetOptions{})
	gone("Role", err)
	_, err = cs.RbacV1().ClusterRoles().Get(ctx, "circle-apply", metav1.GetOptions{})
	gone("ClusterRole", err)
	_, err = cs.RbacV1().RoleBindings(f.target).Get(ctx, "circle-apply", metav1.GetOptions{})
	gone("the target's RoleBinding", err)
	for _, name := range []string{"circle-config", "circle-env", "circle-inventory-install-" + ns} {
		_, err = cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		gone("ConfigMap "+name, err)
	}
	_, err = cs.CoreV1().Secrets(ns).Get(ctx, "circle-keys", metav1.GetOptions{})
	gone("Secret circle-keys", err)
	if _, err := cs.CoreV1().Secrets(ns).Get(ctx, "circle-storage-keyring", metav1.GetOptions{}); err != nil {
		t.Errorf("uninstall deleted the storage keyring without --delete-state: %v", err)
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		t.Errorf("uninstall deleted the namespace: %v", err)
	}
	if _, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "circle-state", metav1.GetOptions{}); err != nil {
		t.Errorf("uninstall deleted the state PVC without --delete-state: %v", err)
	}
}

// notIn is the path of the first field of want that got does not hold with the same value,
// or "" when got holds all of want.
func notIn(want, got any, path string) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return path
		}
		for k, v := range w {
			if p := notIn(v, g[k], path+"."+k); p != "" {
				return p
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return path
		}
		for i := range w {
			if p := notIn(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); p != "" {
				return p
			}
		}
		return ""
	default:
		if fmt.Sprint(want) != fmt.Sprint(got) {
			return path
		}
		return ""
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Bad input stops install before anything is applied, naming the flag and the path.
func TestInstall_BadInput(t *testing.T) {
	kube := testenv.StartKube(t)
	cs := kube.Clientset(t)
	f := newInstallFixture(t, kube)
	missing := filepath.Join(t.TempDir(), "nope.agekey")
	notAKey := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(notAKey, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := append(append([]string{"install"}, f.flags...), "--kubeconfig", f.kc)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"missing key file", []string{"--key-file", missing, "--storage-keyring", f.ring}, []string{"--key-file", missing, "no such file"}},
		{"not a key file", []string{"--key-file", notAKey, "--storage-keyring", f.ring}, []string{"--key-file", notAKey}},
		{"missing keyring", []string{"--key-file", exampleKey, "--storage-keyring", missing}, []string{"--storage-keyring", missing, "no such file"}},
		{"not a keyring", []string{"--key-file", exampleKey, "--storage-keyring", exampleKey}, []string{"--storage-keyring", exampleKey, "not a storage keyring"}},
		{"no key file", []string{"--storage-keyring", f.ring}, []string{"--key-file", "required"}},
		{"no keyring", []string{"--key-file", exampleKey}, []string{"--storage-keyring", "required"}},
		{"bad namespace", []string{"--key-file", exampleKey, "--storage-keyring", f.ring, "--namespace", "Not_A_Name"}, []string{"--namespace", "Not_A_Name"}},
		{"missing target namespace", []string{"--key-file", exampleKey, "--storage-keyring", f.ring, "--target-namespace", "no-such-ns"},
			[]string{"--target-namespace no-such-ns", "no such namespace"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, append(slices.Clone(base), tc.args...)...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d\n%s%s", code, exitUsage, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("the error does not say %q:\n%s", w, errOut)
				}
			}
			f.noKeys(t, tc.name, out+errOut)
			if _, err := cs.CoreV1().Namespaces().Get(context.Background(), f.ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("namespace %s exists after a refused install (%v)", f.ns, err)
			}
		})
	}
}

// Two installations share the cluster-scoped circle-apply ClusterRole: the one applied last
// owns it, and the other's uninstall leaves it, saying why. --delete-state deletes the PVC.
func TestUninstall_SharedAndState(t *testing.T) {
	kube := testenv.StartKube(t)
	ctx := context.Background()
	cs := kube.Clientset(t)
	a, b := newInstallFixture(t, kube), newInstallFixture(t, kube)
	b.ns += "b"
	b.flags[1] = b.ns
	for _, f := range []*installFixture{a, b} {
		if code, out, errOut := run(t, f.install()...); code != exitOK {
			t.Fatalf("install %s: exit %d\n%s%s", f.ns, code, out, errOut)
		}
	}
	code, out, errOut := run(t, "uninstall", "--namespace", a.ns, "--kubeconfig", a.kc, "--delete-state", "-o", "json")
	if code != exitOK || !strings.Contains(out, `"subject": "ClusterRole/circle-apply"`) || !strings.Contains(out, `install-`+b.ns) {
		t.Fatalf("uninstall %s: exit %d, want the ClusterRole kept for %s\n%s%s", a.ns, code, b.ns, out, errOut)
	}
	if _, err := cs.RbacV1().ClusterRoles().Get(ctx, "circle-apply", metav1.GetOptions{}); err != nil {
		t.Errorf("uninstall of %s deleted the ClusterRole %s uses: %v", a.ns, b.ns, err)
	}
	// Deleted, or on its way: the test server has no controller to lift the PVC's
	// kubernetes.io/pvc-protection finalizer, which a cluster lifts once no pod mounts it.
	if pvc, err := cs.CoreV1().PersistentVolumeClaims(a.ns).Get(ctx, "circle-state", metav1.GetOptions{}); !apierrors.IsNotFound(err) && (err != nil || pvc.DeletionTimestamp == nil) {
		t.Errorf("uninstall --delete-state left the PVC (%v)", err)
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, a.ns, metav1.GetOptions{}); err != nil {
		t.Errorf("uninstall --delete-state deleted the namespace: %v", err)
	}
	if _, err := cs.CoreV1().Secrets(a.ns).Get(ctx, "circle-storage-keyring", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("uninstall --delete-state left the storage keyring (%v)", err)
	}
	if code, out, errOut := run(t, "uninstall", "--namespace", b.ns, "--kubeconfig", b.kc); code != exitOK || !strings.Contains(out, "ClusterRole/circle-apply deleted") {
		t.Fatalf("uninstall %s: exit %d\n%s%s", b.ns, code, out, errOut)
	}
}
