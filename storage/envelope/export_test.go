package envelope

// CleartextTwin is k without its KMS URL, so the tests can see the key material a sealed
// file must not hold.
func CleartextTwin(k *Keyring) *Keyring {
	c := *k
	c.kms = ""
	return &c
}
