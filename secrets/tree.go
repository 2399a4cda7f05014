package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/getsops/sops/v3"
)

// Circle walks a sops tree itself instead of calling sops' Tree.Decrypt, for three reasons:
//
//   - sops' errors quote plaintext. A value's type tag (type:str, type:int, …) is not
//     authenticated: anyone can change it without a key, and the parse error of the
//     changed type (strconv.Atoi: parsing "<the secret>") is in sops' error. Here every
//     failure is a Problem built from the key path and a fixed message.
//   - sops' errors do not say which value failed; a Problem names its key path and line.
//   - sops re-evaluates its rules over every comment and path component for each value,
//     which a crafted file turns into quadratic work before any key is needed; the walk
//     here keeps running counts instead.
//
// What is encrypted, what the MAC covers and in which order are sops' rules (sops.go,
// Tree.Encrypt and Tree.Decrypt, v3.13): the MAC is SHA-512 over sops.ToBytes of every
// non-comment value in walk order (only the encrypted ones with mac_only_encrypted),
// stored encrypted with the data key under the lastmodified timestamp. A file sops made
// decrypts here to the same bytes, which the tests check against the sops CLI.

// encValue is sops' format for an encrypted value (aes/cipher.go).
var encValue = regexp.MustCompile(`^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]`)

// Messages of the problems a walk finds. They are constants, or built from a type tag
// that is one of sops' own names: never from a value.
const (
	msgEmpty = "null or empty value: sops neither encrypts nor authenticates it (its MAC does not cover it), " +
		"so it may have been added after encryption without the key; remove it or give it a value"
	msgClear       = "value in the clear, although the file's sops rules say it is encrypted: it was added or changed after encryption"
	msgUnsupported = "value of a kind sops does not support (a string, number, boolean or date is)"
	msgKey         = "key that is not a string, which sops does not support"
	msgMalformed   = "encrypted value is malformed: the file was changed after it was encrypted"
	msgAuth        = "value does not decrypt with the file's data key: its ciphertext, or its place in the file, was changed after encryption"
	msgTypeUnknown = "value has a type tag sops never writes: the tag was changed after the file was encrypted"
	msgComment     = "comment decrypts to a value that is not a comment: its type tag was changed after encryption"
)

func msgType(tag string) string {
	return fmt.Sprintf("value's type tag %q does not fit the encrypted value: the tag was changed after the file "+
		"was encrypted (sops does not authenticate type tags)", tag)
}

// rules are a file's sops rules for which values are encrypted. sops lets a file set one of
// them (unencrypted_suffix, _unencrypted, when it sets none).
type rules struct {
	md *sops.Metadata
	// unencRe, encRe, unencComment and encComment are the compiled regexes; nil when unset.
	// An invalid regex matches nothing, as in sops.
	unencRe, encRe, unencComment, encComment *regexp.Regexp
}

func newRules(md *sops.Metadata) *rules {
	compile := func(s string) *regexp.Regexp {
		if s == "" {
			return nil
		}
		re, err := regexp.Compile(s)
		if err != nil {
			return regexp.MustCompile(`$.^`) // matches nothing
		}
		return re
	}
	return &rules{md: md, unencRe: compile(md.UnencryptedRegex), encRe: compile(md.EncryptedRegex),
		unencComment: compile(md.UnencryptedCommentRegex), encComment: compile(md.EncryptedCommentRegex)}
}

// keyRule is what one path component contributes: for each of sops' four key rules,
// whether the component matches it.
type keyRule [4]bool

func (r *rules) key(k string) keyRule {
	md := r.md
	return keyRule{
		md.UnencryptedSuffix != "" && strings.HasSuffix(k, md.UnencryptedSuffix),
		md.EncryptedSuffix != "" && strings.HasSuffix(k, md.EncryptedSuffix),
		r.unencRe != nil && r.unencRe.MatchString(k),
		r.encRe != nil && r.encRe.MatchString(k),
	}
}

// commentLevel counts the comments of one level of the walk that match the comment rules,
// since the last value at that level (sops' commentsStack).
type commentLevel struct{ enc, unenc int }

