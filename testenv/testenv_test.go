package testenv_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/memory"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"
	"golang.org/x/crypto/ssh"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/circlecore/circle/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestKube_ServerSideApply(t *testing.T) {
	k := testenv.StartKube(t)
	cs := k.Clientset(t)
	ns := k.Namespace(t)
	ctx := context.Background()

	cm := corev1ac.ConfigMap("app-config", ns).WithData(map[string]string{"db.port": "5432"})
	if _, err := cs.CoreV1().ConfigMaps(ns).Apply(ctx, cm, metav1.ApplyOptions{FieldManager: "circle"}); err != nil {
		t.Fatalf("server-side apply: %v", err)
	}
	got, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "app-config", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	if got.Data["db.port"] != "5432" {
		t.Errorf("data = %v, want db.port=5432", got.Data)
	}
	if len(got.ManagedFields) == 0 || got.ManagedFields[0].Manager != "circle" ||
		got.ManagedFields[0].Operation != metav1.ManagedFieldsOperationApply {
		t.Errorf("managed fields = %+v, want one Apply entry by circle", got.ManagedFields)
	}

	// A second manager changing the same field conflicts: proof the server, not a fake, ran SSA.
	other := corev1ac.ConfigMap("app-config", ns).WithData(map[string]string{"db.port": "6543"})
	_, err = cs.CoreV1().ConfigMaps(ns).Apply(ctx, other, metav1.ApplyOptions{FieldManager: "someone-else"})
	if err == nil || !strings.Contains(err.Error(), "conflict") {
		t.Errorf("apply by another manager: err = %v, want a field conflict", err)
	}

	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != "v1.37.2" {
		t.Errorf("server version = %q, want v1.37.2", v.GitVersion)
	}

}

func TestStorage_Servers(t *testing.T) {
	backends := map[string]func(t *testing.T) string{
		"s3":    func(t *testing.T) string { return testenv.StartS3(t).NewBucket(t) },
		"azure": func(t *testing.T) string { return testenv.StartAzurite(t).NewContainer(t) },
		"gcs":   func(t *testing.T) string { return testenv.StartGCS(t).NewBucket(t) },
	}
	for name, newBucket := range backends {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			b, err := blob.OpenBucket(ctx, newBucket(t))
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer b.Close()

			want := map[string]string{"envs/dev/config.json": `{"a":1}`, "envs/prod/config.json": `{"a":2}`}
			for key, body := range want {
				if err := b.WriteAll(ctx, key, []byte(body), &blob.WriterOptions{
					ContentType: "application/json",
					Metadata:    map[string]string{"revision": "abc123"},
				}); err != nil {
					t.Fatalf("write %s: %v", key, err)
				}
			}
			got, err := b.ReadAll(ctx, "envs/prod/config.json")
			if err != nil || string(got) != `{"a":2}` {
				t.Fatalf("read = %q, %v", got, err)
			}
			attrs, err := b.Attributes(ctx, "envs/prod/config.json")
			if err != nil {
				t.Fatal(err)
			}
			if attrs.Metadata["revision"] != "abc123" || attrs.ContentType != "application/json" || attrs.Size != 7 {
				t.Errorf("attributes = %+v", attrs)
			}

			var keys []string
			it := b.List(&blob.ListOptions{Prefix: "envs/"})
			for {
				o, err := it.Next(ctx)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				keys = append(keys, o.Key)
			}
			sort.Strings(keys)
			if strings.Join(keys, ",") != "envs/dev/config.json,envs/prod/config.json" {
				t.Errorf("list = %v", keys)
			}

			if err := b.Delete(ctx, "envs/dev/config.json"); err != nil {
				t.Fatal(err)
			}
			if _, err := b.ReadAll(ctx, "envs/dev/config.json"); gcerrors.Code(err) != gcerrors.NotFound {
				t.Errorf("read after delete: %v, want NotFound", err)
			}
		})
	}
}

func TestGit_Remotes(t *testing.T) {
	repo := testenv.NewGitRepo(t, map[string]string{"circle.yaml": "environments: [dev]\n"})
	head := repo.Commit(t, map[string]string{"config/base/app.yaml": "replicas: 2\n", "circle.yaml": ""}, "add config, drop circle.yaml")
	repo.Tag(t, "v1.0.0")
	httpSrv := testenv.StartGitHTTP(t)
	sshSrv := testenv.StartGitSSH(t)

	signer, err := ssh.ParsePrivateKey(sshSrv.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	sshAuth := &gitssh.PublicKeys{User: sshSrv.User, Signer: signer}
	sshAuth.HostKeyCallback = ssh.FixedHostKey(sshSrv.HostKey)

	cases := []struct {
		name string
		url  string
		auth transport.AuthMethod
	}{
		{"file", repo.FileURL(), nil},
		{"http", httpSrv.PublicURL(repo), nil},
		{"http-basic-auth", httpSrv.PrivateURL(repo), &githttp.BasicAuth{Username: httpSrv.Username, Password: httpSrv.Password}},
		{"ssh", sshSrv.URL(repo), sshAuth},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := memfs.New()
			r, err := git.Clone(memory.NewStorage(), fs, &git.CloneOptions{URL: tc.url, Auth: tc.auth, Depth: 1})
			if err != nil {
				t.Fatalf("clone %s: %v", tc.url, err)
			}
			ref, err := r.Head()
			if err != nil {
				t.Fatal(err)
			}
			if ref.Hash().String() != head {
				t.Errorf("head = %s, want %s", ref.Hash(), head)
			}
			f, err := fs.Open("config/base/app.yaml")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			b, _ := io.ReadAll(f)
			if !bytes.Equal(b, []byte("replicas: 2\n")) {
				t.Errorf("content = %q", b)
			}
			if _, err := fs.Stat("circle.yaml"); err == nil {
				t.Error("circle.yaml was deleted in the last commit but is still there")
			}
			if _, err := r.Tag("v1.0.0"); err != nil {
				t.Errorf("tag v1.0.0: %v", err)
			}
		})
	}

	t.Run("http-wrong-password", func(t *testing.T) {
		_, err := git.Clone(memory.NewStorage(), nil, &git.CloneOptions{
			URL:  httpSrv.PrivateURL(repo),
			Auth: &githttp.BasicAuth{Username: httpSrv.Username, Password: "wrong"},
		})
		if !errors.Is(err, transport.ErrAuthorizationFailed) && !errors.Is(err, transport.ErrAuthenticationRequired) {
			t.Errorf("err = %v, want an authentication error", err)
		}
	})
	t.Run("ssh-unknown-host-key", func(t *testing.T) {
		_, other, _ := ed25519Key(t)
		auth := &gitssh.PublicKeys{User: sshSrv.User, Signer: signer}
		auth.HostKeyCallback = ssh.FixedHostKey(other)
		_, err := git.Clone(memory.NewStorage(), nil, &git.CloneOptions{URL: sshSrv.URL(repo), Auth: auth})
		if err == nil || !strings.Contains(err.Error(), "host key") {
			t.Errorf("err = %v, want a host key mismatch", err)
		}
	})
}

func ed25519Key(t *testing.T) (ed25519.PrivateKey, ssh.PublicKey, error) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	return priv, sp, err
}
