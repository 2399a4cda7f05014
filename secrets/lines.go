package secrets

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/getsops/sops/v3/cmd/sops/formats"
	"go.yaml.in/yaml/v3"
)

// lineIndex maps an entry of a file (document index and key path, as walk names them) to
// its line and column. sops' trees carry no positions, so the file is read a second time
// for them. It is a best effort: an entry it cannot place is reported without a line.
type lineIndex map[string][2]int

func indexKey(doc int, path string) string { return strconv.Itoa(doc) + "\x00" + path }

// at is the line and column of the entry, or zeros.
func (ix lineIndex) at(doc int, path string) (int, int) {
	p := ix[indexKey(doc, path)]
	return p[0], p[1]
}

// set records the first position seen for path, and for each path it is under, so an
// entry's position is known even when only one of its fields has a line.
func (ix lineIndex) set(doc int, path string, line, col int) {
	for {
		k := indexKey(doc, path)
		if _, ok := ix[k]; !ok {
			ix[k] = [2]int{line, col}
		}
		i := strings.LastIndexAny(path, ".[")
		if i <= 0 {
			return
		}
		path = path[:i]
	}
}

// joinKey appends a map key to a key path.
func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// joinIndex appends a list index to a key path.
func joinIndex(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// errAliases is indexLines' error for YAML whose aliases expand without bound.
var errAliases = errors.New("its YAML aliases expand to too many values")

// maxAliasGrowth is how many nodes YAML aliases may add to a file. sops' YAML store
// expands every alias as it loads a file, before any key is needed, so a few lines of
// nested aliases ("billion laughs") would make it build billions of values.
const maxAliasGrowth = 1 << 20

// indexLines reads the positions of data's entries for its format. What does not parse has
// no positions; the only error is YAML whose aliases expand too far to be loaded.
func indexLines(format formats.Format, data []byte) (lineIndex, error) {
	ix := lineIndex{}
	switch format {
	case formats.Yaml:
		if !indexYAML(ix, data) {
			return nil, errAliases
		}
	case formats.Dotenv:
		indexDotenv(ix, data)
	case formats.Ini:
		indexINI(ix, data)
	default: // JSON, and the binary store, which is JSON on disk
		indexJSON(ix, data)
	}
	return ix, nil
}

// indexYAML records the positions of every document's entries; it reports false when the
// documents' aliases expand by more than maxAliasGrowth nodes.
func indexYAML(ix lineIndex, data []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	sizes := map[*yaml.Node]int{}
	parsed, expanded := 0, 0
	for doc := 0; ; doc++ {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			return true // the end, or what sops' own parse will refuse
		}
		if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
			indexYAMLNode(ix, doc, "", n.Content[0], 0)
		}
		parsed += countNodes(&n, 0)
		expanded += expandedSize(&n, sizes, 0)
		if expanded-parsed > maxAliasGrowth {
			return false
		}
	}
}

// countNodes is the number of nodes as parsed, aliases not followed.
func countNodes(n *yaml.Node, depth int) int {
	c := 1
	if depth > maxDepth*50 {
		return c
	}
	for _, child := range n.Content {
		c += countNodes(child, depth+1)
	}
	return c
}

// expandedSize is the number of nodes n stands for once its aliases are expanded, capped
// above maxAliasGrowth. Sizes are remembered per node, so shared anchors cost once.
func expandedSize(n *yaml.Node, sizes map[*yaml.Node]int, depth int) int {
	const huge = maxAliasGrowth * 4
	if s, ok := sizes[n]; ok {
		if s < 0 {
			return huge // an alias inside its own anchor
		}
		return s
	}
	if depth > maxDepth*50 {
		return 1
	}
	sizes[n] = -1
	s := 1
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		s += expandedSize(n.Alias, sizes, depth+1)
	}
	for _, child := range n.Content {
		s += expandedSize(child, sizes, depth+1)
		if s > huge {
			s = huge
			break
		}
	}
	sizes[n] = s
	return s
}