// walker visits the values of a tree in sops' order, keeping what sops' rules need as
// running counts: the path's keys, and how many of them and of the pending comments match.
type walker struct {
	rules *rules
	keys  []string
	// keyMatches counts the path components matching each key rule.
	keyMatches [4]int
	levels     []commentLevel
	enc, unenc int // matches over all levels
	lastEnc    bool

	// leaf is called for each value and comment; what it returns replaces it.
	leaf func(l leaf) any
	// empty is called for a null, an empty string or an empty list: values that replace
	// what a config layer below says, with nothing for sops to encrypt or authenticate.
	empty func(doc int, path string)
	// bad is called for what sops cannot walk.
	bad func(doc int, path, msg string)
}

// leaf is one value or comment of the tree, and where it is.
type leaf struct {
	value     any
	doc       int
	path      string // with list indices, for people
	isComment bool
	encrypted bool // sops' rules say it is encrypted
}

// aad is what sops authenticates a value's ciphertext with: its map keys.
func (w *walker) aad() string { return strings.Join(w.keys, ":") + ":" }

// encrypted is sops' shouldBeEncrypted over the running counts.
func (w *walker) encrypted(isComment bool) bool {
	md := w.rules.md
	enc := true
	if md.UnencryptedSuffix != "" && w.keyMatches[0] > 0 {
		enc = false
	}
	if md.EncryptedSuffix != "" {
		enc = w.keyMatches[1] > 0
	}
	if md.UnencryptedRegex != "" && w.keyMatches[2] > 0 {
		enc = false
	}
	if md.EncryptedRegex != "" {
		enc = w.keyMatches[3] > 0
	}
	if md.UnencryptedCommentRegex != "" && w.unenc > 0 {
		enc = false
	}
	if md.EncryptedCommentRegex != "" {
		n := w.enc
		if isComment && w.lastEnc {
			// sops does not count the comment being decided on, the last one added.
			n--
		}
		enc = n > 0
	}
	return enc
}

func (w *walker) pushLevel() { w.levels = append(w.levels, commentLevel{}) }

func (w *walker) popLevel() {
	w.clearLevel()
	w.levels = w.levels[:len(w.levels)-1]
}

// clearLevel forgets the top level's comments, as sops does after each value.
func (w *walker) clearLevel() {
	top := &w.levels[len(w.levels)-1]
	w.enc -= top.enc
	w.unenc -= top.unenc
	*top = commentLevel{}
}

func (w *walker) addComment(c string) {
	top := &w.levels[len(w.levels)-1]
	w.lastEnc = w.rules.encComment != nil && w.rules.encComment.MatchString(c)
	if w.lastEnc {
		top.enc++
		w.enc++
	}
	if w.rules.unencComment != nil && w.rules.unencComment.MatchString(c) {
		top.unenc++
		w.unenc++
	}
}

func (w *walker) pushKey(k string) {
	w.keys = append(w.keys, k)
	for i, m := range w.rules.key(k) {
		if m {
			w.keyMatches[i]++
		}
	}
}

func (w *walker) popKey() {
	k := w.keys[len(w.keys)-1]
	w.keys = w.keys[:len(w.keys)-1]
	for i, m := range w.rules.key(k) {
		if m {
			w.keyMatches[i]--
		}
	}
}

// walk visits every branch (a YAML document each) in order.
func (w *walker) walk(branches sops.TreeBranches) {
	for doc, b := range branches {
		w.branch(doc, "", b)
	}
}

func (w *walker) branch(doc int, path string, b sops.TreeBranch) {
	w.pushLevel()
	defer w.popLevel()
	for i, item := range b {
		if c, ok := item.Key.(sops.Comment); ok {
			w.addComment(c.Value)
			out := w.leaf(leaf{value: c, doc: doc, path: path, isComment: true, encrypted: w.encrypted(true)})
			switch out := out.(type) {
			case sops.Comment:
				b[i].Key = out
			case string:
				b[i].Key = sops.Comment{Value: out, Inline: c.Inline}
			default:
				w.bad(doc, path, msgComment)
			}
			continue
		}
		c, valueIsComment := item.Value.(sops.Comment)
		if valueIsComment {
			w.addComment(c.Value)
		}
		key, ok := item.Key.(string)
		if !ok {
			w.bad(doc, path, msgKey)
			continue
		}
		p := joinKey(path, key)
		w.pushKey(key)
		b[i].Value = w.value(doc, p, item.Value)
		w.popKey()
		if !valueIsComment {
			w.clearLevel()
		}
	}
}

