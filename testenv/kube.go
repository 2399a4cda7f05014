package testenv

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Kube is a real kube-apiserver backed by a real etcd, started by controller-runtime's
// envtest from the binaries install.sh built. No controllers run: a deleted namespace stays
// Terminating and Deployments never get Pods, so tests use a fresh namespace each and set
// status themselves.
type Kube struct {
	Config *rest.Config
	env    *envtest.Environment
}

// StartKube returns the package's API server, starting it on first use (4-6 s).
func StartKube(t testing.TB) *Kube {
	t.Helper()
	return start(t, "kube", startKube)
}

func startKube() (*Kube, func(), error) {
	assets, err := Tool(ToolKubebuilder)
	if err != nil {
		return nil, nil, err
	}
	for _, tool := range []string{ToolEtcd, ToolKubeAPIServer} {
		if _, err := Tool(tool); err != nil {
			return nil, nil, err
		}
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		DownloadBinaryAssets:     false,
		ControlPlaneStartTimeout: 90 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, nil, fmt.Errorf("start kube-apiserver and etcd: %w", err)
	}
	// The default client-side throttle (5 qps) makes apply tests slow for no benefit here.
	cfg.QPS, cfg.Burst = 200, 400
	k := &Kube{Config: cfg, env: env}
	return k, func() { _ = env.Stop() }, nil
}

// Clientset returns a typed client for the server.
func (k *Kube) Clientset(t testing.TB) *kubernetes.Clientset {
	t.Helper()
	cs, err := kubernetes.NewForConfig(k.Config)
	if err != nil {
		t.Fatalf("testenv: kubernetes client: %v", err)
	}
	return cs
}

var nsSeq atomic.Int64

// Namespace creates a fresh namespace for one test and returns its name.
func (k *Kube) Namespace(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1e9, nsSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := k.Clientset(t).CoreV1().Namespaces().Create(ctx,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("testenv: create namespace: %v", err)
	}
	return name
}

// OnlyConfigMap waits up to within until ns holds exactly one ConfigMap whose name starts
// with prefix, and returns its name: for a generated, hash-named ConfigMap, whose earlier
// version must have been pruned.
func (k *Kube) OnlyConfigMap(t testing.TB, ns, prefix string, within time.Duration) string {
	t.Helper()
	cs := k.Clientset(t)
	deadline := time.Now().Add(within)
	for {
		list, err := cs.CoreV1().ConfigMaps(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, c := range list.Items {
			if strings.HasPrefix(c.Name, prefix) {
				names = append(names, c.Name)
			}
		}
		if len(names) == 1 {
			return names[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s* ConfigMaps in %s: %v (want exactly one: the old one pruned)", prefix, ns, names)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Kubeconfig writes a kubeconfig file for the server, for commands run as processes.
func (k *Kube) Kubeconfig(t testing.TB) string {
	t.Helper()
	c := k.Config
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthorityData: c.CAData}
	cfg.AuthInfos["test"] = &clientcmdapi.AuthInfo{ClientCertificateData: c.CertData, ClientKeyData: c.KeyData, Token: c.BearerToken}
	cfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "test"}
	cfg.CurrentContext = "test"
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, p); err != nil {
		t.Fatal(err)
	}
	return p
}
