package redact

import "encoding/base64"

// MaskSecretData replaces, in place, each value of a Kubernetes Secret's data (decoded from
// base64 first, so the mask is that of the plaintext) and stringData with mask's result.
// obj is the object as decoded JSON (unstructured.Unstructured's Object). A plan and a
// cluster diff show Secrets through it, so a changed value shows as a changed mask and no
// value is printed.
func MaskSecretData(obj map[string]any, mask func(string) string) {
	for _, field := range []string{"data", "stringData"} {
		m, ok := obj[field].(map[string]any)
		if !ok {
			continue
		}
		for k, v := range m {
			s, _ := v.(string)
			if field == "data" {
				if b, err := base64.StdEncoding.DecodeString(s); err == nil {
					s = string(b)
				}
			}
			m[k] = mask(s)
		}
	}
}