func (w *walker) slice(doc int, path string, s []any) {
	w.pushLevel()
	defer w.popLevel()
	values := 0
	for i, v := range s {
		c, isComment := v.(sops.Comment)
		if isComment {
			w.addComment(c.Value)
		} else {
			values++
		}
		s[i] = w.value(doc, joinIndex(path, values-1), v)
		if !isComment {
			w.clearLevel()
		}
	}
	if values == 0 {
		w.empty(doc, path)
	}
}

func (w *walker) value(doc int, path string, v any) any {
	switch v := v.(type) {
	case sops.TreeBranch:
		w.branch(doc, path, v)
		return v
	case []any:
		w.slice(doc, path, v)
		return v
	case nil:
		// sops walks past a null: it is neither encrypted nor in the MAC.
		w.empty(doc, path)
		return nil
	case []byte:
		return w.value(doc, path, string(v))
	case string:
		if v == "" {
			// sops' cipher leaves "" as it is, and "" adds nothing to the MAC.
			w.empty(doc, path)
		}
	case int, bool, float64, time.Time:
	case sops.Comment:
		return w.leaf(leaf{value: v, doc: doc, path: path, isComment: true, encrypted: w.encrypted(true)})
	default:
		w.bad(doc, path, msgUnsupported)
		return v
	}
	return w.leaf(leaf{value: v, doc: doc, path: path, encrypted: w.encrypted(false)})
}

// checkEntries finds, without any key, the entries sops' rules say are encrypted but that
// are not, and the null and empty values sops leaves out of its MAC.
//
// What sops itself does (checked with the sops 3.13 CLI, TestSopsCLIEmptyValues): it writes
// "" and null as they are, unencrypted, and its MAC covers neither ("" adds no bytes, null
// is skipped), nor an empty list or map. So a line such as `replicas: null`, `token: ""` or
// `allowed: []` can be added to a sops-made file without its key and the MAC still
// verifies; in the config merge a null deletes the key below it, and an empty string or
// list replaces it. Circle refuses each of these, wherever it is, even where the file's
// rules leave values in the clear: the rules (unencrypted_suffix, unencrypted_regex, …) are
// in the same unauthenticated metadata, so an attacker can write a rule for the entry they
// add. Such a file made by sops is refused too (sops' own example.json has
// `"anEmptyValue": ""`): the fix is to drop the entry or give it a value.
//
// An empty map is accepted: it holds no value, merging it changes nothing below it, and
// sops' examples use it for empty sections (INI's DEFAULT is one in every INI file).
//
// A value left in the clear by the rules is accepted: its bytes are in the MAC, unless the
// file chose mac_only_encrypted, with which sops authenticates only the encrypted values.
func checkEntries(tree *sops.Tree, ps *problems) {
	w := &walker{rules: newRules(&tree.Metadata)}
	w.empty = func(doc int, path string) { ps.add(ErrUnencrypted, doc, path, msgEmpty) }
	w.bad = func(doc int, path, msg string) { ps.add(ErrUnencrypted, doc, path, msg) }
	w.leaf = func(l leaf) any {
		if l.isComment || !l.encrypted {
			return l.value
		}
		if s, ok := l.value.(string); !ok || (s != "" && !encValue.MatchString(s)) {
			ps.add(ErrUnencrypted, l.doc, l.path, msgClear)
		}
		return l.value
	}
	// The walk replaces nothing here (each leaf returns itself); it only looks.
	w.walk(tree.Branches)
}

