package render

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"sigs.k8s.io/yaml"
)

// Kubernetes is what an environment's configuration says of the objects Circle generates
// beside its ConfigMap and Secrets: the reserved key "kubernetes", validated by Circle's
// #Kubernetes (schema/circle.cue). Sizes, classes, hosts and paths differ per environment,
// so they live in the configuration layers, where an environment overrides one field of
// the base, and not copied by hand into each overlay.
type Kubernetes struct {
	// Volumes are PersistentVolumeClaims, by name.
	Volumes map[string]Volume `json:"volumes,omitempty"`
	// Ingresses are Ingresses, by name.
	Ingresses map[string]Ingress `json:"ingresses,omitempty"`
}

// Volume is one PersistentVolumeClaim.
type Volume struct {
	Size             string   `json:"size"`
	StorageClassName string   `json:"storageClassName,omitempty"`
	AccessModes      []string `json:"accessModes,omitempty"`
}

// Ingress is one Ingress serving one host.
type Ingress struct {
	Host          string             `json:"host"`
	ClassName     string             `json:"className,omitempty"`
	TLSSecretName string             `json:"tlsSecretName,omitempty"`
	Paths         map[string]Backend `json:"paths"`
}

// Backend is the Service a path goes to; Port is a number or the Service port's name.
type Backend struct {
	Service string `json:"service"`
	Port    any    `json:"port"`
}

// KubernetesFrom reads the validated "kubernetes" key of a configuration; nil for none.
func KubernetesFrom(v map[string]any) (*Kubernetes, error) {
	if len(v) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var k Kubernetes
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("the kubernetes key: %w", err)
	}
	return &k, nil
}

// generatedLabels mark the objects made from the kubernetes key: the name label the
// default manifest policy asks for, and who manages them.
func generatedLabels(name string) map[string]any {
	return map[string]any{"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "circle"}
}

// objects are k's PersistentVolumeClaims and Ingresses as YAML files by name, in name
// order (claims first), for the generated kustomization's resources.
func (k *Kubernetes) objects() ([]string, map[string][]byte, error) {
	if k == nil {
		return nil, nil, nil
	}
	var names []string
	files := map[string][]byte{}
	add := func(file string, obj map[string]any) error {
		b, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		names = append(names, file)
		files[file] = b
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(k.Volumes)) {
		v := k.Volumes[name]
		spec := map[string]any{
			"accessModes": cmpOr(v.AccessModes, []string{"ReadWriteOnce"}),
			"resources":   map[string]any{"requests": map[string]any{"storage": v.Size}},
		}
		if v.StorageClassName != "" {
			spec["storageClassName"] = v.StorageClassName
		}
		if err := add("volume-"+name+".yaml", map[string]any{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
			"metadata": map[string]any{"name": name, "labels": generatedLabels(name)}, "spec": spec}); err != nil {
			return nil, nil, err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(k.Ingresses)) {
		in := k.Ingresses[name]
		if len(in.Paths) == 0 {
			return nil, nil, fmt.Errorf("kubernetes.ingresses.%s.paths: an Ingress needs at least one path", name)
		}
		var paths []any
		for _, p := range slices.Sorted(maps.Keys(in.Paths)) {
			b := in.Paths[p]
			port := map[string]any{}
			switch v := b.Port.(type) {
			case float64:
				port["number"] = int(v)
			case string:
				if n, err := strconv.Atoi(v); err == nil {
					port["number"] = n
				} else {
					port["name"] = v
				}
			default:
				port["number"] = v
			}
			paths = append(paths, map[string]any{"path": p, "pathType": "Prefix",
				"backend": map[string]any{"service": map[string]any{"name": b.Service, "port": port}}})
		}
		spec := map[string]any{"rules": []any{map[string]any{"host": in.Host, "http": map[string]any{"paths": paths}}}}
		if in.ClassName != "" {
			spec["ingressClassName"] = in.ClassName
		}
		if in.TLSSecretName != "" {
			spec["tls"] = []any{map[string]any{"hosts": []string{in.Host}, "secretName": in.TLSSecretName}}
		}
		if err := add("ingress-"+name+".yaml", map[string]any{"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
			"metadata": map[string]any{"name": name, "labels": generatedLabels(name)}, "spec": spec}); err != nil {
			return nil, nil, err
		}
	}
	return names, files, nil
}

func cmpOr(a, b []string) []string {
	if len(a) > 0 {
		return a
	}
	return b
}
