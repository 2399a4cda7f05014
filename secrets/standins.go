package secrets

import (
	"github.com/getsops/sops/v3"
)

// StandIns returns a SOPS file's document with every encrypted value replaced by a stand-in
// of the type its tag names, without any key: "" for str, 0 for int, 0.5 for float, false
// for bool, "" for bytes. Values sops' rules leave in the clear keep their own. It is what
// a review without keys reads (circle validate --no-decrypt): the key names and the types
// are in the clear in the file, the values are not.
//
// A type tag is a hint, not a proof: nothing checks it without the data key, and neither is
// the MAC, so a file changed by hand passes here and fails where it is decrypted. Entries
// that sops' rules say are encrypted but are not are refused as Decrypt refuses them.
func StandIns(name string, data []byte) ([]byte, error) {
	f, err := open(name, data)
	if err != nil {
		return nil, err
	}
	ps := &problems{file: name, lines: f.lines}
	checkEntries(f.tree, ps)
	if err := ps.err(); err != nil {
		return nil, err
	}
	for i := range f.tree.Branches {
		standInBranch(f.tree.Branches[i])
	}
	return emit(name, f.format, f.tree.Branches)
}

func standInBranch(b sops.TreeBranch) {
	for i := range b {
		b[i].Value = standIn(b[i].Value)
	}
}

func standIn(v any) any {
	switch v := v.(type) {
	case sops.TreeBranch:
		standInBranch(v)
		return v
	case []any:
		for i := range v {
			v[i] = standIn(v[i])
		}
		return v
	case string:
		m := encValue.FindStringSubmatch(v)
		if m == nil {
			return v // in the clear by the file's own rules
		}
		switch m[4] {
		case "int":
			return 0
		case "float":
			return 0.5
		case "bool":
			return false
		default: // str, bytes, and a tag that does not parse (Decrypt's to report)
			return ""
		}
	}
	return v
}