// decryptTree decrypts every value sops' rules say is encrypted, in place, and checks the
// MAC. Each value that fails is a problem at its path; the walk goes on, so one run names
// them all.
func decryptTree(tree *sops.Tree, dataKey []byte, ps *problems) {
	block, err := aes.NewCipher(dataKey)
	if err != nil {
		// A data key of the wrong size: whoever made the file's key entries did not use sops.
		ps.add(ErrTampered, 0, "", "its data key is not an AES key: the file was changed after it was encrypted")
		return
	}
	md := &tree.Metadata
	var mac hash.Hash = sha512.New()
	if md.MACOnlyEncrypted {
		mac.Write(sops.MACOnlyEncryptedInitialization)
	}
	w := &walker{rules: newRules(md)}
	w.empty = func(int, string) {}
	w.bad = func(doc int, path, msg string) { ps.add(ErrUnencrypted, doc, path, msg) }
	w.leaf = func(l leaf) any {
		v := l.value
		if l.encrypted {
			s, ok := v.(string)
			if c, isComment := v.(sops.Comment); isComment {
				s, ok = c.Value, true
			}
			if ok && s != "" {
				out, f := decryptValue(block, s, w.aad())
				switch {
				case f == "":
					v = out
				case l.isComment:
					// sops keeps a comment that does not decrypt: one written in the clear.
				default:
					ps.add(ErrTampered, l.doc, l.path, f)
					return v
				}
			}
		}
		if !md.MACOnlyEncrypted || l.encrypted {
			if _, isComment := v.(sops.Comment); !isComment {
				b, err := sops.ToBytes(v)
				if err != nil {
					ps.add(ErrUnencrypted, l.doc, l.path, msgUnsupported)
					return v
				}
				mac.Write(b)
			}
		}
		return v
	}
	w.walk(tree.Branches)
	if len(ps.list) > 0 {
		return
	}
	stored, f := decryptValue(block, md.MessageAuthenticationCode, md.LastModified.Format(time.RFC3339))
	want, _ := stored.(string)
	switch {
	case md.MessageAuthenticationCode == "":
		ps.add(ErrTampered, 0, "", "the file has no MAC: it was removed after encryption")
	case f != "" || want == "":
		ps.add(ErrTampered, 0, "", "its MAC does not decrypt: the MAC or the lastmodified date was changed after encryption")
	case subtle.ConstantTimeCompare([]byte(want), []byte(fmt.Sprintf("%X", mac.Sum(nil)))) != 1:
		ps.add(ErrTampered, 0, "", "MAC mismatch: the file's values were changed, added, removed or reordered after it was encrypted")
	}
}

// decryptValue opens one ENC[AES256_GCM,…] value under the additional data aad, and reads
// it as its type tag says. On failure it returns a message for a Problem: built from
// constants and the tag only, never from the plaintext, which is dropped.
func decryptValue(block cipher.Block, s, aad string) (any, string) {
	m := encValue.FindStringSubmatch(s)
	if m == nil {
		return nil, msgClear
	}
	data, err1 := base64.StdEncoding.DecodeString(m[1])
	iv, err2 := base64.StdEncoding.DecodeString(m[2])
	tag, err3 := base64.StdEncoding.DecodeString(m[3])
	if err1 != nil || err2 != nil || err3 != nil || len(iv) == 0 {
		return nil, msgMalformed
	}
	gcm, err := cipher.NewGCMWithNonceSize(block, len(iv))
	if err != nil {
		return nil, msgMalformed
	}
	plain, err := gcm.Open(nil, iv, append(data, tag...), []byte(aad))
	if err != nil {
		return nil, msgAuth
	}
	text := string(plain)
	// The conversions are sops' (aes/cipher.go). Their errors quote the text, so each is
	// replaced by a message naming the tag.
	switch tag := m[4]; tag {
	case "str":
		return text, ""
	case "int":
		if n, err := strconv.Atoi(text); err == nil {
			return n, ""
		}
		return nil, msgType(tag)
	case "float":
		if f, err := strconv.ParseFloat(text, 64); err == nil {
			return f, ""
		}
		return nil, msgType(tag)
	case "bool":
		if b, err := strconv.ParseBool(text); err == nil {
			return b, ""
		}
		return nil, msgType(tag)
	case "time":
		var t time.Time
		if err := t.UnmarshalText(plain); err == nil {
			return t, ""
		}
		return nil, msgType(tag)
	case "comment":
		return sops.Comment{Value: text}, ""
	}
	// "bytes" is among sops' decrypt cases, but its encrypt has no such case: no sops
	// writes it, so it is a changed tag like any other unknown one.
	return nil, msgTypeUnknown
}
