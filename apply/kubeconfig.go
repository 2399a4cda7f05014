package apply

import (
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// RESTConfig is a cluster's connection, loaded as kubectl loads it: from the kubeconfig file
// when one is named, else from KUBECONFIG, ~/.kube/config, and last the in-cluster service
// account; at kubeContext, or the file's current context when "". Every command and the
// daemon connect through it.
func RESTConfig(kubeconfig, kubeContext string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig // "" keeps the precedence list
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
}
