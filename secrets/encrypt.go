package secrets

import (
	"fmt"

	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/cmd/sops/common"
	"github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/stores/yaml"
	"github.com/getsops/sops/v3/version"
)

// EncryptYAML encrypts a plain YAML document for age recipients as `sops encrypt` does
// (every value encrypted, a data key per file, the MAC over the values), through sops' own
// library: the file opens with the sops CLI and with Circle alike. It is for `circle init`,
// which writes a repository's first secrets files; editing them later is `sops`'s job.
func EncryptYAML(plain []byte, recipients ...string) ([]byte, error) {
	if len(recipients) == 0 {
		return nil, fmt.Errorf("encrypt: no age recipient")
	}
	var group sops.KeyGroup
	for _, r := range recipients {
		k, err := sopsage.MasterKeyFromRecipient(r)
		if err != nil {
			return nil, fmt.Errorf("encrypt: age recipient: %w", err)
		}
		group = append(group, k)
	}
	store := yaml.NewStore(&config.YAMLStoreConfig{})
	branches, err := store.LoadPlainFile(plain)
	if err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	tree := sops.Tree{Branches: branches, Metadata: sops.Metadata{
		KeyGroups: []sops.KeyGroup{group}, UnencryptedSuffix: sops.DefaultUnencryptedSuffix, Version: version.Version}}
	dataKey, errs := tree.GenerateDataKey()
	if len(errs) > 0 {
		return nil, fmt.Errorf("encrypt: data key: %v", errs)
	}
	if err := common.EncryptTree(common.EncryptTreeOpts{Tree: &tree, Cipher: aes.NewCipher(), DataKey: dataKey}); err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	return store.EmitEncryptedFile(tree)
}