// maxDepth bounds the recursion of the position readers; deeper entries have no position.
const maxDepth = 200

func indexYAMLNode(ix lineIndex, doc int, path string, n *yaml.Node, depth int) {
	if depth > maxDepth {
		return
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			p := joinKey(path, k.Value)
			ix.set(doc, p, k.Line, k.Column)
			indexYAMLNode(ix, doc, p, n.Content[i+1], depth+1)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			p := joinIndex(path, i)
			ix.set(doc, p, item.Line, item.Column)
			indexYAMLNode(ix, doc, p, item, depth+1)
		}
	}
}

// indexJSON walks the token stream; the decoder's offsets give each key's line.
func indexJSON(ix lineIndex, data []byte) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	pos := func() (int, int) {
		off := int(dec.InputOffset())
		// The offset is where the last token ended: skip to where the next one starts.
		for off < len(data) && strings.IndexByte(" \t\r\n,:", data[off]) >= 0 {
			off++
		}
		line := 1 + bytes.Count(data[:off], []byte("\n"))
		return line, off - bytes.LastIndexByte(data[:off], '\n')
	}
	var value func(path string, depth int) error
	value = func(path string, depth int) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		d, ok := tok.(json.Delim)
		if !ok {
			return nil
		}
		if depth > maxDepth {
			return errors.New("too deep")
		}
		for i := 0; dec.More(); i++ {
			line, col := pos()
			p := joinIndex(path, i)
			if d == '{' {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				key, _ := k.(string)
				p = joinKey(path, key)
			}
			ix.set(0, p, line, col)
			if err := value(p, depth+1); err != nil {
				return err
			}
		}
		_, err = dec.Token() // the closing delimiter
		return err
	}
	if err := value("", 0); err != nil && !errors.Is(err, io.EOF) {
		return
	}
}

// flattened undoes sops' flattening of metadata keys in dotenv and INI files
// (hc_vault__list_0__map_vault_address is hc_vault[0].vault_address).
var flattened = regexp.MustCompile(`__list_(\d+)|__map_`)

func unflatten(key string) string {
	return flattened.ReplaceAllStringFunc(key, func(m string) string {
		if m == "__map_" {
			return "."
		}
		return "[" + strings.TrimPrefix(m, "__list_") + "]"
	})
}

// indexDotenv: one KEY=VALUE a line, as sops' dotenv store reads it; sops_ keys are the
// metadata, flattened.
func indexDotenv(ix lineIndex, data []byte) {
	for i, line := range bytes.Split(data, []byte("\n")) {
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		key, _, ok := bytes.Cut(line, []byte("="))
		if !ok {
			continue
		}
		p := string(key)
		if meta, ok := strings.CutPrefix(p, "sops_"); ok {
			p = "sops." + unflatten(meta)
		}
		ix.set(0, p, i+1, 1)
	}
}

// indexINI: [section] headers and key = value (or key: value) lines; keys before any
// section are in DEFAULT, as go-ini reads them; the sops section holds flattened metadata.
func indexINI(ix lineIndex, data []byte) {
	section := "DEFAULT"
	for i, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(raw)
		col := len(raw) - len(strings.TrimLeft(raw, " \t")) + 1
		switch {
		case line == "" || line[0] == ';' || line[0] == '#':
			continue
		case line[0] == '[':
			if end := strings.IndexByte(line, ']'); end > 0 {
				section = strings.TrimSpace(line[1:end])
				ix.set(0, section, i+1, col)
			}
			continue
		}
		end := strings.IndexAny(line, "=:")
		if end <= 0 {
			continue
		}
		key := strings.TrimSpace(line[:end])
		p := joinKey(section, key)
		if section == "sops" {
			p = "sops." + unflatten(key)
		}
		ix.set(0, p, i+1, col)
	}
}
